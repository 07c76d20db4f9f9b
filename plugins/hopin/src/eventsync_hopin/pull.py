"""Reading records: JSON:API lists followed page by page through the absolute ``links.next``."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from eventsync.errors import FatalError, RecordError
from eventsync.models import Filter, PullRequest, Record

from . import filters as flt
from . import windows
from .auth import HopinConnection
from .convert import SYSTEM, parse_list, parse_resource, to_record
from .reports import attendance

#: object -> (list path template, single path template)
PATHS = {
    "registration": ("/v1/events/{event}/registrations", "/v1/registrations/{id}"),
    "magicLink": ("/v1/tickets/{ticket}/magicLinks", "/v1/magicLinks/{id}"),
    "ticket": ("/v1/events/{event}/tickets", "/v1/tickets/{id}"),
    "event": ("/v1/organizations/{org}/events", "/v1/events/{id}"),
    "organization": ("/v1/organizations", "/v1/organizations/{id}"),
    "bankQuestion": ("/v1/tickets/{ticket}/bankQuestions", ""),
}
OBJECTS = (*PATHS, "attendance")


def pages(
    connection: HopinConnection,
    obj: str,
    path: str,
    params: dict[str, str],
    body: dict[str, Any] | None,
) -> Iterator[Record]:
    """Every record of a list, one page in memory at a time; ``links.next`` is used as given."""
    url: str | None = path
    first = True
    while url:
        document = connection.http.get_json(url, params=params if first else None, json_body=body)
        page = parse_list(document)
        for resource in page.data:
            yield to_record(obj, resource, connection.options)
        url = page.links.next
        first = False


def _event_id(connection: HopinConnection, request: PullRequest) -> str:
    for item in request.filters:
        if item.field == "eventId" and item.op == "=":
            return str(item.value)
    if not connection.event_id:
        raise FatalError(
            "NO_EVENT",
            f"pull {request.object}: set event_id in the hopin settings of "
            f"org {connection.org}, or filter on eventId",
            system=SYSTEM,
        )
    return connection.event_id


def _ticket_ids(connection: HopinConnection, request: PullRequest) -> list[str]:
    for item in request.filters:
        if item.field == "ticketId" and item.op == "=":
            return [str(item.value)]
        if item.field == "ticketId" and item.op == "in":
            return [str(v) for v in item.value]
    event = _event_id(connection, request)
    return [
        r.id for r in pages(connection, "ticket", f"/v1/events/{event}/tickets", {}, None) if r.id
    ]


def _by_ids(connection: HopinConnection, request: PullRequest) -> Iterator[Record]:
    """The records of ``request.ids``, in their order. With ``request.recent`` (most of them
    changed at or after it), registrations and magic links are read from the lists (the event's,
    or each ticket's) of those changed since then
    first, a page of up to ``page_size`` at a time instead of a call per id; whatever that does
    not find (older changes, or more changes than the pages read) is read by id, up to
    ``max_parallel`` calls at once."""
    wanted = list(dict.fromkeys(request.ids))
    found: dict[str, Record] = {}
    if request.recent is not None and request.object in RECENT_LISTS and len(wanted) > 1:
        found = _recently_changed(connection, request, set(wanted))
    missing = [record_id for record_id in wanted if record_id not in found]
    found.update(parallel_map(connection, missing, lambda i: _one(connection, request.object, i)))
    for record_id in wanted:
        if (record := found.get(record_id)) is not None:
            yield record


def _one(connection: HopinConnection, obj: str, record_id: str) -> Record | None:
    """One record by id; None when Hopin does not have it (404)."""
    try:
        body = connection.http.get_json(PATHS[obj][1].format(id=record_id))
    except RecordError as exc:
        if exc.status == 404:
            return None
        raise
    return to_record(obj, parse_resource(body), connection.options)


#: Objects whose reads by id may come from the list of recent changes instead.
RECENT_LISTS = frozenset({"registration", "magicLink"})


def _recent_paths(connection: HopinConnection, request: PullRequest) -> list[str]:
    """The lists a recent-changes read of ``request.object`` goes through: the event's
    registrations, or the magic links of each ticket (the cached ticket codes when filled)."""
    if request.object == "registration":
        return [PATHS["registration"][0].format(event=_event_id(connection, request))]
    tickets = sorted(set(connection.ticket_codes.values())) or _ticket_ids(connection, request)
    return [PATHS["magicLink"][0].format(ticket=t) for t in tickets]


def _recently_changed(
    connection: HopinConnection, request: PullRequest, wanted: set[str]
) -> dict[str, Record]:
    """The wanted records among those changed since ``request.recent`` (less the skew),
    oldest change first."""
    assert request.recent is not None
    options = connection.options
    try:
        paths = _recent_paths(connection, request)
    except FatalError:
        return {}
    start = request.recent - dt.timedelta(seconds=options.recent_skew)
    params, body = flt.encode([Filter("updatedAt", ">=", start)], options.filter_encoding)
    params[options.page_size_param] = str(options.page_size)
    if options.since_sort:
        params[options.sort_param] = options.since_sort
    # A page is worth reading while it may hold a wanted id: stop once a page after the first
    # hit holds none (the changes since are other batches'), and at twice the pages the ids
    # fill plus five (a busy event) per list; what is left is read by id.
    found: dict[str, Record] = {}
    for path in paths:
        budget = 2 * -(-len(wanted) // options.page_size) + 5
        url: str | None = path
        first, hit = True, False
        while url and budget > 0 and len(found) < len(wanted):
            document = connection.http.get_json(
                url, params=params if first else None, json_body=body
            )
            page = parse_list(document)
            hits = 0
            for resource in page.data:
                record = to_record(request.object, resource, options)
                if record.id in wanted and record.id not in found:
                    found[record.id] = record
                    hits += 1
            if hit and not hits:
                break
            hit = hit or bool(hits)
            url, first, budget = page.links.next, False, budget - 1
    return found


T = TypeVar("T")


def parallel_map(
    connection: HopinConnection, keys: Sequence[str], read: Callable[[str], T | None]
) -> dict[str, T]:
    """``read`` each key, up to ``max_parallel`` at once (the connection's throttle bounds the
    calls of every worker together); keys read as None are left out. The first error raised
    is raised once every call has ended."""
    if len(keys) <= 1 or connection.options.max_parallel == 1:
        return {k: v for k in keys if (v := read(k)) is not None}
    workers = min(connection.options.max_parallel, len(keys))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="hopin-call") as pool:
        results = list(pool.map(_catching(read), keys))
    errors = [error for _, error in results if error is not None]
    if errors:
        raise errors[0]
    return {k: value for k, (value, _) in zip(keys, results, strict=True) if value is not None}


def _catching(
    read: Callable[[str], T | None],
) -> Callable[[str], tuple[T | None, Exception | None]]:
    def call(key: str) -> tuple[T | None, Exception | None]:
        try:
            return read(key), None
        except Exception as exc:  # re-raised by parallel_map once every call has ended
            return None, exc

    return call


def pull_records(connection: HopinConnection, request: PullRequest) -> Iterator[Record]:
    """The records a PullRequest asks for, oldest first where Hopin sorts (see README)."""
    if request.object not in OBJECTS:
        raise FatalError(
            "UNKNOWN_OBJECT",
            f"hopin has no object {request.object!r} (known: {', '.join(OBJECTS)})",
            system=SYSTEM,
        )
    stream = _stream(connection, request)
    if request.limit is not None:
        stream = itertools.islice(stream, request.limit)
    return stream


def _with_check_ins(
    connection: HopinConnection, event_id: str, rows: Iterator[Record]
) -> Iterator[Record]:
    """The report's rows, then one attendance record per registration checked in onsite that
    the report did not list: someone checked in at the door who never joined online attended."""
    seen: set[str] = set()
    for row in rows:
        seen.update((str(row.get("registrationId") or ""), str(row.get("email") or "").lower()))
        yield row
    path = PATHS["registration"][0].format(event=event_id)
    params = {connection.options.page_size_param: str(connection.options.page_size)}
    for registration in pages(connection, "registration", path, params, None):
        checked_in = registration.get("checkedInAt")
        email = str(registration.get("email") or "")
        if not checked_in or registration.id in seen or email.lower() in seen:
            continue
        fields = {
            "registrationId": registration.id,
            "email": email,
            "firstName": registration.get("firstName"),
            "lastName": registration.get("lastName"),
            "ticketId": registration.get("ticketId"),
            "joinedAt": None,
            "leftAt": None,
            "durationSeconds": 0,
            "sessions": None,
            "checkedInAt": checked_in,
            "eventId": event_id,
        }
        modified = checked_in if isinstance(checked_in, dt.datetime) else None
        yield Record(SYSTEM, "attendance", registration.id, fields, modified_at=modified)


def _stream(connection: HopinConnection, request: PullRequest) -> Iterator[Record]:
    obj = request.object
    if obj == "attendance":
        event = _event_id(connection, request)
        records: Iterator[Record] = attendance(connection, event)
        if connection.options.attendance_check_ins:
            records = _with_check_ins(connection, event, records)
        yield from (
            r
            for r in records
            if flt.matches(r, [f for f in request.filters if f.field != "eventId"])
        )
        return
    if request.ids and PATHS[obj][1]:
        yield from (r for r in _by_ids(connection, request) if flt.matches(r, request.filters))
        return
    extra = [f for f in request.filters if f.field not in ("eventId",)]
    if obj in ("magicLink", "bankQuestion"):
        extra = [f for f in extra if f.field != "ticketId" or f.op not in ("=", "in")]
    wire, local = flt.split(obj, extra)
    if request.since is not None:
        start = request.since.timestamp - dt.timedelta(seconds=request.overlap)
        since_filter = Filter("updatedAt", ">=", start)
        if obj in flt.WIRE_FILTERS:
            wire.append(since_filter)
        local.append(since_filter)
    params, body = flt.encode(wire, connection.options.filter_encoding)
    options = connection.options
    params[options.page_size_param] = str(request.page_size or options.page_size)
    if options.since_sort and obj in flt.WIRE_FILTERS:
        # Every list read in change order, not only watermark pulls: pollers and backfills take
        # their watermark from the last record seen, and a first poll or a backfill reads
        # without a since (unsorted, a resumed backfill could skip records).
        params[options.sort_param] = options.since_sort
    list_path = PATHS[obj][0]
    if obj == "magicLink" or obj == "bankQuestion":
        paths = [list_path.format(ticket=t) for t in _ticket_ids(connection, request)]
    elif obj == "organization":
        paths = [list_path]
    elif obj == "event":
        paths = [list_path.format(org=connection.organization_id)]
    else:
        paths = [list_path.format(event=_event_id(connection, request))]
    if obj in windows.OBJECTS and len(paths) == 1:
        # A long list is read in parallel windows of updatedAt, in the same order.
        page_size = request.page_size or options.page_size
        records = windows.read(connection, obj, paths[0], wire, page_size)
        yield from (record for record in records if flt.matches(record, local))
        return
    for path in paths:
        for record in pages(connection, obj, path, dict(params), body):
            if flt.matches(record, local):
                yield record
