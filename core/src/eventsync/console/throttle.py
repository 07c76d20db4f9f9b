"""Failed sign-ins slow a password guesser down: after ``LIMIT`` failures within ``WINDOW``
seconds, sign-in is refused until the oldest of them is ``WINDOW`` seconds old.

Per process and in memory (one console process guards one admin account); the clock is a
parameter so that tests need no sleeping. A success clears the count.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

__all__ = ["SignInThrottle", "LIMIT", "WINDOW"]

LIMIT = 5
WINDOW = 300.0


class SignInThrottle:
    """Counts recent failed sign-ins."""

    def __init__(
        self,
        limit: int = LIMIT,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._failures: deque[float] = deque()
        self._lock = threading.Lock()

    def _forget_old(self, now: float) -> None:
        while self._failures and now - self._failures[0] >= self.window:
            self._failures.popleft()

    def wait(self) -> float:
        """Seconds until a sign-in may be tried again (0 when it may be now)."""
        with self._lock:
            now = self.clock()
            self._forget_old(now)
            if len(self._failures) < self.limit:
                return 0.0
            return self.window - (now - self._failures[0])

    def failed(self) -> None:
        """Count a failed sign-in."""
        with self._lock:
            self._failures.append(self.clock())

    def succeeded(self) -> None:
        """Clear the count after a good sign-in."""
        with self._lock:
            self._failures.clear()
