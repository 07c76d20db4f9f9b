"""Exclusive locks shared by every process of a deployment: claims on the database clock.

The engine of a multi-process role offers plugins one of these through
``SystemSettings.locks`` (docs/plugin-authors.md): a plugin whose remote system refuses two
writes under one parent at once (Salesforce's CampaignMember under its Campaign,
``UNABLE_TO_LOCK_ROW``) holds the parents' keys while it writes, so the deployment's workers
take turns instead of colliding. A lock is a state-store claim (``StateStore.claim``) that ends
on the database's clock, so a worker killed while holding one blocks the others for one lease
at most.

While a block runs, a thread of the process renews its locks every third of a lease, as the
executor's heartbeat renews batch leases: a push slower than a lease keeps its locks rather
than have another worker take them mid-write. A killed process renews nothing, so its locks
still end with a lease.

Keys are taken all or none: a holder that gets only some gives them back and tries again, so
two writers wanting overlapping parents never wait on each other (no deadlock). Written here
rather than with PostgreSQL advisory locks because those belong to a connection, and the
store's connection pool hands a connection back between statements.
"""

from __future__ import annotations

import logging
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

log = logging.getLogger("eventsync.distributed")

#: The error code of a lock that stayed held by others past the wait (the batch is retried).
LOCK_WAIT_CODE = "EVENTSYNC_LOCK_WAIT"


class StoreLocks:
    """Exclusive locks on keys, in the shared state store (``eventsync.models.ExclusiveLocks``).

    :param seconds: how long a lock lives without release (a batch lease: a dead holder's locks
        end then).
    :param wait: how long ``hold`` waits for keys others hold before it gives up.
    :param name: names this process among the holders (default ``HOST:PID``).
    :param renew_every: seconds between renewals of the locks held (default a third of
        ``seconds``).
    """

    def __init__(
        self,
        store: StateStore,
        seconds: float,
        wait: float,
        name: str | None = None,
        renew_every: float | None = None,
    ) -> None:
        self.store = store
        self.seconds = seconds
        self.wait = wait
        self.renew_every = seconds / 3 if renew_every is None else renew_every
        #: How many times ``hold`` found keys held by others and waited (or gave up).
        self.waits = 0
        #: Renewals made, and held locks a renewal found taken by others (renewed too late).
        self.renewals = 0
        self.lost = 0
        self._count_lock = threading.Lock()
        self._process = name or f"{socket.gethostname()}:{os.getpid()}"
        # Every block running now: token -> (holder, org, scope, keys).
        self._held: dict[object, tuple[str, str, str, frozenset[str]]] = {}
        self._held_lock = threading.Lock()
        self._closed = threading.Event()
        self._renewer: threading.Thread | None = None

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
        token = object()
        if wanted:
            with self._held_lock:
                self._held[token] = (holder, org, scope, frozenset(wanted))
            self._start_renewing()
        try:
            yield
        finally:
            if wanted:
                # Untracked first, under the lock a renewal holds: none re-takes them after.
                with self._held_lock:
                    self._held.pop(token, None)
                self.store.release_claims(org, scope, wanted, holder)

    def _start_renewing(self) -> None:
        with self._held_lock:
            if self._renewer is None and not self._closed.is_set():
                self._renewer = threading.Thread(
                    target=self._renew, name="lock-renewer", daemon=True
                )
                self._renewer.start()

    def _renew(self) -> None:
        while not self._closed.wait(self.renew_every):
            with self._held_lock:
                tokens = list(self._held)
            for token in tokens:
                with self._held_lock:  # still held? (a release waits for this renewal)
                    entry = self._held.get(token)
                    if entry is None:
                        continue
                    holder, org, scope, keys = entry
                    try:
                        got = self.store.claim(org, scope, sorted(keys), holder, self.seconds)
                    except Exception:  # the next renewal tries again, well within the lease
                        log.warning("could not renew the %s locks of %s", scope, org, exc_info=True)
                        continue
                    with self._count_lock:
                        self.renewals += 1
                        self.lost += got < keys
                if got < keys:
                    log.warning(
                        "%s of %s: %d held locks were taken by others before their renewal",
                        scope,
                        org,
                        len(keys - got),
                    )

    def release_all(self) -> int:
        """Release every lock a block of this process holds (the worker's stop timeout: its
        blocks' pushes are abandoned); returns the keys released."""
        with self._held_lock:
            held, self._held = self._held, {}
        released = 0
        for holder, org, scope, keys in held.values():
            released += self.store.release_claims(org, scope, keys, holder)
        return released

    def close(self) -> None:
        """Stop renewing (the locks still held then end with their lease)."""
        self._closed.set()
