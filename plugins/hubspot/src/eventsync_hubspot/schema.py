"""Schema discovery from the properties API (``GET /crm/v3/properties/{object}``).

Each property's ``type`` and ``fieldType`` map onto a core field type; ``modificationMetadata
.readOnlyValue`` (and ``calculated``) make it neither createable nor updateable. HubSpot's
names are lower-case and case-sensitive. The answers are cached on the connection, since pulls
use them to turn HubSpot's string values back into numbers and booleans.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsync.errors import DiscoveryError, RemoteError
from eventsync.models import FieldSchema, ObjectSchema, Schema

from .client import HubSpotConnection, HubSpotRefusal, call
from .settings import SYSTEM

#: (type, fieldType) -> core field type; a fieldType of None matches any.
TYPES: dict[tuple[str, str | None], str] = {
    ("enumeration", "booleancheckbox"): "boolean",
    ("enumeration", "checkbox"): "multipicklist",
    ("enumeration", None): "picklist",
    ("bool", None): "boolean",
    ("number", None): "double",
    ("date", None): "date",
    ("datetime", None): "datetime",
    ("phone_number", None): "phone",
    ("string", "textarea"): "textarea",
    ("string", "phonenumber"): "phone",
    ("string", None): "string",
    ("object_coordinates", None): "string",
    ("json", None): "json",
}
#: Properties HubSpot validates as more than text.
SPECIAL = {"email": "email", "website": "url", "hs_object_id": "id"}
#: The standard objects' names in the v3 paths, by their object type ids.
STANDARD = {"0-1": "contacts", "0-2": "companies", "0-3": "deals", "0-5": "tickets"}


def core_type(prop: dict[str, Any]) -> str:
    """The core field type of one HubSpot property."""
    if prop.get("name") in SPECIAL:
        return SPECIAL[str(prop["name"])]
    kind, field_type = str(prop.get("type")), prop.get("fieldType")
    return TYPES.get((kind, field_type)) or TYPES.get((kind, None)) or "any"


def properties(conn: HubSpotConnection, obj: str) -> list[dict[str, Any]]:
    """The raw property definitions of ``obj`` (cached on the connection)."""
    cached = conn.schemas.get(obj)
    if cached is None:
        try:
            cached = call(conn, "GET", f"/crm/v3/properties/{obj}")["results"]
        except HubSpotRefusal as exc:
            raise DiscoveryError(
                f"hubspot has no object {obj!r}: {exc.message} (use contacts, companies, deals, "
                "tickets or a custom object's name or objectTypeId such as 2-123456; names are "
                "case-sensitive)"
            ) from exc
        conn.schemas[obj] = cached
    return list(cached)


def discover(conn: HubSpotConnection, objects: Sequence[str] | None) -> Schema:
    """Describe ``objects`` (default: contacts and every custom object)."""
    wanted = list(objects) if objects is not None else ["contacts", *_custom_objects(conn)]
    return Schema(SYSTEM, {name: _object(name, properties(conn, name)) for name in wanted})


def is_unique(conn: HubSpotConnection, obj: str, name: str) -> bool:
    """Whether ``name`` can be an upsert's ``idProperty``: a contact's email, or a property
    with unique values."""
    if name == "email" and obj in ("contacts", "0-1"):
        return True
    return any(p.get("name") == name and p.get("hasUniqueValue") for p in properties(conn, obj))


def _custom_objects(conn: HubSpotConnection) -> list[str]:
    try:
        return [str(o["name"]) for o in call(conn, "GET", "/crm/v3/schemas").get("results", [])]
    except RemoteError:
        return []


def _object(name: str, props: list[dict[str, Any]]) -> ObjectSchema:
    return ObjectSchema(name=name, label=name.title(), fields=tuple(_field(p) for p in props))


def _field(prop: dict[str, Any]) -> FieldSchema:
    meta = prop.get("modificationMetadata") or {}
    writable = not meta.get("readOnlyValue", False) and not prop.get("calculated", False)
    options = tuple(str(o["value"]) for o in prop.get("options") or () if not o.get("hidden"))
    kind = core_type(prop)
    return FieldSchema(
        name=str(prop["name"]),
        type=kind,
        label=str(prop.get("label", "")),
        nillable=True,
        createable=writable,
        updateable=writable,
        unique=bool(prop.get("hasUniqueValue")) or prop.get("name") == "email",
        picklist_values=options if kind in ("picklist", "multipicklist") else (),
        restricted_picklist=kind in ("picklist", "multipicklist") and bool(options),
    )
