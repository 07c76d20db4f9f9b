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
import re
from collections.abc import Callable, Iterable, Mapping
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
    length = args.get("length")
    if length is None:
        length = target.length if target is not None else None
        return str(value)[:length] if length else str(value)  # 0: a field without a length
    # A bool is an int, and a negative slice would cut from the end: refuse both.
    if isinstance(length, bool) or not isinstance(length, int) or length < 1:
        raise ValueError(f"truncate length must be a whole number of at least 1, got {length!r}")
    return str(value)[:length]


def _parse_datetime(value: Any) -> dt.datetime:
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime(value.year, value.month, value.day)
    elif isinstance(value, bool):
        raise ValueError(f"{value!r} is not a date or date-time")
    elif isinstance(value, (int, float)):
        try:
            parsed = dt.datetime.fromtimestamp(value, dt.UTC)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"{value!r} is not a timestamp of a representable date") from None
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


def _read(value: Any, args: Mapping[str, Any]) -> dt.datetime:
    """The date-time in ``value``, read with ``args.input_format`` when given for text."""
    if "input_format" not in args or not isinstance(value, str):
        return _parse_datetime(value)
    fmt = args["input_format"]
    try:
        return dt.datetime.strptime(value, fmt).replace(tzinfo=dt.UTC)
    except (ValueError, re.error) as exc:  # re.error: a directive given twice ("%d %d")
        raise ValueError(f"{value!r} cannot be read with input_format {fmt!r}: {exc}") from None


def _convert(value: dt.datetime, zone: dt.tzinfo) -> dt.datetime:
    """``value`` in ``zone``; a readable ValueError when that moment has no date there."""
    try:
        return value.astimezone(zone)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} is out of range once converted to {zone}") from None


def date(value: Any, args: Mapping[str, Any], target: FieldSchema | None) -> Any:
    """Format a date (``args.format``, default ISO ``YYYY-MM-DD``); accepts dates, date-times, ISO text."""
    if value in (None, ""):
        return None
    parsed = _read(value, args)
    tz = args.get("timezone")
    if tz:
        from zoneinfo import ZoneInfo

        try:
            zone = ZoneInfo(tz)
        except (KeyError, ValueError):  # ZoneInfoNotFoundError is a KeyError
            raise ValueError(
                f"unknown time zone {tz!r} (an IANA name such as Europe/Paris)"
            ) from None
        parsed = _convert(parsed, zone)
    if "format" in args:
        return parsed.strftime(args["format"])
    return parsed.date().isoformat()  # not %Y, which glibc writes unpadded ("999")


def datetime(value: Any, args: Mapping[str, Any], target: FieldSchema | None) -> Any:
    """Format a date-time in UTC (``args.format``, default ``YYYY-MM-DDTHH:MM:SS.000Z``)."""
    if value in (None, ""):
        return None
    parsed = _convert(_read(value, args), dt.UTC)
    fmt = args.get("format")
    if fmt:
        return parsed.strftime(fmt)
    return parsed.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


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
    if not isinstance(value, Iterable):
        raise ValueError(f"{value!r} is not a list of values to join")
    separator = args.get("separator")
    if separator is None:  # absent or given as null: the default
        separator = ";"
    if not isinstance(separator, str):
        raise ValueError(f"join's separator must be text, not {separator!r}")
    return separator.join(str(v) for v in value)


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
