"""Building SOQL from pull requests, with every value escaped.

Hand-written: SOQL generation is a few string rules (quoting, escaping, date formats) for
which no maintained Python library exists; the escaping follows the SOQL reference (backslash
escapes for quote, backslash, newline, carriage return, tab; ``%``/``_`` are left as they are,
so that a LIKE filter's value is a pattern).
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from eventsync.models import Filter

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
_ESCAPES = {
    "\\": "\\\\",
    "'": "\\'",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    '"': '\\"',
    "\b": "\\b",
    "\f": "\\f",
}


def name(text: str) -> str:
    """A field or object name, refused unless it is a plain (dotted) identifier."""
    # fullmatch: with match, ``$`` would also accept a name ending in a newline.
    if not _NAME.fullmatch(text):
        raise ValueError(f"not a valid Salesforce field or object name: {text!r}")
    return text


def quote(value: str) -> str:
    """A SOQL string literal (quotes, backslashes and control characters escaped)."""
    escaped = "".join(_ESCAPES.get(char, char) for char in value)
    return f"'{escaped}'"


def literal(value: Any) -> str:
    """Any Python value as a SOQL literal."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))  # int(): an IntEnum's repr is <Color.RED: 1>
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no SOQL literal")
        # Positional, never the exponent form (1e+16) that SOQL does not document.
        text = format(Decimal(repr(value)), "f")
        return text if "." in text else text + ".0"
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        try:
            value = value.astimezone(dt.UTC)
        except OverflowError:
            raise ValueError(f"{value!r} is outside the range of datetimes in UTC") from None
        # SOQL datetime literals have whole seconds: round down (a watermark then re-reads
        # at most one second, which is harmless for idempotent syncs). isoformat, not
        # strftime: %Y writes year 999 as "999" on glibc, not "0999".
        return value.replace(microsecond=0, tzinfo=None).isoformat() + "Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    return quote(str(value))


def in_list(values: Iterable[Any]) -> str:
    """``(v1, v2, ...)`` for IN."""
    return "(" + ", ".join(literal(v) for v in values) + ")"


def condition(item: Filter) -> str:
    """One filter as a WHERE term."""
    field = name(item.field)
    if item.op == "in":
        values = (
            list(item.value)
            if isinstance(item.value, (list, tuple, set, frozenset))
            else [item.value]
        )
        # An empty IN list is a SOQL syntax error; this term matches nothing instead.
        return f"{field} IN {in_list(values)}" if values else "Id = null AND Id != null"
    if item.op == "like":
        return f"{field} LIKE {quote(str(item.value))}"
    return f"{field} {item.op} {literal(item.value)}"
