"""The deployment-wide API usage: every process's readings, shared through the state store.

A system plugin reports the usage its connection last saw (``api_usage``). Each process sees
only its own answers, so a process that makes few calls (a backfill marking rows for the
workers, a receiver) would judge the budget on an old figure. Every process publishes each new
reading to the store (``StateStore.report_usage``) and reads the freshest one any process
wrote (``report_usage`` says which wins), cached briefly, so the budget guard pauses backfills at their share of the whole
deployment's usage.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable

from .models import ApiUsage
from .store import StateStore

__all__ = ["UsageBoard"]

log = logging.getLogger("eventsync.budget")


class UsageBoard:
    """Publishes this process's usage readings and reads the deployment's.

    :param cache_seconds: how long a read of the store is reused (the guard asks after every
        backfill chunk and every scrape; a second is fresh enough for a daily allowance).
    """

    def __init__(
        self,
        store: StateStore,
        cache_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self.clock = clock
        #: Names this process's readings (they arrive in order; another's may be late).
        self.reporter = f"{socket.gethostname()}:{os.getpid()}"
        self._published: dict[tuple[str, str], ApiUsage] = {}
        self._cache: tuple[float, dict[tuple[str, str], ApiUsage]] | None = None
        self._lock = threading.Lock()

    def publish(self, org: str, system: str, usage: ApiUsage) -> None:
        """Store ``usage`` unless this process already published that reading (an unchanged
        local figure must not overwrite a newer one another process wrote)."""
        key = (org, system)
        with self._lock:
            if self._published.get(key) == usage:
                return
            self._published[key] = usage
        try:
            self.store.report_usage(org, system, usage.used, usage.limit, self.reporter)
        except Exception:  # the budget is advice: a store hiccup must never stop work
            log.warning("could not share the %s API usage of org %s", system, org, exc_info=True)
            with self._lock:
                self._published.pop(key, None)
            return
        with self._lock:
            if self._cache is not None:
                self._cache[1][key] = usage

    def readings(self) -> dict[tuple[str, str], ApiUsage]:
        """The deployment's latest reading per (org, system), at most a day old."""
        now = self.clock()
        with self._lock:
            if self._cache is not None and now - self._cache[0] < self.cache_seconds:
                return dict(self._cache[1])
        try:
            rows = self.store.shared_usage()
        except Exception:
            log.warning("could not read the shared API usage", exc_info=True)
            return {}
        found = {(r.org, r.system): ApiUsage(r.used, r.limit) for r in rows}
        with self._lock:
            self._cache = (now, found)
        return dict(found)

    def prune(self) -> int:
        """Delete the readings too old to count (``StateStore.prune_usage``: older than a
        day); the engine's maintenance calls it. Returns how many; failures are logged."""
        try:
            pruned = self.store.prune_usage()
        except Exception:  # upkeep must never stop the engine; the next round tries again
            log.warning("could not prune the shared API usage", exc_info=True)
            return 0
        if pruned:
            log.info("pruned %d API usage readings older than a day", pruned)
        return pruned

    def reading(self, org: str, system: str) -> ApiUsage | None:
        """The deployment's latest reading of ``org``'s ``system`` (None when none)."""
        return self.readings().get((org, system))
