"""Building SOQL from pull requests, with every value escaped.

Hand-written: SOQL generation is a few string rules (quoting, escaping, date formats) for
which no maintained Python library exists; the escaping follows the SOQL reference (backslash
escapes for quote, backslash, newline, carriage return, tab, and for ``%``/``_`` in LIKE).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
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
    if not _NAME.match(text):
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
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(dt.UTC)
        # SOQL datetime literals have whole seconds: round down (a watermark then re-reads
        # at most one second, which is harmless for idempotent syncs).
        return value.strftime("%Y-%m-%dT%H:%M:%SZ")
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
