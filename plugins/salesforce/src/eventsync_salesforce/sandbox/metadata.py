"""Object and field metadata of the emulated org, and the describe payloads built from it.

Standard objects follow the Salesforce object reference (shapes as Salesforce documents them
section 2.1 and 6); custom fields and objects come from the sandbox config.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

API_VERSION = "59.0"


@attrs.frozen
class FieldDef:
    """One field of an emulated object, with the describe attributes Salesforce reports."""

    name: str
    type: str
    label: str = ""
    length: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    defaulted_on_create: bool = False
    external_id: bool = False
    id_lookup: bool = False
    unique: bool = False
    calculated: bool = False
    custom: bool = False
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    default: Any = None
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    precision: int = 0
    scale: int = 0

    def describe(self) -> dict[str, Any]:
        """The field's entry in ``fields[]`` of a DescribeSObjectResult."""
        return {
            "name": self.name,
            "label": self.label or self.name,
            "type": self.type,
            "length": self.length,
            "byteLength": self.length * 3,
            "digits": 0,
            "precision": self.precision,
            "scale": self.scale,
            "nillable": self.nillable,
            "createable": self.createable,
            "updateable": self.updateable,
            "defaultedOnCreate": self.defaulted_on_create,
            "defaultValue": self.default if self.type == "boolean" else None,
            "externalId": self.external_id,
            "idLookup": self.id_lookup,
            "unique": self.unique,
            "calculated": self.calculated,
            "custom": self.custom,
            "filterable": self.type not in ("textarea",),
            "sortable": self.type not in ("textarea", "multipicklist"),
            "caseSensitive": False,
            "restrictedPicklist": self.restricted,
            "picklistValues": [
                {
                    "active": True,
                    "defaultValue": value == self.default,
                    "label": value,
                    "validFor": None,
                    "value": value,
                }
                for value in self.picklist
            ],
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "soapType": _SOAP_TYPES.get(self.type, "xsd:string"),
        }


_SOAP_TYPES = {
    "id": "tns:ID",
    "reference": "tns:ID",
    "boolean": "xsd:boolean",
    "int": "xsd:int",
    "double": "xsd:double",
    "currency": "xsd:double",
    "percent": "xsd:double",
    "date": "xsd:date",
    "datetime": "xsd:dateTime",
}


@attrs.frozen
class ObjectDef:
    """One emulated sObject type."""

    name: str
    key_prefix: str
    label: str
    label_plural: str
    fields: tuple[FieldDef, ...]
    custom: bool = False
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    supports_query_all: bool = True

    def field(self, name: str) -> FieldDef | None:
        """The field called ``name``, case-insensitively, or None."""
        wanted = name.lower()
        for candidate in self.fields:
            if candidate.name.lower() == wanted:
                return candidate
        return None

    def relationship(self, name: str) -> FieldDef | None:
        """The reference field whose relationship name is ``name``, case-insensitively."""
        wanted = name.lower()
        for candidate in self.fields:
            if candidate.relationship_name and candidate.relationship_name.lower() == wanted:
                return candidate
        return None

    def urls(self, version: str) -> dict[str, str]:
        """The ``urls`` block of describe results."""
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"}

    def global_entry(self, version: str) -> dict[str, Any]:
        """This object's entry in the global describe (``GET /sobjects``)."""
        return {
            "name": self.name,
            "label": self.label,
            "labelPlural": self.label_plural,
            "keyPrefix": self.key_prefix,
            "custom": self.custom,
            "customSetting": False,
            "createable": self.createable,
            "updateable": self.updateable,
            "deletable": self.deletable,
            "queryable": True,
            "retrieveable": True,
            "searchable": True,
            "triggerable": True,
            "undeletable": self.deletable,
            "layoutable": True,
            "replicateable": True,
            "deprecatedAndHidden": False,
            "urls": self.urls(version),
        }

    def describe(
        self, version: str, children: Iterable[tuple[str, FieldDef]] = ()
    ) -> dict[str, Any]:
        """The DescribeSObjectResult (``GET /sobjects/{name}/describe``)."""
        body = self.global_entry(version)
        body.update(
            {
                "fields": [field.describe() for field in self.fields],
                "childRelationships": [
                    {
                        "childSObject": child,
                        "field": field.name,
                        "relationshipName": None,
                        "cascadeDelete": False,
                    }
                    for child, field in children
                ],
                "recordTypeInfos": [],
            }
        )
        return body


def _f(name: str, type_: str, **kw: Any) -> FieldDef:
    kw.setdefault("label", name)
    if type_ in ("string", "email", "phone", "url", "picklist") and "length" not in kw:
        kw["length"] = {"email": 80, "phone": 40, "url": 255, "picklist": 255}.get(type_, 255)
    if type_ == "boolean":
        kw.setdefault("nillable", False)
        kw.setdefault("defaulted_on_create", True)
        kw.setdefault("default", False)
    if type_ in ("id", "reference"):
        kw.setdefault("length", 18)
    return FieldDef(name, type_, **kw)


def _system_fields(owner: bool = True) -> list[FieldDef]:
    ro = {"createable": False, "updateable": False}
    fields = [
        _f("Id", "id", nillable=False, id_lookup=True, defaulted_on_create=True, **ro),
        _f("IsDeleted", "boolean", **ro),
        _f("CreatedDate", "datetime", nillable=False, defaulted_on_create=True, **ro),
        _f(
            "CreatedById",
            "reference",
            nillable=False,
            defaulted_on_create=True,
            reference_to=("User",),
            relationship_name="CreatedBy",
            **ro,
        ),
        _f("LastModifiedDate", "datetime", nillable=False, defaulted_on_create=True, **ro),
        _f(
            "LastModifiedById",
            "reference",
            nillable=False,
            defaulted_on_create=True,
            reference_to=("User",),
            relationship_name="LastModifiedBy",
            **ro,
        ),
        _f("SystemModstamp", "datetime", nillable=False, defaulted_on_create=True, **ro),
    ]
    if owner:
        fields.append(
            _f(
                "OwnerId",
                "reference",
                nillable=False,
                defaulted_on_create=True,
                reference_to=("User",),
                relationship_name="Owner",
            )
        )
    return fields


def _obj(
    name: str, prefix: str, fields: list[FieldDef], owner: bool = True, **kw: Any
) -> ObjectDef:
    label = kw.pop("label", name)
    plural = kw.pop("label_plural", label + "s")
    return ObjectDef(name, prefix, label, plural, tuple(_system_fields(owner) + fields), **kw)


LEAD_STATUSES = (
    "Open - Not Contacted",
    "Working - Contacted",
    "Closed - Converted",
    "Closed - Not Converted",
)
_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
_RO = {"createable": False, "updateable": False}


def standard_objects() -> list[ObjectDef]:
    """The standard objects of a fresh emulated org."""
    person = [
        _f("FirstName", "string", length=40, label="First Name"),
        _f("LastName", "string", length=80, nillable=False, label="Last Name"),
        _f(
            "Name", "string", length=121, calculated=False, id_lookup=True, label="Full Name", **_RO
        ),
        _f("Email", "email", id_lookup=True),
        _f("Phone", "phone"),
        _f("Title", "string", length=128),
        _f("HasOptedOutOfEmail", "boolean", label="Email Opt Out"),
        _f("Description", "textarea", length=32000),
    ]
    lead = _obj(
        "Lead",
        "00Q",
        person
        + [
            _f("Company", "string", length=255, nillable=False),
            _f(
                "Status",
                "picklist",
                nillable=False,
                defaulted_on_create=True,
                picklist=LEAD_STATUSES,
                default=LEAD_STATUSES[0],
                label="Lead Status",
            ),
            _f("LeadSource", "picklist", picklist=_SOURCES, label="Lead Source"),
            _f("Website", "url"),
            _f("IsConverted", "boolean", **_RO),
        ],
    )
    contact = _obj(
        "Contact",
        "003",
        person
        + [
            _f("AccountId", "reference", reference_to=("Account",), relationship_name="Account"),
            _f("LeadSource", "picklist", picklist=_SOURCES, label="Lead Source"),
        ],
    )
    account = _obj(
        "Account",
        "001",
        [
            _f("Name", "string", nillable=False, id_lookup=True, label="Account Name"),
            _f("Website", "url"),
            _f("Phone", "phone"),
            _f("Industry", "picklist", picklist=("Technology", "Education", "Other")),
        ],
    )
    campaign = _obj(
        "Campaign",
        "701",
        [
            _f("Name", "string", length=80, nillable=False, id_lookup=True),
            _f("IsActive", "boolean", label="Active"),
            _f(
                "Status",
                "picklist",
                picklist=("Planned", "In Progress", "Completed", "Aborted"),
                default="Planned",
                defaulted_on_create=True,
            ),
            _f("Type", "picklist", picklist=("Webinar", "Conference", "Email", "Other")),
            _f("StartDate", "date"),
            _f("EndDate", "date"),
        ],
    )
    member = _obj(
        "CampaignMember",
        "00v",
        [
            _f(
                "CampaignId",
                "reference",
                nillable=False,
                updateable=False,
                reference_to=("Campaign",),
                relationship_name="Campaign",
            ),
            _f(
                "LeadId",
                "reference",
                updateable=False,
                reference_to=("Lead",),
                relationship_name="Lead",
            ),
            _f(
                "ContactId",
                "reference",
                updateable=False,
                reference_to=("Contact",),
                relationship_name="Contact",
            ),
            _f("LeadOrContactId", "reference", reference_to=("Lead", "Contact"), **_RO),
            _f("Status", "picklist", length=40, defaulted_on_create=True),
            _f("HasResponded", "boolean", label="Responded", **_RO),
            _f("FirstRespondedDate", "date", **_RO),
            _f("FirstName", "string", length=40, **_RO),
            _f("LastName", "string", length=80, **_RO),
            _f("Email", "email", **_RO),
        ],
        owner=False,
    )
    member_status = _obj(
        "CampaignMemberStatus",
        "01Y",
        [
            _f(
                "CampaignId",
                "reference",
                nillable=False,
                updateable=False,
                reference_to=("Campaign",),
                relationship_name="Campaign",
            ),
            _f("Label", "string", length=765, nillable=False),
            _f("HasResponded", "boolean"),
            _f("IsDefault", "boolean"),
            _f("SortOrder", "int"),
        ],
        owner=False,
        label_plural="Campaign Member Statuses",
    )
    user = _obj(
        "User",
        "005",
        [
            _f("Username", "string", length=80, nillable=False, unique=True, id_lookup=True),
            _f("FirstName", "string", length=40),
            _f("LastName", "string", length=80, nillable=False),
            _f("Name", "string", length=121, **_RO),
            _f("Email", "email", nillable=False),
            _f("Alias", "string", length=8),
            _f("IsActive", "boolean", default=True),
        ],
        owner=False,
    )
    permission_set = _obj(
        "PermissionSet",
        "0PS",
        [
            _f("Name", "string", length=80, nillable=False),
            _f("Label", "string", length=80, nillable=False),
            _f("IsOwnedByProfile", "boolean", **_RO),
            *[_f(name, "boolean") for name in PERMISSIONS],
        ],
        owner=False,
    )
    assignment = _obj(
        "PermissionSetAssignment",
        "0Pa",
        [
            _f(
                "AssigneeId",
                "reference",
                nillable=False,
                updateable=False,
                reference_to=("User",),
                relationship_name="Assignee",
            ),
            _f(
                "PermissionSetId",
                "reference",
                nillable=False,
                updateable=False,
                reference_to=("PermissionSet",),
                relationship_name="PermissionSet",
            ),
        ],
        owner=False,
    )
    return [
        lead,
        contact,
        account,
        campaign,
        member,
        member_status,
        user,
        permission_set,
        assignment,
    ]


#: Permission fields of PermissionSet that exist in real orgs (Salesforce's documentation).
PERMISSIONS = (
    "PermissionsApiEnabled",
    "PermissionsEmailSingle",
    "PermissionsEmailMass",
    "PermissionsModifyAllData",
    "PermissionsViewAllData",
    "PermissionsCustomizeApplication",
    "PermissionsViewSetup",
    "PermissionsManageUsers",
    "PermissionsRunFlow",
    "PermissionsImportLeads",
    "PermissionsConvertLeads",
)


def custom_field(spec: Mapping[str, Any]) -> FieldDef:
    """A FieldDef from a config entry ``{name, type, length?, external_id?, ...}``."""
    kind = spec.get("type", "string")
    kw: dict[str, Any] = {
        "label": spec.get("label", spec["name"]),
        "custom": True,
        "external_id": bool(spec.get("external_id", False)),
        "unique": bool(spec.get("unique", spec.get("external_id", False))),
        "nillable": not spec.get("required", False),
    }
    if kw["external_id"]:
        kw["id_lookup"] = True
    if "length" in spec:
        kw["length"] = int(spec["length"])
    if kind in ("picklist", "multipicklist"):
        kw["picklist"] = tuple(spec.get("values", ()))
        kw["restricted"] = bool(spec.get("restricted", False))
    if kind == "reference":
        kw["reference_to"] = (spec["reference_to"],)
        kw["relationship_name"] = spec.get("relationship_name", spec["name"].replace("__c", "__r"))
    if "default" in spec:
        kw["default"] = spec["default"]
        kw["defaulted_on_create"] = True
    return _f(spec["name"], kind, **kw)


def custom_object(spec: Mapping[str, Any], prefix: str) -> ObjectDef:
    """An ObjectDef from a config entry ``{name, label?, fields: [...]}``."""
    name = spec["name"]
    fields = [_f("Name", "string", length=80, id_lookup=True, label=f"{name} Name")]
    fields += [custom_field(entry) for entry in spec.get("fields", ())]
    label = spec.get("label", name.removesuffix("__c"))
    return _obj(name, prefix, fields, custom=True, label=label, label_plural=label + "s")
