"""Parent-record locks, as Salesforce takes them: creating or updating a CampaignMember locks
its Campaign for the rest of the transaction, and a second transaction writing under the same
Campaign waits for the lock, then fails that record with ``UNABLE_TO_LOCK_ROW``.

Off unless the options ask (``parent_lock_hold``: seconds a Collections write keeps its parents
locked after writing, standing in for the time a real org spends on triggers and sharing;
``parent_lock_timeout``: how long a write waits for a held parent, default 0.2 s). Counts every
refusal in ``failures`` (shown by ``GET /_admin/locks``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

#: Child object -> the reference field naming the parent it locks.
PARENT_FIELDS = {"CampaignMember": "CampaignId"}


class ParentLocks:
    """Which parents in-flight writes hold; thread-safe."""

    def __init__(self, options: Mapping[str, Any]) -> None:
        hold = options.get("parent_lock_hold")
        self.enabled = hold is not None
        self.hold = float(hold or 0.0)
        self.timeout = float(options.get("parent_lock_timeout", 0.2))
        self.failures = 0
        self._held: set[str] = set()
        self._cond = threading.Condition()

    @contextmanager
    def holding(self, parents: Iterable[str]) -> Iterator[set[str]]:
        """Lock ``parents``; yields those that stayed locked by another write past the timeout
        (their records fail). The locks are kept ``hold`` seconds after the block."""
        wanted = {p for p in parents if p}
        got: set[str] = set()
        deadline = time.monotonic() + self.timeout
        with self._cond:
            for parent in sorted(wanted):
                while parent in self._held and (left := deadline - time.monotonic()) > 0:
                    self._cond.wait(left)
                if parent not in self._held:
                    self._held.add(parent)
                    got.add(parent)
            refused = wanted - got
            self.failures += len(refused)
        try:
            yield refused
            if got and self.hold:
                time.sleep(self.hold)
        finally:
            with self._cond:
                self._held -= got
                self._cond.notify_all()

    def snapshot(self) -> dict[str, Any]:
        """The parents locked now and the refusals so far."""
        with self._cond:
            return {"held": sorted(self._held), "failures": self.failures}
