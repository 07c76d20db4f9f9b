"""Reading a long registration list in parallel: windows of ``updatedAt``, read at once.

A list is followed through ``links.next``, one page after the other: a backfill of 100,000
registrations is a thousand calls in a row, each waiting for the one before. When the first
page says the list is long (``meta.count``) and lists are read in ``updatedAt`` order
(``since_sort``), the rest of it is split into windows of ``updatedAt`` (the documented
``gte``/``lt`` filters) of about ``WINDOW_PAGES`` pages each, which ``READERS`` readers follow
at once, and the records are yielded window after window. They come in the order one read gives
(``updatedAt``, then id, as Hopin sorts), so a watermark taken from them means the same. A
reader holds at most ``PREFETCH`` pages ahead, as the bodies they came as (a few times smaller
than their records, made when the consumer reaches them), so memory stays flat however long
the list, and small while the consumer waits (a backfill held back by its queue). The
windows cost about one call in ``WINDOW_PAGES`` more than one read (each one's last page is
partial), plus one for the newest record; a list too short to split costs nothing more.
"""

from __future__ import annotations

import datetime as dt
import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
from eventsync.models import Filter, Record

from . import filters as flt
from .auth import HopinConnection
from .convert import parse_list, to_record
from .http import decode_json

__all__ = ["read", "PREFETCH", "READERS", "WINDOW_PAGES"]

#: Pages a window holds when the records are spread evenly in time (its last page is partial:
#: the windows cost about one call in this many more than one read).
WINDOW_PAGES = 5
#: Pages a window reader may hold ahead of the consumer (a window denser than the average
#: waits for the consumer beyond that): a whole window and one page more, so each reader reads
#: its window while the ones before it are consumed. With two, the readers ahead stopped after
#: two pages and the window being consumed was read page after page, one call in a row at a
#: time: at about 120 ms a page of 100, the read held a backfill under 800 records a second.
PREFETCH = WINDOW_PAGES + 1
#: Windows read at once (at most ``max_parallel``): four readers fetch several times what a
#: backfill consumes, and memory holds at most ``READERS * PREFETCH`` pages (2,400 records of
#: 100-record pages).
READERS = 4
#: Objects whose lists are read in windows (magic links are read per ticket, in one go).
OBJECTS = frozenset({"registration"})
_FIELD = "updatedAt"
_END = object()
_DONE: queue.Queue[Any] = queue.Queue()


def read(
    connection: HopinConnection, obj: str, path: str, wire: Sequence[Filter], page_size: int
) -> Iterator[Record]:
    """Every record of the list at ``path`` matching the ``wire`` filters, in ``updatedAt``
    order: read in parallel windows when the first page shows a long list, else page after
    page through ``links.next``."""
    options = connection.options
    params, body = _encode(connection, wire, page_size)
    page = parse_list(connection.http.get_json(path, params=params, json_body=body))
    records = [to_record(obj, resource, options) for resource in page.data]
    windows = _plan(connection, path, wire, page_size, page.count, records, page.links.next)
    if windows is None:
        yield from records
        url = page.links.next
        while url:
            page = parse_list(connection.http.get_json(url, json_body=body))
            yield from (to_record(obj, resource, options) for resource in page.data)
            url = page.links.next
        return
    # The first page's records of its last instant may go on past it: the first window
    # reads that instant again, whole.
    start = windows[0][0]
    yield from (r for r in records if r.modified_at is not None and r.modified_at < start)
    yield from _parallel(connection, obj, path, wire, page_size, windows)


def _encode(
    connection: HopinConnection, wire: Sequence[Filter], page_size: int, sort: str | None = None
) -> tuple[dict[str, str], dict[str, Any] | None]:
    options = connection.options
    params, body = flt.encode(list(wire), options.filter_encoding)
    params[options.page_size_param] = str(page_size)
    if options.since_sort:
        params[options.sort_param] = sort or options.since_sort
    return params, body


def _plan(
    connection: HopinConnection,
    path: str,
    wire: Sequence[Filter],
    page_size: int,
    count: int | None,
    records: list[Record],
    more: str | None,
) -> list[tuple[dt.datetime, dt.datetime | None]] | None:
    """The windows ``[start, end)`` covering the list from the first page's last instant on
    (the last one open-ended), or None when it is read in one go: short, not sorted by
    ``updatedAt``, filtered on it other than from a time, or without ``meta.count``."""
    options = connection.options
    if (
        not more
        or count is None
        or options.since_sort != _FIELD
        or options.max_parallel < 2
        or any(f.field == _FIELD and f.op not in (">=", ">") for f in wire)
        or not records
        or records[-1].modified_at is None
    ):
        return None
    pages_left = -(-(count - len(records)) // page_size)
    parts = pages_left // WINDOW_PAGES
    if parts < 2:
        return None
    low = records[-1].modified_at
    high = _newest(connection, path, wire)
    if high is None or high <= low:
        return None
    step = (high - low) / parts
    # Whole milliseconds, the wire's precision: each record falls in exactly one window.
    starts = sorted({_millis(low + step * n) for n in range(parts)})
    ends: list[dt.datetime | None] = [*starts[1:], None]
    return list(zip(starts, ends, strict=True))


def _newest(connection: HopinConnection, path: str, wire: Sequence[Filter]) -> dt.datetime | None:
    """When the list's newest record changed (one record, read newest first), or None."""
    params, body = _encode(connection, wire, 1, sort=f"-{_FIELD}")
    page = parse_list(connection.http.get_json(path, params=params, json_body=body))
    if not page.data:
        return None
    newest = to_record("registration", page.data[0], connection.options)
    return newest.modified_at


def _millis(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _window_filters(
    wire: Sequence[Filter], start: dt.datetime, end: dt.datetime | None
) -> list[Filter]:
    kept = [f for f in wire if f.field != _FIELD]
    bounds = [Filter(_FIELD, ">=", start)]
    if end is not None:
        bounds.append(Filter(_FIELD, "<", end))
    return kept + bounds


def _parallel(
    connection: HopinConnection,
    obj: str,
    path: str,
    wire: Sequence[Filter],
    page_size: int,
    windows: list[tuple[dt.datetime, dt.datetime | None]],
) -> Iterator[Record]:
    """Read the windows, up to ``READERS`` at once from the one being yielded on, yielding
    them in order; the readers stop when the consumer does (a paused backfill closes the
    stream)."""
    stop = threading.Event()
    ahead = min(READERS, connection.options.max_parallel)
    queues: list[queue.Queue[Any]] = []
    pool = ThreadPoolExecutor(max_workers=ahead, thread_name_prefix="hopin-window")

    def submit() -> None:
        start, end = windows[len(queues)]
        out: queue.Queue[Any] = queue.Queue(PREFETCH)
        queues.append(out)
        filters = _window_filters(wire, start, end)
        pool.submit(_reader, connection, obj, path, filters, page_size, out, stop)

    try:
        for index in range(len(windows)):
            while len(queues) < min(len(windows), index + ahead):
                submit()
            out = queues[index]
            while (item := out.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield from _records(connection, obj, item)
            queues[index] = _DONE  # its pages are no longer needed
    finally:
        stop.set()
        pool.shutdown(wait=False, cancel_futures=True)


def _reader(
    connection: HopinConnection,
    obj: str,
    path: str,
    filters: list[Filter],
    page_size: int,
    out: queue.Queue[Any],
    stop: threading.Event,
) -> None:
    """Follow one window page by page into ``out``, each page as the body it came as (the
    consumer makes its records: a window's pages wait in ``out`` while the backfill is held
    back, and as records they took several times the memory); its end, or the error that
    stopped it."""
    try:
        params, body = _encode(connection, filters, page_size)
        url: str | None = path
        first = True
        while url and not stop.is_set():
            text = connection.http.get_body(url, params=params if first else None, json_body=body)
            page = _Page(url, text)
            url, first = _next_link(decode_json(text, page.url)), False
            _put(out, page, stop)
        _put(out, _END, stop)
    except Exception as exc:  # re-raised by the consumer, in window order
        _put(out, exc, stop)


@attrs.frozen
class _Page:
    """One page of a window as it came: where from, and its body."""

    url: str
    body: bytes


def _next_link(document: Any) -> str | None:
    """The ``links.next`` of a list document (None when there is none, or no links at all:
    the consumer's ``parse_list`` then says what is wrong with it)."""
    links = document.get("links") if isinstance(document, dict) else None
    return (links.get("next") or None) if isinstance(links, dict) else None


def _records(connection: HopinConnection, obj: str, page: _Page) -> list[Record]:
    """The records of a page a reader fetched."""
    listed = parse_list(decode_json(page.body, page.url))
    return [to_record(obj, resource, connection.options) for resource in listed.data]


def _put(out: queue.Queue[Any], item: Any, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            out.put(item, timeout=0.1)
            return
        except queue.Full:
            continue
