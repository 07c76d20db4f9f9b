"""eventsync.throttle: a bound on calls in flight and a shared Retry-After cool-down."""

from __future__ import annotations

import threading
import time

import pytest
from eventsync import backoff
from eventsync.throttle import Throttle


def test_no_more_than_max_concurrent_slots_are_held_at_once():
    throttle = Throttle(2)
    inside, peak, lock = 0, 0, threading.Lock()
    release = threading.Event()

    def call() -> None:
        nonlocal inside, peak
        with throttle.slot():
            with lock:
                inside += 1
                peak = max(peak, inside)
            release.wait(10)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=call) for _ in range(5)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 10
    while inside < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert inside == 2  # two got in, three are waiting for a slot
    release.set()
    for thread in threads:
        thread.join(10)
    assert peak == 2


def test_a_hold_delays_every_next_call_until_it_ends():
    throttle = Throttle(4)
    throttle.hold(0.3)
    throttle.hold(0.1)  # a shorter hold does not shorten the cool-down
    assert throttle.held == 1
    assert throttle.remaining() > 0.1
    started = time.monotonic()
    with throttle.slot():
        assert time.monotonic() - started >= 0.25
    assert throttle.remaining() == 0


def test_waits_are_skipped_when_backoff_is_disabled_and_bad_bounds_are_refused():
    throttle = Throttle(1)
    throttle.hold(60)
    with backoff.disabled(), throttle.slot():
        assert throttle.remaining() > 0
    with pytest.raises(ValueError, match="max_concurrent must be at least 1"):
        Throttle(0)
