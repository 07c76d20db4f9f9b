"""Behaviour of standard objects beyond plain fields.

* ``Name`` of Lead, Contact and User is derived from FirstName and LastName.
* CampaignMember: FirstName, LastName, Email and LeadOrContactId come from its Lead or Contact;
  one of LeadId / ContactId is required; the same person twice in one campaign fails with
  DUPLICATE_VALUE "Already a campaign member."; Status must be one of the campaign's
  CampaignMemberStatus labels (default: the campaign's default status); HasResponded and
  FirstRespondedDate follow the status.
* A new Campaign gets the statuses "Sent" (default) and "Responded" (HasResponded); a status
  label is unique within its campaign; integrations add labels such as "Attended".
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from .errors import SfError
from .metadata import ObjectDef

if TYPE_CHECKING:
    from .store import Store, Transaction

#: The error for a CampaignMember status the campaign does not define. The real code is not
#: documented; this is the closest documented one.
UNKNOWN_STATUS_CODE = "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"


def before_write(
    store: Store, obj: ObjectDef, record: dict[str, Any], before: dict[str, Any] | None
) -> None:
    """Fill derived fields and enforce object rules; raises SfError."""
    if obj.name in ("Lead", "Contact", "User"):
        parts = [record.get("FirstName"), record.get("LastName")]
        record["Name"] = " ".join(p for p in parts if p) or None
    if obj.name == "CampaignMember":
        _campaign_member(store, record, before)
    if obj.name == "CampaignMemberStatus":
        _member_status(store, record)


def _member_status(store: Store, record: dict[str, Any]) -> None:
    """A label is unique within its campaign."""
    for other in store.records["CampaignMemberStatus"].values():
        if (
            other["Id"] != record["Id"]
            and not other.get("IsDeleted")
            and other["CampaignId"] == record.get("CampaignId")
            and str(other.get("Label", "")).lower() == str(record.get("Label", "")).lower()
        ):
            raise SfError(
                "DUPLICATE_VALUE",
                f"duplicate value found: Label duplicates value on record with id: {other['Id']}",
                ["Label"],
            )


def _campaign_member(store: Store, record: dict[str, Any], before: dict[str, Any] | None) -> None:
    campaign = store.find(store.object("Campaign"), record.get("CampaignId") or "")
    if campaign is None or campaign.get("IsDeleted"):
        raise SfError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", ["CampaignId"])
    person_id = record.get("LeadId") or record.get("ContactId")
    if not person_id:
        raise SfError(
            "REQUIRED_FIELD_MISSING",
            "Required fields are missing: [LeadId, ContactId]",
            ["LeadId", "ContactId"],
        )
    kind = "Lead" if record.get("LeadId") else "Contact"
    person = store.find(store.object(kind), person_id)
    if person is None or person.get("IsDeleted"):
        raise SfError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [f"{kind}Id"])
    if before is None:
        for other in store.records["CampaignMember"].values():
            if (
                not other.get("IsDeleted")
                and other["CampaignId"] == campaign["Id"]
                and other.get("LeadOrContactId") == person["Id"]
            ):
                raise SfError("DUPLICATE_VALUE", "Already a campaign member.", [])
    record["LeadOrContactId"] = person["Id"]
    for name in ("FirstName", "LastName", "Email"):
        record[name] = person.get(name)
    statuses = [
        s
        for s in store.records["CampaignMemberStatus"].values()
        if s["CampaignId"] == campaign["Id"] and not s.get("IsDeleted")
    ]
    if not record.get("Status"):
        default = next((s for s in statuses if s.get("IsDefault")), None)
        record["Status"] = default["Label"] if default else None
    chosen = next((s for s in statuses if s["Label"] == record["Status"]), None)
    if chosen is None:
        raise SfError(
            UNKNOWN_STATUS_CODE,
            f"Status: bad value for restricted picklist field: {record['Status']}",
            ["Status"],
        )
    record["HasResponded"] = bool(chosen.get("HasResponded"))
    if record["HasResponded"] and not record.get("FirstRespondedDate"):
        record["FirstRespondedDate"] = dt.datetime.now(dt.UTC).date().isoformat()


def after_create(tx: Transaction, obj: ObjectDef, record: dict[str, Any]) -> None:
    """Side effects of an insert (a new campaign's default statuses)."""
    if obj.name == "Campaign":
        tx.create(
            "CampaignMemberStatus",
            {"CampaignId": record["Id"], "Label": "Sent", "IsDefault": True, "SortOrder": 1},
        )
        tx.create(
            "CampaignMemberStatus",
            {
                "CampaignId": record["Id"],
                "Label": "Responded",
                "HasResponded": True,
                "SortOrder": 2,
            },
        )
