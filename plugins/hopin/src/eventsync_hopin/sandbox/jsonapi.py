"""JSON:API envelopes, list filters and page links as the sandbox puts them on the wire.

Documented by Hopin: ``{"data": {"id", "type", "attributes"}}`` for one resource and
``{"data": [...], "links": {"next": <absolute URL or null>}}`` for lists, camelCase attributes.
Assumed (configurable in the plugin): the filter wire encoding, page-size parameters and the
error body, here JSON:API ``{"errors": [{"status", "title", "detail"}]}``.
"""

from __future__ import annotations

import bisect
import copy
import datetime as dt
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from flask import Response, request

from .ids import parse_iso
from .store import TYPES

OPERATORS = frozenset({"eq", "in", "gt", "lt", "gte", "lte"})
_DEEP = re.compile(r"^filter\[(?P<field>[A-Za-z]+)\]\[(?P<op>[a-z]+)\](?:\[\])?$")
_FLAT = re.compile(r"^(?P<field>[A-Za-z]+)\[(?P<op>[a-z]+)\](?:\[\])?$")

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class ApiError(Exception):
    """An error answered as a JSON:API error document."""

    def __init__(self, status: int, detail: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = dict(headers or {})


def error_response(status: int, detail: str, headers: Mapping[str, str] | None = None) -> Response:
    """``{"errors": [{"status", "title", "detail"}]}`` with the given HTTP status."""
    body = {
        "errors": [{"status": str(status), "title": _TITLES.get(status, "Error"), "detail": detail}]
    }
    return json_response(body, status, headers)


def json_response(
    body: Any, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """A JSON response (``application/json; charset=utf-8``; Hopin's content type is not documented)."""
    response = Response(json.dumps(body), status=status, mimetype="application/json")
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def resource(collection: str, item: Mapping[str, Any]) -> dict[str, Any]:
    """One resource object: ``{"id", "type", "attributes"}``."""
    return {"id": item["id"], "type": TYPES[collection], "attributes": item["attributes"]}


def document(collection: str, item: Mapping[str, Any], status: int = 200) -> Response:
    """A single-resource document."""
    return json_response({"data": resource(collection, item)}, status)


def write_attributes(expected_type: str) -> dict[str, Any]:
    """The ``data.attributes`` of a JSON:API write body; 400 when the envelope is wrong.

    The type is compared case-insensitively (Hopin's 2022 examples used ``Registration``).
    """
    body = request.get_json(silent=True)
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        raise ApiError(400, 'body must be {"data": {"type": ..., "attributes": {...}}}')
    data = body["data"]
    if str(data.get("type", "")).lower() != expected_type.lower():
        raise ApiError(400, f"data.type must be {expected_type!r}, got {data.get('type')!r}")
    attributes = data.get("attributes")
    if not isinstance(attributes, dict):
        raise ApiError(400, "data.attributes must be an object")
    return attributes


# --- filters -----------------------------------------------------------------------------


def parse_filters(allowed: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Read list filters in any of the accepted encodings: ``filter[f][op]=``, ``f[op]=``, or a
    JSON body on the GET (``{"f": {"op": v}}`` or ``{"filter": {...}}``), as the Postman
    collection shows them. ``in`` values are comma-separated or repeated. 400 for unknown ones.
    """
    found: dict[str, dict[str, Any]] = {}
    for key in request.args:
        match = _DEEP.match(key) or _FLAT.match(key)
        if not match:
            continue
        values = request.args.getlist(key)
        op = match["op"]
        value: Any = [v for raw in values for v in raw.split(",")] if op == "in" else values[-1]
        found.setdefault(match["field"], {})[op] = value
    if request.method == "GET" and request.data:
        body = request.get_json(silent=True)
        if isinstance(body, dict):
            body = body.get("filter", body)
            for field, ops in body.items():
                if isinstance(ops, dict):
                    found.setdefault(field, {}).update(ops)
    for field, ops in found.items():
        if field not in allowed:
            raise ApiError(400, f"unknown filter {field!r} (allowed: {', '.join(allowed)})")
        for op in ops:
            if op not in OPERATORS:
                raise ApiError(400, f"unknown filter operator {op!r} on {field!r}")
    return found


def _coerce(value: Any, sample: Any) -> Any:
    if isinstance(sample, bool):
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if isinstance(sample, str) and _looks_like_time(sample):
        return parse_iso(str(value))
    return value


def _looks_like_time(text: str) -> bool:
    return len(text) >= 19 and text[4] == "-" and text[10] == "T"


def matches(attributes: Mapping[str, Any], filters: Mapping[str, Mapping[str, Any]]) -> bool:
    """True when a resource's attributes satisfy every filter."""
    for field, ops in filters.items():
        actual = attributes.get(field)
        if actual is None:
            return False
        left: Any = (
            parse_iso(actual) if isinstance(actual, str) and _looks_like_time(actual) else actual
        )
        if isinstance(left, str) and field == "email":
            left = left.lower()
        for op, raw in ops.items():
            try:
                if op == "in":
                    values = raw if isinstance(raw, list) else [raw]
                    right_set = [_norm(_coerce(v, actual), field) for v in values]
                    if left not in right_set:
                        return False
                    continue
                right = _norm(_coerce(raw, actual), field)
            except ValueError as exc:
                raise ApiError(400, f"bad value for filter {field}[{op}]: {exc}") from exc
            ok = {
                "eq": left == right,
                "gt": left > right,
                "lt": left < right,
                "gte": left >= right,
                "lte": left <= right,
            }[op]
            if not ok:
                return False
    return True


def _norm(value: Any, field: str) -> Any:
    return value.lower() if field == "email" and isinstance(value, str) else value


def time_range(
    items: list[dict[str, Any]], times: list[dt.datetime], ops: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The part of ``items`` (ascending by ``times``, their parsed times) that the range
    operators ``ops`` (gt, gte, lt, lte: values as the query gave them) keep: bisected, as
    ``matches`` would filter it."""
    low, high = 0, len(items)
    for op, raw in ops.items():
        try:
            bound = parse_iso(str(raw))
        except ValueError as exc:
            raise ApiError(400, f"bad value for filter [{op}]: {exc}") from exc
        if op == "gte":
            low = max(low, bisect.bisect_left(times, bound))
        elif op == "gt":
            low = max(low, bisect.bisect_right(times, bound))
        elif op == "lt":
            high = min(high, bisect.bisect_left(times, bound))
        else:
            high = min(high, bisect.bisect_right(times, bound))
    return items[low:high] if low < high else []


def sort_items(items: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    """``items`` in the order of a ``sort`` parameter (``field`` or ``-field``), then id."""
    return sorted(items, key=_sort_key(sort.lstrip("-")), reverse=sort.startswith("-"))


def _sort_key(field: str):
    def key(item: Mapping[str, Any]) -> tuple[Any, str]:
        """Sort by the field (timestamps parsed), then id."""
        value = item["attributes"].get(field)
        if isinstance(value, str) and _looks_like_time(value):
            return (parse_iso(value), item["id"])
        return (value if value is not None else dt.datetime.min.replace(tzinfo=dt.UTC), item["id"])

    return key


# --- pages -------------------------------------------------------------------------------


def page_params(default_size: int, max_size: int) -> tuple[int, int]:
    """Page number (1-based) and size from ``page``/``page[number]`` and ``perPage``/
    ``per_page``/``page[size]``; the size is capped at ``max_size``."""
    try:
        number = int(request.args.get("page[number]") or request.args.get("page") or 1)
        size = int(
            request.args.get("perPage")
            or request.args.get("per_page")
            or request.args.get("page[size]")
            or default_size
        )
    except ValueError as exc:
        raise ApiError(400, f"bad page parameter: {exc}") from exc
    if number < 1 or size < 1:
        raise ApiError(400, "page and page size must be positive")
    return number, min(size, max_size)


def list_document(
    collection: str,
    items: list[dict[str, Any]],
    filters: Mapping[str, Mapping[str, Any]],
    default_size: int,
    max_size: int,
    *,
    presorted: bool = False,
) -> Response:
    """One page of a list with ``links.next`` as an absolute URL (null on the last page) and
    ``meta.count``. The next link carries the filters in ``filter[f][op]`` form and the page.
    ``presorted``: ``items`` are already in the order the request's ``sort`` asks for."""
    sort = request.args.get("sort", "")
    if sort and not presorted:
        items = sort_items(items, sort)
    number, size = page_params(default_size, max_size)
    start = (number - 1) * size
    page = copy.deepcopy(items[start : start + size])
    next_url = None
    if start + size < len(items):
        params: list[tuple[str, str]] = []
        for field, ops in filters.items():
            for op, value in ops.items():
                text = ",".join(map(str, value)) if isinstance(value, list) else value
                if isinstance(text, bool):
                    text = "true" if text else "false"
                params.append((f"filter[{field}][{op}]", str(text)))
        if sort:
            params.append(("sort", sort))
        params += [("page", str(number + 1)), ("perPage", str(size))]
        next_url = f"{request.base_url}?{urlencode(params)}"
    body = {
        "data": [resource(collection, item) for item in page],
        "links": {"self": request.url, "next": next_url},
        "meta": {"count": len(items), "page": number, "perPage": size},
    }
    return json_response(body)
