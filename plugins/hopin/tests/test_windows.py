"""Long registration lists read in parallel windows of updatedAt: the same records in the same
order as one read page after page, with or without a watermark, and readers that stop when
the stream is closed."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from eventsync.models import PullRequest, Watermark
from eventsync_hopin import plugin, windows

from .conftest import FAST, with_options

#: Seeded in a few hundred milliseconds: many registrations share a millisecond, so windows
#: (bounded to the millisecond) split ties of one instant across the first page's end.
SEEDED = 1500
PAGE = 20


@pytest.fixture(scope="module")
def seeded() -> Iterator[Any]:
    """A sandbox whose event holds ``SEEDED`` registrations."""
    handle = plugin.start_sandbox("hopin", {"seed": True, "seed_registrations": SEEDED})
    try:
        yield handle
    finally:
        handle.stop()


def _connect(seeded: Any, **options: Any) -> Any:
    return plugin.authenticate("hopin", with_options(seeded.settings("acme"), **FAST, **options))


def _read(connection: Any, request: PullRequest) -> list[tuple[str, Any]]:
    return [(r.id, r.modified_at) for r in plugin.pull(connection, request)]


def test_a_long_list_read_in_windows_matches_one_read_in_order(seeded):
    one_by_one = _connect(seeded, max_parallel=1)
    parallel = _connect(seeded, max_parallel=8)
    request = PullRequest("registration", page_size=PAGE)
    expected = _read(one_by_one, request)
    before = parallel.http.calls
    got = _read(parallel, request)
    assert len(expected) == SEEDED
    assert got == expected
    assert got == sorted(got, key=lambda pair: (pair[1], pair[0])), "updatedAt, then id"
    # Windows of about WINDOW_PAGES pages: each one's last page is partial, plus the call for
    # the newest record, so a little more than one read's calls, never a call per record.
    pages = -(-SEEDED // PAGE)
    calls = parallel.http.calls - before
    assert pages < calls <= pages + pages // windows.WINDOW_PAGES + 3, calls


def test_a_watermark_read_in_windows_matches_one_read(seeded):
    one_by_one = _connect(seeded, max_parallel=1)
    parallel = _connect(seeded, max_parallel=8)
    middle = plugin.pull(one_by_one, PullRequest("registration", page_size=PAGE))
    for _ in range(SEEDED // 3):
        record = next(middle)
    middle.close()
    since = Watermark(record.modified_at, record.id)
    request = PullRequest("registration", page_size=PAGE, since=since, overlap=0.0)
    expected = _read(one_by_one, request)
    assert SEEDED // 2 < len(expected) < SEEDED
    assert _read(parallel, request) == expected


def test_closing_the_stream_stops_the_window_readers(seeded):
    parallel = _connect(seeded, max_parallel=8)
    stream = plugin.pull(parallel, PullRequest("registration", page_size=PAGE))
    for _ in range(PAGE * 2):
        next(stream)
    assert _readers(), "the windows are being read"
    stream.close()
    deadline = time.monotonic() + 120
    while _readers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _readers()


def test_readers_ahead_read_their_whole_windows_while_the_first_is_consumed(seeded):
    parallel = _connect(seeded, max_parallel=8)
    before = parallel.http.calls
    stream = plugin.pull(parallel, PullRequest("registration", page_size=PAGE))
    for _ in range(PAGE + 1):  # past the first page: the windows are being read
        next(stream)
    # The first page, the newest record, and every page of the first READERS windows: none
    # waits for the consumer to reach its window (which read them one page after the other).
    wanted = 2 + windows.READERS * windows.WINDOW_PAGES
    deadline = time.monotonic() + 60
    while parallel.http.calls - before < wanted and time.monotonic() < deadline:
        time.sleep(0.05)
    calls = parallel.http.calls - before
    stream.close()
    assert calls >= wanted, calls


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("hopin-window")]
