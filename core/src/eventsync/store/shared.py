"""Figures every process of a deployment adds to: remote API usage and record counters.

Each worker process sees only its own remote answers and counts only its own batches. Kept
here, every process (a worker, the scheduler, a receiver, ``eventsync status``, a backfill
that makes no CRM calls itself) reads the deployment's figures.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs
import sqlalchemy as sa

from .base import StoreBase

__all__ = ["SharedOps", "SharedUsage", "RecordCount", "FALL_AFTER", "USAGE_MAX_AGE"]

#: Seconds after which another process's lower usage reading replaces a higher one.
FALL_AFTER = 60.0
#: Seconds a usage reading counts (the remote allowances are daily); older ones are pruned.
USAGE_MAX_AGE = 86400.0


@attrs.frozen
class SharedUsage:
    """The remote API usage of one org's system as a process of the deployment last saw it."""

    org: str
    system: str
    used: int
    limit: int
    reported_at: dt.datetime


@attrs.frozen
class RecordCount:
    """Records of one (org, flow) every process finished with ``outcome`` and ``error_class``."""

    org: str
    flow: str
    outcome: str
    error_class: str
    count: int


#: The columns ``report_usage`` writes (the first two: the key).
_USAGE_COLUMNS = ("org", "system", "used", "usage_limit", "reporter", "reported_at")
#: The columns ``add_record_counts`` writes.
_COUNT_COLUMNS = ("org", "flow", "outcome", "error_class", "count")


class SharedOps(StoreBase):
    """Shared API usage and record counters of ``StateStore``."""

    def report_usage(
        self, org: str, system: str, used: int, limit: int, reporter: str = ""
    ) -> None:
        """Store ``reporter``'s (a process's) usage reading of ``org``'s ``system``.

        The remote counter already counts every process's calls, so the freshest reading is
        the figure. Readings only grow for a while (the allowance is a rolling day), so a lower
        one (a lower share of the allowance) from another process within ``FALL_AFTER`` seconds of the stored one is an older
        answer arriving late and is ignored; the same process's readings come in order, and
        after that time a lower one means the counter did fall (the window rolled, a reset).
        """
        with self._tx() as conn:
            now = self._now(conn)
            row = {
                "org": org,
                "system": system,
                "used": used,
                "usage_limit": limit,
                "reporter": reporter,
                "reported_at": now,
                "fall_before": now - dt.timedelta(seconds=FALL_AFTER),
            }
            self._compiled("report_usage", self._report_usage_statement, _USAGE_COLUMNS).run(
                conn, [row]
            )

    def _report_usage_statement(self) -> Any:
        """``report_usage``'s upsert (every batch reports; compiled once, ``_compiled``)."""
        t = self.tables.api_usage
        insert = self._insert(t)
        return insert.on_conflict_do_update(
            index_elements=[t.c.org, t.c.system],
            set_={k: getattr(insert.excluded, k) for k in _USAGE_COLUMNS[2:]},
            where=sa.or_(
                # The share, not the count: a new limit comes with a new count.
                insert.excluded.used * t.c.usage_limit >= t.c.used * insert.excluded.usage_limit,
                t.c.reporter == insert.excluded.reporter,
                t.c.reported_at <= sa.bindparam("fall_before", type_=t.c.reported_at.type),
            ),
        )

    def shared_usage(
        self, org: str | None = None, max_age: float = USAGE_MAX_AGE
    ) -> list[SharedUsage]:
        """The stored usage readings (of ``org``) at most ``max_age`` seconds old (the remote
        allowances are daily: an older reading says nothing about today)."""
        t = self.tables.api_usage
        with self._read() as conn:
            since = self._now(conn) - dt.timedelta(seconds=max_age)
            q = sa.select(t).where(t.c.reported_at >= since).order_by(t.c.org, t.c.system)
            if org is not None:
                q = q.where(t.c.org == org)
            return [
                SharedUsage(r.org, r.system, int(r.used), int(r.usage_limit), r.reported_at)
                for r in conn.execute(q)
            ]

    def prune_usage(self, max_age: float = USAGE_MAX_AGE) -> int:
        """Delete the usage readings older than ``max_age`` seconds, which ``shared_usage``
        no longer returns (an org or system since removed, a process that stopped reporting);
        returns how many."""
        t = self.tables.api_usage
        with self._tx() as conn:
            cutoff = self._now(conn) - dt.timedelta(seconds=max_age)
            return int(conn.execute(sa.delete(t).where(t.c.reported_at < cutoff)).rowcount)

    def add_record_counts(self, org: str, flow: str, counts: Mapping[tuple[str, str], int]) -> None:
        """Add ``counts`` (``(outcome, error_class) -> records``) to the shared counters, in
        one atomic statement per pair (``count = count + n``)."""
        if not counts:
            return
        rows = [
            {"org": org, "flow": flow, "outcome": o, "error_class": e, "count": n}
            for (o, e), n in sorted(counts.items())  # one key order: no deadlocks
            if n
        ]
        if rows:
            with self._tx() as conn:
                self._compiled("record_counts", self._counts_statement, _COUNT_COLUMNS).run(
                    conn, rows
                )

    def _counts_statement(self) -> Any:
        """``add_record_counts``'s upsert (every batch counts; compiled once, ``_compiled``)."""
        t = self.tables.record_counts
        insert = self._insert(t)
        return insert.on_conflict_do_update(
            index_elements=[t.c.org, t.c.flow, t.c.outcome, t.c.error_class],
            set_={"count": t.c.count + insert.excluded.count},
        )

    def record_counts(self) -> list[RecordCount]:
        """Every shared record counter."""
        t = self.tables.record_counts
        q = sa.select(t).order_by(t.c.org, t.c.flow, t.c.outcome, t.c.error_class)
        with self._read() as conn:
            return [
                RecordCount(r.org, r.flow, r.outcome, r.error_class, int(r._mapping["count"]))
                for r in conn.execute(q)
            ]
