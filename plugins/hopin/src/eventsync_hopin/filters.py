"""Pull filters: which go on the wire (and in which encoding), and the rest applied locally.

Hopin documents the filterable fields and operators (registrations: ``email`` eq/in,
``createdAt``/``updatedAt``/``userUpdatedAt`` eq/in/gt/lt/gte/lte, ``refunded`` eq; magic links:
``email`` eq/in, ``updatedAt`` ...), but not their wire encoding: ``filter_encoding`` picks
``filter`` (``filter[email][eq]=``, default), ``bracket`` (``email[eq]=``) or ``json_body``
(a JSON body on the GET, as the Postman collection shows).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from eventsync.models import Filter, Record

from .convert import parse_time, wire_time

_TIME_OPS = frozenset({"eq", "in", "gt", "lt", "gte", "lte"})
WIRE_FILTERS: Mapping[str, Mapping[str, frozenset[str]]] = {
    "registration": {
        "email": frozenset({"eq", "in"}),
        "createdAt": _TIME_OPS,
        "updatedAt": _TIME_OPS,
        "userUpdatedAt": _TIME_OPS,
        "refunded": frozenset({"eq"}),
    },
    "magicLink": {"email": frozenset({"eq", "in"}), "updatedAt": _TIME_OPS},
}
OPS = {"=": "eq", "in": "in", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}


def split(obj: str, filters: Iterable[Filter]) -> tuple[list[Filter], list[Filter]]:
    """(filters sent to Hopin, filters applied locally) for object ``obj``."""
    wire, local = [], []
    allowed = WIRE_FILTERS.get(obj, {})
    for item in filters:
        op = OPS.get(item.op)
        if op is not None and op in allowed.get(item.field, frozenset()):
            wire.append(item)
        else:
            local.append(item)
    return wire, local


def _wire_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return wire_time(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def encode(
    filters: Sequence[Filter], encoding: str
) -> tuple[dict[str, str], dict[str, Any] | None]:
    """(query parameters, JSON body or None) carrying ``filters`` in ``encoding``."""
    params: dict[str, str] = {}
    body: dict[str, Any] = {}
    for item in filters:
        op = OPS[item.op]
        if op == "in":
            values = [_wire_value(v) for v in item.value]
            text = ",".join(str(v) for v in values)
        else:
            values = _wire_value(item.value)
            text = str(values)
        if encoding == "json_body":
            body.setdefault(item.field, {})[op] = values
        elif encoding == "bracket":
            params[f"{item.field}[{op}]"] = text
        else:
            params[f"filter[{item.field}][{op}]"] = text
    return params, (body or None)


def _comparable(left: Any, right: Any) -> tuple[Any, Any]:
    if isinstance(left, dt.datetime) and isinstance(right, str):
        right = parse_time(right)
    if isinstance(left, str) and isinstance(right, dt.datetime):
        left = parse_time(left)
    if isinstance(left, str) and isinstance(right, str):
        return left.lower(), right.lower()
    return left, right


def matches(record: Record, filters: Iterable[Filter]) -> bool:
    """True when ``record`` satisfies every filter (strings compare case-insensitively)."""
    for item in filters:
        actual = record.get(item.field) if item.field != "id" else record.id
        if item.op == "in":
            if not any(_equal(actual, v) for v in item.value):
                return False
            continue
        if item.op == "like":
            if actual is None or not fnmatch.fnmatch(
                str(actual).lower(), str(item.value).lower().replace("%", "*")
            ):
                return False
            continue
        if item.op == "=":
            if not _equal(actual, item.value):
                return False
            continue
        if item.op == "!=":
            if _equal(actual, item.value):
                return False
            continue
        if actual is None:
            return False
        left, right = _comparable(actual, item.value)
        try:
            ok = {">": left > right, ">=": left >= right, "<": left < right, "<=": left <= right}[
                item.op
            ]
        except TypeError:
            return False
        if not ok:
            return False
    return True


def _equal(left: Any, right: Any) -> bool:
    left, right = _comparable(left, right)
    return left == right
