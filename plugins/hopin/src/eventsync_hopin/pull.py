"""Reading records: JSON:API lists followed page by page through the absolute ``links.next``."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

from eventsync.errors import FatalError, RecordError
from eventsync.models import Filter, PullRequest, Record

from . import filters as flt
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
    template = PATHS[request.object][1]
    for record_id in request.ids:
        try:
            body = connection.http.get_json(template.format(id=record_id))
        except RecordError as exc:
            if exc.status == 404:
                continue
            raise
        yield to_record(request.object, parse_resource(body), connection.options)


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
    for path in paths:
        for record in pages(connection, obj, path, dict(params), body):
            if flt.matches(record, local):
                yield record
