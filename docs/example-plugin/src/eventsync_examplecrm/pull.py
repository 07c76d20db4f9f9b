"""Reading records: by ids (``batch/read``), by filters and changed since a watermark
(``search``), streamed one page at a time.

A search asks ExampleCRM to sort by ``(updatedAt, id)`` (the order watermarks are taken in)
and follows the opaque
``paging.next.after`` cursor, which resumes after the last record of the page, so records
sharing a timestamp are neither lost nor repeated at a page boundary. It re-reads the records
of the watermark's own timestamp (and ``overlap`` seconds before it): the contract allows
re-reads, and a late commit stamped a moment earlier is not missed.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

from eventsync.errors import FatalError
from eventsync.models import Filter, PullRequest, Record

from .client import ExampleConnection, call
from .settings import MAX_BATCH, MAX_PAGE, SYSTEM

#: Field names flows use for the record id; ExampleCRM has no such property.
ID_NAMES = ("id", "Id")
OPERATORS = {"=": "EQ", "!=": "NEQ", "<": "LT", "<=": "LTE", ">": "GT", ">=": "GTE", "in": "IN"}
#: Search in change order: the order watermarks are taken in.
CHANGE_ORDER = [
    {"propertyName": "updatedAt", "direction": "ASCENDING"},
    {"propertyName": "id", "direction": "ASCENDING"},
]


def pull(conn: ExampleConnection, request: PullRequest) -> Iterator[Record]:
    """The records ``request`` asks for, as a lazy iterator."""
    properties = [f for f in request.fields if f not in ID_NAMES]
    if request.ids and not request.filters and request.since is None:
        records = _by_ids(conn, request.object, request.ids, properties)
    else:
        records = _search(conn, request, properties)
    return itertools.islice(records, request.limit) if request.limit is not None else records


def _by_ids(
    conn: ExampleConnection, obj: str, ids: Sequence[str], properties: list[str]
) -> Iterator[Record]:
    for start in range(0, len(ids), MAX_BATCH):
        body = {"ids": list(ids[start : start + MAX_BATCH]), "properties": properties}
        answer = call(conn, "POST", f"/v1/objects/{obj}/batch/read", body)
        yield from (to_record(obj, row) for row in answer["results"])


def _search(
    conn: ExampleConnection, request: PullRequest, properties: list[str]
) -> Iterator[Record]:
    filters = [search_filter(f) for f in request.filters]
    if request.ids:
        filters.append({"propertyName": "id", "operator": "IN", "values": list(request.ids)})
    if request.since is not None:
        start = request.since.timestamp - dt.timedelta(seconds=request.overlap)
        filters.append({"propertyName": "updatedAt", "operator": "GTE", "value": wire_time(start)})
    body = {
        "filters": filters,
        "properties": properties,
        # Always in change order: pollers and backfills take their watermark from the last
        # record they saw, with or without a since (the first poll reads everything).
        "sorts": CHANGE_ORDER,
        "limit": min(request.page_size or conn.settings.page_size, MAX_PAGE),
    }
    yield from search_pages(conn, request.object, body)


def search_pages(conn: ExampleConnection, obj: str, body: dict[str, Any]) -> Iterator[Record]:
    """Every record of a search, fetching the next page only when this one is used up."""
    after: str | None = None
    while True:
        page = call(conn, "POST", f"/v1/objects/{obj}/search", {**body, "after": after})
        yield from (to_record(obj, row) for row in page["results"])
        after = page.get("paging", {}).get("next", {}).get("after")
        if not after:
            return


def search_filter(item: Filter) -> dict[str, Any]:
    """A core Filter as an ExampleCRM search filter (``!= None`` is "has a value")."""
    name = "id" if item.field in ID_NAMES else item.field
    if item.value is None and item.op in ("=", "!="):
        operator = "NOT_HAS_PROPERTY" if item.op == "=" else "HAS_PROPERTY"
        return {"propertyName": name, "operator": operator}
    if item.op not in OPERATORS:
        raise FatalError(
            "UNSUPPORTED_FILTER",
            f"examplecrm cannot filter with {item.op!r} (supported: {', '.join(OPERATORS)})",
            system=SYSTEM,
        )
    if item.op == "in":
        return {"propertyName": name, "operator": "IN", "values": [str(v) for v in item.value]}
    return {"propertyName": name, "operator": OPERATORS[item.op], "value": _wire(item.value)}


def to_record(obj: str, row: dict[str, Any]) -> Record:
    """One ExampleCRM record as a core Record; ``updatedAt`` is its watermark timestamp."""
    return Record(
        system=SYSTEM,
        object=obj,
        id=str(row["id"]),
        fields=row.get("properties", {}),
        modified_at=dt.datetime.fromisoformat(row["updatedAt"]),
    )


def wire_time(value: dt.datetime) -> str:
    """ExampleCRM's timestamp format: UTC, milliseconds, ``Z``."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _wire(value: Any) -> Any:
    return wire_time(value) if isinstance(value, dt.datetime) else value
