"""Echoes of eventsync's own CRM writes: the notification a write-back causes, recognised.

Writing a magic link back to a CampaignMember fires the CRM's automation again (an Outbound
Message on update), which would mark the import for a record whose invitation it just made:
a Salesforce read and worker time for nothing. The write-back says, just before it writes,
which values it is about to put on which record (``expect``); the first notification naming
that record and carrying those values is taken as the echo and not marked (``consume``).

Why this cannot lose a change: each write causes at most one notification, and an expectation
is consumed once. If a person's edit is announced before the echo (and carries the written
values), it is the one skipped, and the echo that follows runs the import, which reads the
record as it is then. A notification that does not carry every written field, one from another
process (expectations live in memory), or one later than ``ECHO_TTL`` is never skipped: the
import simply runs. A write that failed or was not made withdraws its expectation.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

__all__ = ["ECHO_TTL", "Echoes"]

#: How long a write's echo is waited for; the CRM's automation sends it within seconds, and a
#: later one only costs the import run it would have saved.
ECHO_TTL = 120.0

_Key = tuple[str, str]


@attrs.define
class Echoes:
    """Expected echoes of one organisation's CRM writes, by (object, record id); thread-safe."""

    ttl: float = ECHO_TTL
    clock: Callable[[], float] = time.monotonic
    _expected: OrderedDict[_Key, tuple[float, dict[str, Any]]] = attrs.field(factory=OrderedDict)
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def expect(self, obj: str, writes: Mapping[str, Mapping[str, Any]]) -> None:
        """About to write ``writes`` (record id -> field values) to ``obj`` records."""
        now = self.clock()
        with self._lock:
            self._prune(now)
            for record_id, fields in writes.items():
                key = (obj.lower(), record_id)
                self._expected[key] = (now + self.ttl, dict(fields))
                self._expected.move_to_end(key)  # kept in expiry order for _prune

    def withdraw(self, obj: str, record_ids: Iterable[str]) -> None:
        """These writes were not made (unchanged, failed): no echo will come."""
        with self._lock:
            for record_id in record_ids:
                self._expected.pop((obj.lower(), record_id), None)

    def consume(self, obj: str, record_id: str, carried: Mapping[str, Any]) -> bool:
        """True (once) when a notification about this record, carrying ``carried`` fields, is
        the echo of a write expected: it carries every field written, with the value written."""
        key = (obj.lower(), record_id)
        with self._lock:
            hit = self._expected.get(key)
            if hit is None or hit[0] < self.clock():
                return False
            if any(name not in carried or carried[name] != v for name, v in hit[1].items()):
                return False
            del self._expected[key]
            return True

    def __len__(self) -> int:
        with self._lock:
            return len(self._expected)

    def _prune(self, now: float) -> None:
        while self._expected:
            key, (expires, _) = next(iter(self._expected.items()))
            if expires >= now:
                return
            del self._expected[key]
