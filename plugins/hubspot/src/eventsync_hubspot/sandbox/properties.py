"""The property definitions of the sandbox's objects, in the properties API's format.

Contacts carry HubSpot's usual default properties; the options ``properties`` (more properties
per object) and ``custom_objects`` (objects with an ``objectTypeId`` such as ``2-1001``) add
to them, as an admin would in Settings > Properties and Settings > Objects.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: fieldType by type, when a definition gives none.
FIELD_TYPES = {
    "string": "text",
    "number": "number",
    "enumeration": "select",
    "datetime": "date",
    "date": "date",
    "bool": "booleancheckbox",
}


def definition(
    name: str,
    type_: str = "string",
    label: str = "",
    *,
    field_type: str | None = None,
    options: Sequence[str] = (),
    unique: bool = False,
    read_only: bool = False,
    group: str = "contactinformation",
) -> dict[str, Any]:
    """One property as ``GET /crm/v3/properties/{object}`` lists it."""
    return {
        "name": name,
        "label": label or name.replace("_", " ").title(),
        "type": type_,
        "fieldType": field_type or FIELD_TYPES.get(type_, "text"),
        "groupName": group,
        "description": "",
        "options": [
            {"label": str(v), "value": str(v), "displayOrder": i, "hidden": False}
            for i, v in enumerate(options)
        ],
        "displayOrder": -1,
        "calculated": False,
        "externalOptions": False,
        "hasUniqueValue": unique,
        "hidden": False,
        "hubspotDefined": read_only,
        "formField": not read_only,
        "modificationMetadata": {
            "archivable": not read_only,
            "readOnlyDefinition": read_only,
            "readOnlyValue": read_only,
        },
    }


def system_properties() -> list[dict[str, Any]]:
    """What every object has: its id and its timestamps, all read-only."""
    return [
        definition("hs_object_id", "number", "Record ID", read_only=True),
        definition("createdate", "datetime", "Create date", read_only=True),
        definition("lastmodifieddate", "datetime", "Last modified date", read_only=True),
        definition("hs_lastmodifieddate", "datetime", "Last modified date", read_only=True),
    ]


def contact_properties() -> list[dict[str, Any]]:
    """The default contact properties the flows and tests use."""
    return [
        definition("email", "string", "Email"),
        definition("firstname", "string", "First name"),
        definition("lastname", "string", "Last name"),
        definition("company", "string", "Company name"),
        definition("website", "string", "Website URL"),
        definition("phone", "string", "Phone number", field_type="phonenumber"),
        definition(
            "lifecyclestage",
            "enumeration",
            "Lifecycle stage",
            field_type="radio",
            options=("subscriber", "lead", "marketingqualifiedlead", "customer", "other"),
        ),
        *system_properties(),
    ]


def from_option(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A property from the sandbox options: ``{"name", "type", "fieldType", "label",
    "options", "hasUniqueValue"}``."""
    return definition(
        str(spec["name"]),
        str(spec.get("type", "string")),
        str(spec.get("label", "")),
        field_type=spec.get("fieldType"),
        options=tuple(spec.get("options") or ()),
        unique=bool(spec.get("hasUniqueValue", False)),
        group=str(spec.get("groupName", "eventsync")),
    )
