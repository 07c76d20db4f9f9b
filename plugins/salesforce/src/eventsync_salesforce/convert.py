"""Wire format <-> eventsync records, through a private cattrs converter.

* describe field dicts -> :class:`FieldSchema` (camelCase renamed by cattrs overrides);
* query rows -> :class:`Record` (``attributes`` dropped, parents nested, datetimes parsed);
* Python values -> JSON values for writes (datetimes in Salesforce's format).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import cattrs
from cattrs.gen import make_dict_structure_fn, override
from eventsync.models import FieldSchema, ObjectSchema, Record

SYSTEM = "salesforce"

#: Salesforce field types that are not core types, mapped onto core ones.
TYPE_MAP = {
    "combobox": "picklist",
    "encryptedstring": "string",
    "long": "int",
    "base64": "any",
    "anyType": "any",
    "address": "json",
    "location": "json",
    "complexvalue": "json",
    "datacategorygroupreference": "string",
}


def _make_converter() -> cattrs.Converter:
    converter = cattrs.Converter()
    converter.register_structure_hook(
        FieldSchema,
        make_dict_structure_fn(
            FieldSchema,
            converter,
            defaulted_on_create=override(rename="defaultedOnCreate"),
            external_id=override(rename="externalId"),
            id_lookup=override(rename="idLookup"),
            picklist_values=override(rename="picklistValues"),
            restricted_picklist=override(rename="restrictedPicklist"),
            reference_to=override(rename="referenceTo"),
            relationship_name=override(rename="relationshipName"),
        ),
    )
    return converter


_CONVERTER = _make_converter()


def field_schema(wire: Mapping[str, Any]) -> FieldSchema:
    """A FieldSchema from one ``fields[]`` entry of a describe."""
    data = dict(wire)
    data["type"] = TYPE_MAP.get(str(data.get("type")), str(data.get("type")))
    data["picklistValues"] = tuple(
        entry["value"] for entry in data.get("picklistValues") or () if entry.get("active", True)
    )
    data["referenceTo"] = tuple(data.get("referenceTo") or ())
    data["length"] = data.get("length") or None
    data["label"] = data.get("label") or ""
    data["restrictedPicklist"] = bool(data.get("restrictedPicklist", False))
    return _CONVERTER.structure(data, FieldSchema)


def object_schema(wire: Mapping[str, Any]) -> ObjectSchema:
    """An ObjectSchema from a DescribeSObjectResult."""
    return ObjectSchema(
        name=wire["name"],
        fields=tuple(field_schema(f) for f in wire.get("fields", ())),
        label=wire.get("label", ""),
        createable=bool(wire.get("createable", True)),
        updateable=bool(wire.get("updateable", True)),
        queryable=bool(wire.get("queryable", True)),
        deletable=bool(wire.get("deletable", True)),
    )


def parse_datetime(text: str) -> dt.datetime:
    """Salesforce's ``2024-01-02T03:04:05.000+0000`` as an aware datetime."""
    value = text.replace("Z", "+00:00")
    if len(value) > 5 and value[-5] in "+-" and value[-3] != ":":
        value = value[:-2] + ":" + value[-2:]
    return dt.datetime.fromisoformat(value)


def format_datetime(value: dt.datetime) -> str:
    """A datetime in Salesforce's wire format (UTC, milliseconds)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _value(field: FieldSchema | None, value: Any) -> Any:
    if value is None or field is None or not isinstance(value, str):
        return value
    try:
        if field.type == "datetime":
            return parse_datetime(value)
        if field.type == "date":
            return dt.date.fromisoformat(value)
    except ValueError:
        return value
    return value


def record_fields(
    schema: ObjectSchema | None, row: Mapping[str, Any], parents: Mapping[str, ObjectSchema]
) -> dict[str, Any]:
    """A query row's fields: ``attributes`` dropped, values typed, parents as nested dicts."""
    fields: dict[str, Any] = {}
    for name, value in row.items():
        if name == "attributes":
            continue
        if isinstance(value, Mapping):
            if "records" in value:  # a child subquery
                fields[name] = [record_fields(None, r, {}) for r in value.get("records", ())]
                continue
            parent = parents.get(name.lower())
            fields[name] = record_fields(parent, value, {})
            continue
        field = schema.field(name) if schema is not None else None
        fields[name] = _value(field, value)
    return fields


def record(
    schema: ObjectSchema | None,
    object_name: str,
    row: Mapping[str, Any],
    parents: Mapping[str, ObjectSchema],
) -> Record:
    """A Record from a query row."""
    fields = record_fields(schema, row, parents)
    modified = fields.get("SystemModstamp")
    if isinstance(modified, str):
        modified = parse_datetime(modified)
    return Record(
        system=SYSTEM,
        object=object_name,
        id=fields.get("Id"),
        fields=fields,
        modified_at=modified if isinstance(modified, dt.datetime) else None,
        deleted=bool(fields.get("IsDeleted", False)),
    )


def to_wire(value: Any) -> Any:
    """A Python value as JSON for a write."""
    if isinstance(value, dt.datetime):
        return format_datetime(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: to_wire(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return ";".join(str(v) for v in value)  # multipicklist
    return value
