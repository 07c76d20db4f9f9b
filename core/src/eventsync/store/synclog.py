"""The sync log (what happened to each entity) and per-flow status queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from .base import StoreBase
from .records import FlowStatus, LogEntry

__all__ = ["SyncLogOps", "OUTCOMES"]

#: Outcomes written by the executor; ``done`` feeds ``FlowStatus.last_success_at``; ``paused``,
#: ``resumed`` and ``stopped`` feed ``decisions.holds`` (docs/errors.md).
OUTCOMES = ("done", "requeued", "retry", "dead", "lost", "released", "paused", "resumed", "stopped")


class SyncLogOps(StoreBase):
    """Sync-log and status operations of ``StateStore``."""

    def log(self, org: str, flow: str, entity: str, outcome: str, message: str = "") -> None:
        """Append one line to the sync log."""
        self.log_many([(org, flow, entity, outcome, message)])

    def log_many(self, entries: Iterable[tuple[str, str, str, str, str]]) -> int:
        """Append many ``(org, flow, entity, outcome, message)`` lines in one transaction."""
        lines = list(entries)
        if lines:
            with self._tx() as conn:
                now = self._now(conn)
                rows = [
                    dict(org=o, flow=f, entity=e, outcome=oc, message=m, at=now)
                    for o, f, e, oc, m in lines
                ]
                conn.execute(self.tables.sync_log.insert(), rows)
        return len(lines)

    def sync_log(
        self,
        org: str | None = None,
        flow: str | None = None,
        *,
        entity: str | None = None,
        outcome: str | None = None,
        limit: int = 100,
    ) -> list[LogEntry]:
        """Sync-log lines, newest first, optionally filtered."""
        s = self.tables.sync_log
        q = sa.select(s).order_by(s.c.at.desc(), s.c.id.desc()).limit(limit)
        for column, value in (
            ("org", org),
            ("flow", flow),
            ("entity", entity),
            ("outcome", outcome),
        ):
            if value is not None:
                q = q.where(s.c[column] == value)
        with self.engine.connect() as conn:
            return [
                LogEntry(r.id, r.org, r.flow, r.entity, r.outcome, r.message, r.at)
                for r in conn.execute(q)
            ]

    def prune_log(self, older_than: dt.timedelta) -> int:
        """Delete sync-log lines older than ``older_than``; return how many."""
        s = self.tables.sync_log
        with self._tx() as conn:
            cutoff = self._now(conn) - older_than
            return int(conn.execute(sa.delete(s).where(s.c.at < cutoff)).rowcount)

    # ------------------------------------------------------------------ status
    def flow_status(self, org: str, flow: str) -> FlowStatus:
        """Status of one (org, flow); all zeros for a flow the store never saw."""
        for status in self.statuses(org=org, flow=flow):
            return status
        return FlowStatus(org=org, flow=flow)

    def statuses(self, org: str | None = None, flow: str | None = None) -> list[FlowStatus]:
        """Status of every (org, flow) that has outbox rows, dead letters or a sync log."""
        o, d, s = self.tables.outbox, self.tables.dead_letters, self.tables.sync_log

        def scoped(table: sa.Table, q: sa.Select[Any]) -> sa.Select[Any]:
            if org is not None:
                q = q.where(table.c.org == org)
            if flow is not None:
                q = q.where(table.c.flow == flow)
            return q.group_by(table.c.org, table.c.flow)

        def box_q(now: dt.datetime) -> sa.Select[Any]:
            leased = sa.and_(o.c.lease_token.is_not(None), o.c.lease_until > now)
            return scoped(
                o,
                sa.select(
                    o.c.org,
                    o.c.flow,
                    sa.func.count().label("total"),
                    sa.func.sum(sa.case((leased, 1), else_=0)).label("leased"),
                    sa.func.sum(
                        sa.case((sa.and_(sa.not_(leased), o.c.attempts > 0), 1), else_=0)
                    ).label("retrying"),
                    sa.func.min(o.c.created_at).label("oldest"),
                ),
            )

        dl_q = scoped(d, sa.select(d.c.org, d.c.flow, sa.func.count().label("n")))
        ok_q = scoped(
            s,
            sa.select(s.c.org, s.c.flow, sa.func.max(s.c.at).label("last")).where(
                s.c.outcome == "done"
            ),
        )
        acc: dict[tuple[str, str], dict[str, Any]] = {}
        with self.engine.connect() as conn:
            now = self._now(conn)
            for r in conn.execute(box_q(now)):
                oldest = r.oldest
                acc.setdefault((r.org, r.flow), {}).update(
                    pending=int(r.total) - int(r.leased or 0),
                    leased=int(r.leased or 0),
                    retrying=int(r.retrying or 0),
                    lag_seconds=max(0.0, (now - oldest).total_seconds()) if oldest else None,
                )
            for r in conn.execute(dl_q):
                acc.setdefault((r.org, r.flow), {})["dead_letters"] = int(r.n)
            for r in conn.execute(ok_q):
                acc.setdefault((r.org, r.flow), {})["last_success_at"] = r.last
        return [FlowStatus(org=k[0], flow=k[1], **v) for k, v in sorted(acc.items())]
