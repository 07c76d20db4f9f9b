"""The scheduler role: one active instance runs pollers, upkeep and sweeps.

Exactly one scheduler is active: it holds the ``scheduler`` claim in the shared store
(``StateStore.claim``), a lock with a lease that ends on the database's clock, and renews it
three times per lease. Every other scheduler is a standby that tries to take the lock as often;
when the active one stops (its lock released) or dies (its lease ends), a standby takes over. An
active scheduler that finds its lock taken by another (it stalled for longer than the lease)
stops at once, so two never poll together for longer than one renewal interval.

The sweep dispatches a drain for every (org, flow) with rows in the outbox, every
``[engine] sweep_interval`` seconds: it is what makes a lost Celery message cost nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable

from ..store import StateStore

__all__ = ["SchedulerLock", "Sweeper", "LOCK_SCOPE"]

log = logging.getLogger("eventsync.distributed")

#: The claim that is the scheduler lock (org, scope, key).
LOCK_ORG, LOCK_SCOPE, LOCK_KEY = "*", "eventsync:scheduler", "active"


class SchedulerLock:
    """The lock one scheduler holds while it is active.

    :param seconds: the lease; a holder that does not renew within it loses the lock.
    """

    def __init__(self, store: StateStore, seconds: float = 30.0, holder: str | None = None) -> None:
        self.store = store
        self.seconds = seconds
        self.holder = holder or f"scheduler@{socket.gethostname()}:{os.getpid()}"

    def try_acquire(self) -> bool:
        """Take (or renew) the lock; True while this instance holds it."""
        held = self.store.claim(LOCK_ORG, LOCK_SCOPE, [LOCK_KEY], self.holder, self.seconds)
        return bool(held)

    def release(self) -> None:
        """Give the lock up so a standby takes over at once."""
        self.store.release_claims(LOCK_ORG, LOCK_SCOPE, [LOCK_KEY], self.holder)

    def wait_for(self, stop: threading.Event) -> bool:
        """Wait as a standby until the lock is ours (True) or ``stop`` is set (False)."""
        announced = False
        while not stop.is_set():
            try:
                if self.try_acquire():
                    return True
            except Exception as exc:  # the database is down: wait, try again
                log.warning("scheduler lock: %s", exc)
            if not announced:
                log.info("another scheduler is active; waiting as a standby")
                announced = True
            stop.wait(self.seconds / 3)
        return False


class Sweeper:
    """Dispatches a drain for every (org, flow) with rows in the outbox.

    :param dispatch: called with ``(org, flow)`` (``Dispatcher.request``).
    """

    def __init__(self, store: StateStore, dispatch: Callable[[str, str], None]) -> None:
        self.store = store
        self.dispatch = dispatch

    def sweep(self) -> int:
        """One sweep; returns how many (org, flow) pairs were dispatched."""
        busy = [(s.org, s.flow) for s in self.store.statuses() if s.pending]
        for org, flow in busy:
            self.dispatch(org, flow)
        return len(busy)
