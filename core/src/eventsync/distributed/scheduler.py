"""The scheduler role: one active instance runs pollers, upkeep and sweeps.

Exactly one scheduler is active: it holds the ``scheduler`` claim in the shared store
(``StateStore.claim``), a lock with a lease that ends on the database's clock, and renews it
three times per lease. Every other scheduler is a standby that tries to take the lock as often;
when the active one stops (its lock released) or dies (its lease ends), a standby takes over. An
active scheduler that finds its lock taken by another (it stalled for longer than the lease)
stops at once, so two never poll together for longer than one renewal interval.

The sweep dispatches a drain for every (org, flow) with due rows in the outbox, every
``[engine] sweep_interval`` seconds: it is what makes a lost Celery message cost nothing. It
sends none for a pair while drains wait in the pair's queue (``Sweeper``), which the workers
will take anyway, unless it last sent the pair ``RESEND_AFTER`` seconds ago.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from ..store import StateStore

__all__ = ["SchedulerLock", "Sweeper", "LOCK_SCOPE"]

log = logging.getLogger("eventsync.distributed")

#: Seconds after which a sweep sends a due pair again even while its queue holds drains.
RESEND_AFTER = 30.0

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
    """Dispatches a drain for every (org, flow) with due rows in the outbox whose queue has no
    drain waiting (or that it last sent ``resend_after`` seconds ago).

    A drain waiting in the queue will lease whatever of its org is due when a worker takes it,
    and a drain that runs its ``MAX_BATCHES`` sends its pair again: while the workers are busy,
    more messages would only pile up (each costing an empty drain later). A pair whose message
    was lost is sent again once its queue is empty, or after ``resend_after`` at most.

    :param dispatch: called with ``(org, flow)`` (``Dispatcher.request``).
    :param waiting: the drain messages waiting in a queue (``Dispatcher.waiting``; None when
        the broker cannot say: then every due pair is sent).
    :param queue_of: the queue of an org's drains.
    """

    def __init__(
        self,
        store: StateStore,
        dispatch: Callable[[str, str], None],
        waiting: Callable[[str], int | None] = lambda queue: None,
        queue_of: Callable[[str], str] = lambda org: "",
        resend_after: float = RESEND_AFTER,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.dispatch = dispatch
        self.waiting = waiting
        self.queue_of = queue_of
        self.resend_after = resend_after
        self.clock = clock
        self._sent: dict[tuple[str, str], float] = {}

    def sweep(self) -> int:
        """One sweep; returns how many (org, flow) pairs were dispatched."""
        now = self.clock()
        busy: dict[str, bool] = {}  # queue -> a drain waits in it
        sent = 0
        due = self.store.due_pairs()
        for org, flow in due:
            queue = self.queue_of(org)
            if queue not in busy:
                busy[queue] = bool(self.waiting(queue))
            last = self._sent.get((org, flow))
            if busy[queue] and last is not None and now - last < self.resend_after:
                continue
            self.dispatch(org, flow)
            self._sent[(org, flow)] = now
            sent += 1
        for pair in set(self._sent) - set(due):  # forget the pairs with nothing due
            del self._sent[pair]
        return sent
