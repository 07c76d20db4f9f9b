"""The audit trail: one row per record eventsync wrote to a remote system.

Each entry says when, which organisation and flow, which system, object and record, which
operation, the names of the fields written (never their values) and the source entity the write
came from. Entries are kept for ``[engine] audit_retention_days`` (the maintenance thread
prunes older ones).

Every export batch records its writes, so the insert is compiled once per store and run on
the driver's cursor (``driver_sql``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import sqlalchemy as sa

from .base import StoreBase
from .driver_sql import DriverStatement

__all__ = ["AuditOps", "AuditEntry", "AuditWrite"]


@attrs.frozen
class AuditWrite:
    """A write to record (``at`` is set by the store, on the database clock)."""

    org: str
    flow: str
    system: str
    object: str
    operation: str
    record_id: str
    entity: str
    fields: tuple[str, ...] = ()


#: The attributes of an AuditWrite, each a column of its row.
_WRITE_FIELDS = tuple(f.name for f in attrs.fields(AuditWrite))


@attrs.frozen
class AuditEntry:
    """One recorded write."""

    id: int
    at: dt.datetime
    org: str
    flow: str
    system: str
    object: str
    operation: str
    record_id: str
    entity: str
    fields: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (``at`` in ISO 8601)."""
        out = attrs.asdict(self)
        out["at"] = self.at.isoformat()
        out["fields"] = list(self.fields)
        return out


class AuditOps(StoreBase):
    """Audit-trail operations of ``StateStore``."""

    def record_audit(
        self, writes: Iterable[AuditWrite], *, lines: Sequence[Sequence[Any]] = ()
    ) -> int:
        """Append the writes in one transaction; returns how many.

        ``lines``: sync-log lines (as ``log_many`` takes them) written in the same
        transaction, e.g. the ``wrote`` journal of the same push: a backfill's batch then
        makes one transaction, not two, on a store whose writers take turns."""
        # Not attrs.asdict: its deep copy cost more than the row (the fields are text).
        rows = [{name: getattr(w, name) for name in _WRITE_FIELDS} for w in writes]
        if not rows and not lines:
            return 0
        with self._tx() as conn:
            now = self._now(conn)
            for row in rows:
                row["at"], row["fields"] = now, list(row["fields"])
            if rows:
                self._audit_insert().run(conn, rows)
            if lines:
                self._log_rows(conn, lines, now)
        return len(rows)

    def _audit_insert(self) -> DriverStatement:
        """The audit trail's insert."""
        return self._compiled("audit", self.tables.audit_log.insert, ("at", *_WRITE_FIELDS))

    def audit_entries(
        self,
        org: str | None = None,
        flow: str | None = None,
        entity: str | None = None,
        *,
        record_id: str | None = None,
        since: dt.datetime | None = None,
        limit: int = 1000,
        latest: bool = False,
    ) -> list[AuditEntry]:
        """Recorded writes, oldest first, optionally filtered (``entity``: the source entity);
        at most ``limit``: the first ones, or with ``latest`` the last ones."""
        t = self.tables.audit_log
        order = (t.c.at.desc(), t.c.id.desc()) if latest else (t.c.at, t.c.id)
        q = sa.select(t).order_by(*order).limit(limit)
        for column, value in (
            ("org", org),
            ("flow", flow),
            ("entity", entity),
            ("record_id", record_id),
        ):
            if value is not None:
                q = q.where(t.c[column] == value)
        if since is not None:
            q = q.where(t.c.at >= since)
        with self._read() as conn:
            entries = [_entry(r) for r in conn.execute(q)]
        return entries[::-1] if latest else entries

    def prune_audit(self, older_than: dt.timedelta) -> int:
        """Delete entries older than ``older_than``; returns how many."""
        t = self.tables.audit_log
        with self._tx() as conn:
            cutoff = self._now(conn) - older_than
            return int(conn.execute(sa.delete(t).where(t.c.at < cutoff)).rowcount)


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        row.id,
        row.at,
        row.org,
        row.flow,
        row.system,
        row.object,
        row.operation,
        row.record_id,
        row.entity,
        tuple(row.fields or ()),
    )
