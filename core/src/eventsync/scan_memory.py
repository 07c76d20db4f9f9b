"""What a poller remembers of the records it read, so that re-reading its overlap marks nothing.

A record's version is its modified time (and whether it is deleted). Sources stamp changes with a
coarse clock (Salesforce's ``SystemModstamp`` has whole seconds), so a record changed again within
the second in which a poll read it keeps the same version: remembering that version as "seen"
would hide the second change for good (a CampaignMember deleted and restored within one second,
say). So a version is *settled* only when the same read also returned a newer one: the source's
clock had passed it, and any later change must carry a newer stamp. The newest versions of a read
stay unsettled; the first read of an unsettled version at least ``SETTLE_SECONDS`` later marks it
once more (catching a change made in its second after the first read) and settles it. An idle
source therefore costs one extra mark of its newest records, once, and nothing after that.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping

import attrs

__all__ = ["SETTLE_SECONDS", "ScanMemory", "SeenVersion"]

#: How long after a read an unsettled version is read again and marked once more: the coarsest
#: source clock (one second) plus a margin for the time a read takes.
SETTLE_SECONDS = 2.0


@attrs.frozen
class SeenVersion:
    """A version of one record as the scans saw it."""

    version: str
    modified_at: dt.datetime | None
    #: ``time.monotonic()`` of the read that first returned this version.
    read_at: float
    settled: bool


class ScanMemory:
    """One scan's bookkeeping: which records to mark, given what the previous scan saw."""

    def __init__(self, before: Mapping[str, SeenVersion], now: float | None = None) -> None:
        self._before = before
        self._now = time.monotonic() if now is None else now
        self._seen: dict[str, SeenVersion] = {}
        self._fresh: list[str] = []
        self._newest: dt.datetime | None = None

    def should_mark(self, key: str, version: str, modified_at: dt.datetime | None) -> bool:
        """Record that this read returned ``key`` at ``version``; True when it is to be marked
        (a new version, or an unsettled one read again once its second has surely passed)."""
        if modified_at is not None and (self._newest is None or modified_at > self._newest):
            self._newest = modified_at
        previous = self._before.get(key)
        if previous is not None and previous.version == version:
            if previous.settled or self._now - previous.read_at < SETTLE_SECONDS:
                self._seen[key] = previous
                return False
            # Its second is over: a change made in it after the first read looks the same.
            self._seen[key] = attrs.evolve(previous, settled=True)
            return True
        self._seen[key] = SeenVersion(version, modified_at, self._now, settled=False)
        self._fresh.append(key)
        return True

    def result(self) -> dict[str, SeenVersion]:
        """What the next scan starts from: every version read, the new ones older than the
        newest of this read settled."""
        newest = self._newest
        for key in self._fresh:
            seen = self._seen[key]
            if seen.modified_at is not None and newest is not None and seen.modified_at < newest:
                self._seen[key] = attrs.evolve(seen, settled=True)
        return self._seen


def unsettled(memory: Mapping[str, SeenVersion]) -> int:
    """How many versions in ``memory`` a later read will still mark once more."""
    return sum(not seen.settled for seen in memory.values())
