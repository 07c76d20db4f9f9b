"""Field-level validation like a real org: types, lengths, required fields, picklists.

Messages follow the wording of Salesforce's documentation.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

from . import ids, soql
from .errors import SfError
from .metadata import FieldDef, ObjectDef

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def coerce(obj: ObjectDef, field: FieldDef, value: Any) -> Any:
    """Check one incoming value against its field and return its stored wire form."""
    if value is None:
        return None
    kind = field.type
    where = f"{field.name}"
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise SfError(
            "JSON_PARSER_ERROR",
            f"Cannot deserialize instance of boolean from "
            f"VALUE_STRING value {value} or request may be missing a required field",
            [],
        )
    if kind in ("int", "double", "currency", "percent"):
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise SfError(
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
                f"{field.label}: value not of required type: {value}",
                [field.name],
            ) from None
        return int(number) if kind == "int" else number
    if kind == "date":
        try:
            return dt.date.fromisoformat(str(value)[:10]).isoformat()
        except ValueError:
            raise SfError(
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
                f"{field.label}: value not of required type: {value}",
                [field.name],
            ) from None
    if kind == "datetime":
        try:
            return soql.format_datetime(soql.parse_datetime(str(value)))
        except ValueError:
            raise SfError(
                "INVALID_TYPE_ON_FIELD_IN_RECORD",
                f"{field.label}: value not of required type: {value}",
                [field.name],
            ) from None
    if kind in ("reference", "id"):
        full = ids.normalise(str(value))
        if full is None:
            raise SfError(
                "MALFORMED_ID", f"{field.label}: id value of incorrect type: {value}", [field.name]
            )
        return full
    text = str(value)
    if field.length and len(text) > field.length:
        raise SfError(
            "STRING_TOO_LONG",
            f"{field.label}: data value too large: {text} (max length={field.length})",
            [field.name],
        )
    if kind == "email" and text and not _EMAIL.match(text):
        raise SfError(
            "INVALID_EMAIL_ADDRESS", f"{field.label}: invalid email address: {text}", [field.name]
        )
    if kind == "picklist" and field.restricted and text not in field.picklist:
        raise SfError(
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{field.label}: bad value for restricted picklist field: {text}",
            [field.name],
        )
    del where
    return text


def check_writable(obj: ObjectDef, values: Mapping[str, Any], creating: bool) -> dict[str, Any]:
    """Resolve field names, refuse unknown or read-only fields, coerce values.

    Returns the values keyed by canonical field names.
    """
    result: dict[str, Any] = {}
    for name, value in values.items():
        if name == "attributes":
            continue
        field = obj.field(name)
        if field is None:
            raise SfError(
                "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj.name}", []
            )
        allowed = field.createable if creating else field.updateable
        if not allowed:
            raise SfError(
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {field.name}. Please check the "
                "security settings of this field and verify that it is read/write "
                "for your profile or permission set.",
                [field.name],
            )
        result[field.name] = coerce(obj, field, value)
    return result


def check_required(obj: ObjectDef, record: Mapping[str, Any]) -> None:
    """REQUIRED_FIELD_MISSING for every required field without a value."""
    missing = [
        field.name
        for field in obj.fields
        if not field.nillable
        and field.createable
        and not field.defaulted_on_create
        and field.type != "boolean"
        and record.get(field.name) in (None, "")
    ]
    if missing:
        raise SfError(
            "REQUIRED_FIELD_MISSING",
            f"Required fields are missing: [{', '.join(missing)}]",
            missing,
        )
