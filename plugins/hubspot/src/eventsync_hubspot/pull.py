"""Reading records: by ids (``batch/read``), by filters and changed since a watermark (the
search API), streamed one page at a time.

A scan sorts on ``hs_lastmodifieddate`` (the search API takes one sort) and follows the
``after`` offsets. HubSpot's search reaches at most 10,000 results per query (``search_cap``),
so a longer scan starts a new query from the last timestamp it yielded, skipping the records
of that timestamp it already gave: no record is lost or repeated within one pull. A pull
``since`` a watermark asks for every record stamped at or after its timestamp (minus the
overlap): records sharing the watermark's timestamp are read again, which the CRM contract
allows, so the order of ties, which HubSpot does not define, never loses one.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator, Sequence
from typing import Any

from eventsync.errors import FatalError
from eventsync.models import Filter, PullRequest, Record

from .client import HubSpotConnection, call
from .schema import core_type, properties
from .settings import MAX_BATCH, MAX_PAGE, SYSTEM

#: Field names flows use for the record id; HubSpot's is ``hs_object_id``.
ID_NAMES = ("id", "Id", "hs_object_id")
MODIFIED = "hs_lastmodifieddate"
OPERATORS = {"=": "EQ", "!=": "NEQ", "<": "LT", "<=": "LTE", ">": "GT", ">=": "GTE"}


def pull(conn: HubSpotConnection, request: PullRequest) -> Iterator[Record]:
    """The records ``request`` asks for, as a lazy iterator."""
    wanted = [f for f in request.fields if f not in ID_NAMES]
    if request.ids and not request.filters and request.since is None:
        records = _by_ids(conn, request.object, request.ids, wanted)
    elif request.ids:  # ids with filters: one search per chunk of ids (any order is fine)
        records = itertools.chain.from_iterable(
            _scan(conn, request, wanted, ids=list(request.ids[i : i + MAX_BATCH]))
            for i in range(0, len(request.ids), MAX_BATCH)
        )
    else:
        records = _scan(conn, request, wanted, ids=None)
    return itertools.islice(records, request.limit) if request.limit is not None else records


def _by_ids(
    conn: HubSpotConnection, obj: str, ids: Sequence[str], wanted: list[str]
) -> Iterator[Record]:
    for start in range(0, len(ids), MAX_BATCH):
        body = {
            "inputs": [{"id": str(i)} for i in ids[start : start + MAX_BATCH]],
            "properties": [*wanted, MODIFIED],
        }
        # Missing ids come back as a 207's errors (OBJECT_NOT_FOUND): left out, as the
        # contract wants.
        answer = call(conn, "POST", f"/crm/v3/objects/{obj}/batch/read", body)
        yield from (to_record(conn, obj, row) for row in answer.get("results", ()))


def _scan(
    conn: HubSpotConnection, request: PullRequest, wanted: list[str], ids: list[str] | None
) -> Iterator[Record]:
    filters = [search_filter(f) for f in request.filters]
    if ids is not None:
        filters.append({"propertyName": "hs_object_id", "operator": "IN", "values": ids})
    lower: dt.datetime | None = None
    if request.since is not None:
        lower = request.since.timestamp - dt.timedelta(seconds=request.overlap)
    limit = max(1, min(request.page_size or conn.settings.page_size, MAX_PAGE))
    cap = conn.settings.search_cap
    last: dt.datetime | None = None  # the timestamp of the last record yielded
    given_at_last: set[str] = set()  # the ids yielded with that timestamp
    while True:
        bound = [] if lower is None else [_since_filter(lower)]
        body: dict[str, Any] = {
            "filterGroups": [{"filters": filters + bound}],
            "sorts": [{"propertyName": MODIFIED, "direction": "ASCENDING"}],
            "properties": [*wanted, MODIFIED],
            "limit": limit,
        }
        while True:
            page = call(conn, "POST", f"/crm/v3/objects/{request.object}/search", body)
            for row in page.get("results", ()):
                record = to_record(conn, request.object, row)
                if record.modified_at == last and record.id in given_at_last:
                    continue  # already yielded before this query restarted
                if record.modified_at != last:
                    last, given_at_last = record.modified_at, set()
                given_at_last.add(str(record.id))
                yield record
            after = (page.get("paging") or {}).get("next", {}).get("after")
            if not after:
                return
            offset = int(after)
            if offset >= cap:
                break  # the query's window ends here: start another from ``last``
            # The last page of a window stops at the cap, so every window reads ``cap`` records.
            body.update(after=after, limit=min(limit, cap - offset))
        if last is None or last == lower:
            raise FatalError(
                "SEARCH_CAP",
                f"more than {cap} {request.object} records share {MODIFIED} = {last}: the "
                "search API cannot page past them",
                system=SYSTEM,
            )
        lower = last


def _since_filter(lower: dt.datetime) -> dict[str, Any]:
    return {"propertyName": MODIFIED, "operator": "GTE", "value": str(epoch_ms(lower))}


def search_filter(item: Filter) -> dict[str, Any]:
    """A core Filter as a HubSpot search filter (``!= None`` is HAS_PROPERTY)."""
    name = "hs_object_id" if item.field in ID_NAMES else item.field
    if item.value is None and item.op in ("=", "!="):
        operator = "NOT_HAS_PROPERTY" if item.op == "=" else "HAS_PROPERTY"
        return {"propertyName": name, "operator": operator}
    if item.op == "in":
        return {"propertyName": name, "operator": "IN", "values": [_wire(v) for v in item.value]}
    if item.op not in OPERATORS:
        raise FatalError(
            "UNSUPPORTED_FILTER",
            f"hubspot search cannot filter with {item.op!r} (supported: "
            f"{', '.join([*OPERATORS, 'in'])} and = / != None)",
            system=SYSTEM,
        )
    return {"propertyName": name, "operator": OPERATORS[item.op], "value": _wire(item.value)}


def to_record(conn: HubSpotConnection, obj: str, row: dict[str, Any]) -> Record:
    """One HubSpot object as a core Record: string values typed by the property schema;
    ``updatedAt`` (``hs_lastmodifieddate``) is its watermark timestamp."""
    types = _types(conn, obj)
    fields = {k: typed(types.get(k), v) for k, v in (row.get("properties") or {}).items()}
    stamp = row.get("updatedAt") or fields.get(MODIFIED)
    return Record(
        system=SYSTEM,
        object=obj,
        id=str(row["id"]),
        fields=fields,
        modified_at=parse_time(stamp) if stamp else None,
        deleted=bool(row.get("archived")),
    )


def _types(conn: HubSpotConnection, obj: str) -> dict[str, str]:
    return {str(p["name"]): core_type(p) for p in properties(conn, obj)}


def typed(kind: str | None, value: Any) -> Any:
    """HubSpot sends every value as a string: numbers and booleans are turned back."""
    if not isinstance(value, str):
        return value
    if value == "":
        return None
    if kind == "double":
        try:
            number = float(value)
        except ValueError:
            return value
        return int(number) if number.is_integer() and "." not in value else number
    if kind == "boolean":
        return value == "true"
    return value


def parse_time(value: Any) -> dt.datetime:
    """An ISO 8601 timestamp (``...Z``) or epoch milliseconds as an aware datetime."""
    text = str(value)
    if text.isdigit():
        return dt.datetime.fromtimestamp(int(text) / 1000, dt.UTC)
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def epoch_ms(value: dt.datetime) -> int:
    """Milliseconds since the epoch (how search filters take datetimes)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return int(value.timestamp() * 1000)


def wire_value(value: Any) -> Any:
    """A core value as HubSpot takes it in properties."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        value = value.astimezone(dt.UTC)
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _wire(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return str(epoch_ms(value))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
