"""Schema discovery: ``GET /v1/schema`` in ExampleCRM's own types, mapped onto core types."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsync.errors import DiscoveryError
from eventsync.models import FieldSchema, ObjectSchema, Schema

from .client import ExampleConnection, call
from .settings import SYSTEM

#: ExampleCRM property type -> core field type.
TYPES = {
    "string": "string",
    "email": "email",
    "url": "url",
    "enumeration": "picklist",
    "number": "double",
    "datetime": "datetime",
}


def discover(conn: ExampleConnection, objects: Sequence[str] | None) -> Schema:
    """Describe ``objects`` (default: every object); DiscoveryError names an unknown one."""
    raw = {o["name"]: o for o in call(conn, "GET", "/v1/schema")["objects"]}
    wanted = list(raw) if objects is None else list(objects)
    unknown = [name for name in wanted if name not in raw]
    if unknown:
        raise DiscoveryError(
            f"examplecrm has no object {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(sorted(raw))}); names are case-sensitive"
        )
    return Schema(SYSTEM, {name: _object(raw[name]) for name in wanted})


def _object(raw: dict[str, Any]) -> ObjectSchema:
    return ObjectSchema(
        name=raw["name"],
        label=raw.get("label", ""),
        fields=tuple(_field(p) for p in raw["properties"]),
    )


def _field(raw: dict[str, Any]) -> FieldSchema:
    writable = not raw.get("readOnly", False)
    options = tuple(raw.get("options") or ())
    return FieldSchema(
        name=raw["name"],
        type=TYPES.get(raw["type"], "any"),
        label=raw.get("label", ""),
        nillable=not raw.get("required", False),
        createable=writable,
        updateable=writable,
        unique=bool(raw.get("unique", False)),
        picklist_values=options,
        restricted_picklist=bool(options),
    )
