"""A poller's memory of versions: a change in the same second as a read is not hidden."""

from __future__ import annotations

import datetime as dt

from eventsync.scan_memory import SETTLE_SECONDS, ScanMemory, unsettled

T = dt.datetime(2026, 12, 2, 17, 13, 11, tzinfo=dt.UTC)
LATER = T + dt.timedelta(seconds=1)


def scan(before, now, *reads):
    memory = ScanMemory(before, now=now)
    marked = [key for key, version, at in reads if memory.should_mark(key, version, at)]
    return marked, memory.result()


def test_a_new_version_is_marked_and_a_settled_one_is_not():
    marked, seen = scan({}, 0.0, ("old", "a", T), ("new", "b", LATER))
    assert marked == ["old", "new"]
    # "old" is older than the newest of its read: the source's clock had passed it.
    assert seen["old"].settled and not seen["new"].settled
    assert unsettled(seen) == 1
    marked, _ = scan(seen, 100.0, ("old", "a", T))
    assert marked == []


def test_the_newest_version_is_marked_once_more_after_its_second_is_over():
    _, seen = scan({}, 0.0, ("r", "v", T))
    # Read again at once: nothing new can be told yet, so nothing is marked.
    marked, seen = scan(seen, SETTLE_SECONDS / 2, ("r", "v", T))
    assert marked == [] and unsettled(seen) == 1
    # Read again later with the same version: a same-second change would look exactly so.
    marked, seen = scan(seen, SETTLE_SECONDS + 0.1, ("r", "v", T))
    assert marked == ["r"] and unsettled(seen) == 0
    marked, _ = scan(seen, 60.0, ("r", "v", T))
    assert marked == []


def test_a_changed_version_is_always_marked():
    _, seen = scan({}, 0.0, ("r", "v|deleted", T))
    marked, _ = scan(seen, 0.1, ("r", "v", T))
    assert marked == ["r"]
