"""How hard one organisation may press one remote system: a bound on concurrent calls and a
cool-down that every caller honours once the system said "slow down" (429 and ``Retry-After``).

A system plugin keeps one :class:`Throttle` per connection (so per organisation and system) and
sends every request inside ``with throttle.slot():``; its retry policy calls ``hold(seconds)``
when an answer carries ``Retry-After``, and every worker sharing the connection then waits
before its next call instead of hitting the limit again. A threading semaphore and a monotonic
deadline are all this needs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from . import backoff

__all__ = ["Throttle"]


class Throttle:
    """At most ``max_concurrent`` calls at once, none before the cool-down ends; thread-safe."""

    def __init__(self, max_concurrent: int) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be at least 1")
        self.max_concurrent = max_concurrent
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._lock = threading.Lock()
        self._not_before = 0.0
        self.held = 0  #: how many times a cool-down was started or extended

    def hold(self, seconds: float) -> None:
        """Start (or extend) a cool-down of ``seconds``: no call starts before it ends."""
        until = time.monotonic() + max(seconds, 0.0)
        with self._lock:
            if until > self._not_before:
                self._not_before = until
                self.held += 1

    def remaining(self) -> float:
        """Seconds left of the cool-down (0 when none)."""
        with self._lock:
            return max(self._not_before - time.monotonic(), 0.0)

    def wait_cooldown(self) -> None:
        """Wait out the cool-down (through ``eventsync.backoff``, so tests may skip waits)."""
        while (left := self.remaining()) > 0:
            if backoff.scale() == 0:
                return
            backoff.wait(left)

    @contextmanager
    def slot(self) -> Iterator[None]:
        """One call's turn: waits for a free slot and for the cool-down to end."""
        with self._slots:
            self.wait_cooldown()
            yield
