"""The sync log (what happened to each entity) and per-flow status queries."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from .base import StoreBase
from .records import FlowStatus, LogEntry

__all__ = ["SyncLogOps", "OUTCOMES", "MAX_LOG_ROWS"]

#: The most sync-log lines kept whatever their age (the oldest go first), so a burst within the
#: retention period cannot grow the table without bound.
MAX_LOG_ROWS = 2_000_000

#: Outcomes written by the executor; ``done`` feeds ``FlowStatus.last_success_at``; ``paused``,
#: ``resumed`` and ``stopped`` feed ``decisions.holds`` (docs/errors.md). ``marked`` (by the
#: store, with the trigger), ``wrote`` (by ``FlowContext.push``) and ``retried`` (a dead letter
#: moved back) make each entity's journey (``eventsync trace``).
OUTCOMES = (
    "done",
    "requeued",
    "retry",
    "dead",
    "lost",
    "released",
    "paused",
    "resumed",
    "stopped",
    "marked",
    "wrote",
    "retried",
)
#: A sync-log line: (org, flow, entity, outcome, message), optionally with a JSON detail.
LogLine = tuple[str, str, str, str, str] | tuple[str, str, str, str, str, Any]


def _entry(r: Any) -> LogEntry:
    return LogEntry(r.id, r.org, r.flow, r.entity, r.outcome, r.message, r.at, r.detail)


class SyncLogOps(StoreBase):
    """Sync-log and status operations of ``StateStore``."""

    def log(
        self, org: str, flow: str, entity: str, outcome: str, message: str = "", detail: Any = None
    ) -> None:
        """Append one line to the sync log."""
        self.log_many([(org, flow, entity, outcome, message, detail)])

    def log_many(self, entries: Iterable[LogLine]) -> int:
        """Append many ``(org, flow, entity, outcome, message[, detail])`` lines in one
        transaction."""
        lines = list(entries)
        if lines:
            with self._tx() as conn:
                self._log_rows(conn, lines, self._now(conn))
        return len(lines)

    def entity_log(self, org: str, flow: str, entity: str, limit: int = 1000) -> list[LogEntry]:
        """The sync-log lines of one entity, oldest first (the newest ``limit``)."""
        s = self.tables.sync_log
        q = (
            sa.select(s)
            .where(s.c.org == org, s.c.flow == flow, s.c.entity == entity)
            .order_by(s.c.at.desc(), s.c.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return [_entry(r) for r in reversed(conn.execute(q).all())]

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
        with self._read() as conn:
            return [_entry(r) for r in conn.execute(q)]

    def prune_log(self, older_than: dt.timedelta, max_rows: int | None = MAX_LOG_ROWS) -> int:
        """Delete sync-log lines older than ``older_than``, then the oldest beyond ``max_rows``;
        return how many."""
        s = self.tables.sync_log
        with self._tx() as conn:
            cutoff = self._now(conn) - older_than
            deleted = int(conn.execute(sa.delete(s).where(s.c.at < cutoff)).rowcount)
            if max_rows is not None:
                # The id of the newest line beyond the cap (ids grow with time).
                edge = conn.execute(
                    sa.select(s.c.id).order_by(s.c.id.desc()).offset(max_rows).limit(1)
                ).scalar()
                if edge is not None:
                    deleted += int(conn.execute(sa.delete(s).where(s.c.id <= edge)).rowcount)
            return deleted

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
        if org is not None and flow is not None:
            # One flow's last success without GROUP BY: the index (org, flow, outcome, at)
            # answers MAX with one seek, where the grouped form reads every ``done`` line of
            # the flow, and a backfill's progress checks it several times a second.
            ok_q = sa.select(  # type: ignore[assignment]
                sa.literal(org).label("org"),
                sa.literal(flow).label("flow"),
                sa.func.max(s.c.at).label("last"),
            ).where(s.c.org == org, s.c.flow == flow, s.c.outcome == "done")
        acc: dict[tuple[str, str], dict[str, Any]] = {}
        with self._read() as conn:
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
                if r.last is not None:  # the ungrouped MAX answers one row even for no lines
                    acc.setdefault((r.org, r.flow), {})["last_success_at"] = r.last
        return [FlowStatus(org=k[0], flow=k[1], **v) for k, v in sorted(acc.items())]
