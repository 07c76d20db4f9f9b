"""Built-in field transforms, registered through the ``register_transforms`` hook.

A transform is ``fn(value, args, target_field) -> value``: ``args`` come from the mapping
entry, ``target_field`` is the target's FieldSchema (or None when the schema is unknown).
A transform raises ValueError with a readable message when the value cannot be transformed;
the mapper turns that into a MappingError naming the mapping entry.

``OUTPUT_TYPES`` tells mapping validation what type a transform produces, so that
``date`` on a text source can feed a date field without a type-mismatch error.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from .hookspecs import TransformFn, hookimpl
from .models import FieldSchema

__all__ = ["OUTPUT_TYPES", "BUILTIN_TRANSFORMS", "register_transforms"]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def strip(value: Any, args: Mapping[str, Any], target: FieldSchema | None) -> Any:
    """Remove surrounding whitespace (or ``args.chars``)."""
    return None if value is None else str(value).strip(args.get("chars"))


def lower(value: Any, args: Mapping[str, Any], target: FieldSchema | None) -> Any:
    """Lower-case text."""
    return None if value is None else str(value).lower()


def upper(value: Any, args: Mapping[str, Any], target: FieldSchema | None) -> Any:
    """Upper-case text."""
    return None if value is None else str(value).upper()


def truncate(value: Any, args: Mapping[str, Any], target: FieldSchema | None) -> Any:
    """Cut text to ``args.length``, or to the target field's length when not given."""
    if value is None:
        return None
    length = args.get("length", target.length if target is not None else None)
    if not length:
        return str(value)
    return str(value)[: int(length)]


def _parse_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, (int, float)):
        parsed = dt.datetime.fromtimestamp(value, dt.UTC)
    else:
        text = str(value).strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        # Salesforce writes offsets without a colon (+0000); fromisoformat accepts both in 3.11.
        try:
            parsed = dt.datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO 8601 date or date-time") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def date(value: Any, args: Mapping[str, Any], target: FieldSchema | None) -> Any:
    """Format a date (``args.format``, default ISO ``YYYY-MM-DD``); accepts dates, date-times, ISO text."""
    if value in (None, ""):
        return None
    if "input_format" in args and isinstance(value, str):
        parsed = dt.datetime.strptime(value, args["input_format"]).replace(tzinfo=dt.UTC)
    else:
        parsed = _parse_datetime(value)
    tz = args.get("timezone")
    if tz:
        from zoneinfo import ZoneInfo

        parsed = parsed.astimezone(ZoneInfo(tz))
    return parsed.strftime(args.get("format", "%Y-%m-%d"))


def datetime(value: Any, args: Mapping[str, Any], target: FieldSchema | None) -> Any:
    """Format a date-time in UTC (``args.format``, default ``YYYY-MM-DDTHH:MM:SS.000Z``)."""
    if value in (None, ""):
        return None
    if "input_format" in args and isinstance(value, str):
        parsed = dt.datetime.strptime(value, args["input_format"]).replace(tzinfo=dt.UTC)
    else:
        parsed = _parse_datetime(value)
    parsed = parsed.astimezone(dt.UTC)
    fmt = args.get("format")
    if fmt:
        return parsed.strftime(fmt)
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.") + f"{parsed.microsecond // 1000:03d}Z"


def value_map(value: Any, args: Mapping[str, Any], target: FieldSchema | None) -> Any:
    """Translate values (``args.map``); unmapped values use ``args.default`` or pass through.

    With ``strict = true`` an unmapped value is an error instead.
    """
    table = args.get("map") or {}
    key = _text(value)
    if key in table:
        return table[key]
    if "default" in args:
        return args["default"]
    if args.get("strict"):
        raise ValueError(
            f"{value!r} has no entry in the value map (known: {', '.join(map(str, table))})"
        )
    return value


def default(value: Any, args: Mapping[str, Any], target: FieldSchema | None) -> Any:
    """Use ``args.value`` when the value is None or empty."""
    return args.get("value") if value in (None, "") else value


def boolean(value: Any, args: Mapping[str, Any], target: FieldSchema | None) -> Any:
    """Turn yes/no, true/false, 1/0 (any case) into a boolean; None stays None."""
    if value is None or isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "yes", "y", "1", "on"}:
        return True
    if text in {"false", "no", "n", "0", "off", ""}:
        return False
    raise ValueError(f"{value!r} is not a yes/no value")


def join(value: Any, args: Mapping[str, Any], target: FieldSchema | None) -> Any:
    """Join a list into text with ``args.separator`` (default ``;``, Salesforce's multipicklist)."""
    if value is None or isinstance(value, str):
        return value
    return args.get("separator", ";").join(str(v) for v in value)


BUILTIN_TRANSFORMS: dict[str, Callable[[Any, Mapping[str, Any], FieldSchema | None], Any]] = {
    "strip": strip,
    "lower": lower,
    "upper": upper,
    "truncate": truncate,
    "date": date,
    "datetime": datetime,
    "value_map": value_map,
    "default": default,
    "boolean": boolean,
    "join": join,
}

#: The core field type each transform produces; None means "same as its input".
OUTPUT_TYPES: dict[str, str | None] = {
    "strip": "string",
    "lower": "string",
    "upper": "string",
    "truncate": "string",
    "date": "date",
    "datetime": "datetime",
    "value_map": None,
    "default": None,
    "boolean": "boolean",
    "join": "string",
}


@hookimpl
def register_transforms(register: Callable[[str, TransformFn], None]) -> None:
    """Register the built-in transforms."""
    for name, fn in BUILTIN_TRANSFORMS.items():
        register(name, fn)
