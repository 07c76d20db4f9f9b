"""Exclusive locks shared by every process of a deployment: claims on the database clock.

The engine of a multi-process role offers plugins one of these through
``SystemSettings.locks`` (docs/plugin-authors.md): a plugin whose remote system refuses two
writes under one parent at once (Salesforce's CampaignMember under its Campaign,
``UNABLE_TO_LOCK_ROW``) holds the parents' keys while it writes, so the deployment's workers
take turns instead of colliding. A lock is a state-store claim (``StateStore.claim``) that ends
on the database's clock, so a worker killed while holding one blocks the others for one lease
at most.

Keys are taken all or none: a holder that gets only some gives them back and tries again, so
two writers wanting overlapping parents never wait on each other (no deadlock). Written here
rather than with PostgreSQL advisory locks because those belong to a connection, and the
store's connection pool hands a connection back between statements.
"""

from __future__ import annotations

import os
import random
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from ..errors import RetryableError
from ..store import StateStore

__all__ = ["StoreLocks", "LOCK_WAIT_CODE"]

#: The error code of a lock that stayed held by others past the wait (the batch is retried).
LOCK_WAIT_CODE = "EVENTSYNC_LOCK_WAIT"


class StoreLocks:
    """Exclusive locks on keys, in the shared state store (``eventsync.models.ExclusiveLocks``).

    :param seconds: how long a lock lives without release (a batch lease: a dead holder's locks
        end then).
    :param wait: how long ``hold`` waits for keys others hold before it gives up.
    :param name: names this process among the holders (default ``HOST:PID``).
    """

    def __init__(
        self, store: StateStore, seconds: float, wait: float, name: str | None = None
    ) -> None:
        self.store = store
        self.seconds = seconds
        self.wait = wait
        #: How many times ``hold`` found keys held by others and waited (or gave up).
        self.waits = 0
        self._count_lock = threading.Lock()
        self._process = name or f"{socket.gethostname()}:{os.getpid()}"

    @classmethod
    def for_engine(cls, engine: Any) -> StoreLocks:
        """The locks of ``engine``'s store: held a batch lease at most, waited for half of one
        (a batch still waiting then is retried later rather than outliving its lease)."""
        lease = engine.config.engine.lease_seconds
        return cls(engine.store, seconds=lease, wait=lease / 2)

    def holder(self) -> str:
        """The calling thread's holder name (locks are per thread, like ``threading.Lock``)."""
        return f"lock-{threading.get_ident()}@{self._process}"

    @contextmanager
    def hold(self, org: str, scope: str, keys: Iterable[str]) -> Iterator[None]:
        """Hold every one of ``keys`` (of ``org`` and ``scope``) for the block. Not re-entrant:
        a thread holding a key must not ask for it again.

        :raises RetryableError: (code ``EVENTSYNC_LOCK_WAIT``) when others held some of them
            for longer than ``wait`` seconds.
        """
        wanted = set(filter(None, keys))
        holder = self.holder()
        deadline = time.monotonic() + self.wait
        delay = 0.01
        while wanted:
            got = self.store.claim(org, scope, sorted(wanted), holder, self.seconds)
            if got >= wanted:
                break
            if got:  # all or none: never sit on some keys while waiting for the others
                self.store.release_claims(org, scope, got, holder)
            with self._count_lock:
                self.waits += 1
            if time.monotonic() > deadline:
                raise RetryableError(
                    LOCK_WAIT_CODE,
                    f"{scope} of {org}: other workers held {len(wanted - got)} of the "
                    f"{len(wanted)} keys for more than {self.wait:g}s",
                    system="eventsync",
                )
            # Jitter: two writers retrying in step would keep taking each other's keys.
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 0.25)
        try:
            yield
        finally:
            if wanted:
                self.store.release_claims(org, scope, wanted, holder)
