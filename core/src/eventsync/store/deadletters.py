"""Dead letters: rows that failed for good, kept with the remote system's own error text."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from .base import StoreBase
from .records import DeadLetter

__all__ = ["DeadLetterOps"]


def _dead_letter(row: Any) -> DeadLetter:
    return DeadLetter(
        id=row.id,
        org=row.org,
        flow=row.flow,
        entity=row.entity,
        code=row.code,
        message=row.message,
        fields=tuple(row.fields or ()),
        attempts=row.attempts,
        payload=row.payload,
        hint=row.hint,
        first_failure_at=row.first_failure_at,
        last_failure_at=row.last_failure_at,
    )


class DeadLetterOps(StoreBase):
    """Dead-letter operations of ``StateStore``."""

    def _dl_filter(self, ids: Sequence[int] | None, org: str | None, flow: str | None) -> list[Any]:
        d = self.tables.dead_letters
        where: list[Any] = []
        if ids is not None:
            where.append(d.c.id.in_(list(ids)))
        if org is not None:
            where.append(d.c.org == org)
        if flow is not None:
            where.append(d.c.flow == flow)
        return where

    def dead_letters(
        self, org: str | None = None, flow: str | None = None, *, limit: int = 100, offset: int = 0
    ) -> list[DeadLetter]:
        """Dead letters, most recent failure first, optionally of one org and/or flow."""
        d = self.tables.dead_letters
        q = (
            sa.select(d)
            .where(*self._dl_filter(None, org, flow))
            .order_by(d.c.last_failure_at.desc(), d.c.id.desc())
            .limit(limit)
            .offset(offset)
        )
        with self._read() as conn:
            return [_dead_letter(r) for r in conn.execute(q)]

    def dead_letter_count(self, org: str | None = None, flow: str | None = None) -> int:
        """How many dead letters there are, optionally of one org and/or flow."""
        d = self.tables.dead_letters
        q = sa.select(sa.func.count()).select_from(d).where(*self._dl_filter(None, org, flow))
        with self._read() as conn:
            return int(conn.execute(q).scalar_one())

    def dead_letter_of(self, org: str, flow: str, entity: str) -> DeadLetter | None:
        """The dead letter of one entity, or None."""
        d = self.tables.dead_letters
        q = sa.select(d).where(d.c.org == org, d.c.flow == flow, d.c.entity == entity)
        with self._read() as conn:
            row = conn.execute(q).first()
        return _dead_letter(row) if row is not None else None

    def dead_letter_times(
        self, org: str, flow: str, entities: Sequence[str]
    ) -> dict[str, dt.datetime]:
        """When each of ``entities`` that is a dead letter last failed (pollers use it to leave
        a dead letter alone until its source changes)."""
        d = self.tables.dead_letters
        found: dict[str, dt.datetime] = {}
        with self._read() as conn:
            for start in range(0, len(entities), 500):
                q = sa.select(d.c.entity, d.c.last_failure_at).where(
                    d.c.org == org, d.c.flow == flow, d.c.entity.in_(entities[start : start + 500])
                )
                found.update((r.entity, r.last_failure_at) for r in conn.execute(q))
        return found

    def retry_dead_letters(
        self, ids: Sequence[int] | None = None, *, org: str | None = None, flow: str | None = None
    ) -> int:
        """Move dead letters back to the outbox (due at once, attempts reset); return how many.

        Selects by ``ids`` and/or ``org``/``flow``; with no selector at all, retries every dead
        letter. An entity that is pending again already just gets its generation bumped.
        """
        d, o = self.tables.dead_letters, self.tables.outbox
        with self._tx() as conn:
            now = self._now(conn)
            rows = conn.execute(sa.select(d).where(*self._dl_filter(ids, org, flow))).all()
            if not rows:
                return 0
            values = [
                dict(
                    org=r.org,
                    flow=r.flow,
                    entity=r.entity,
                    generation=1,
                    attempts=0,
                    payload=r.payload,
                    hint=r.hint,
                    created_at=now,
                    marked_at=now,
                    due_at=now,
                )
                for r in rows
            ]
            ins = self._insert(o).values(values)
            conn.execute(
                ins.on_conflict_do_update(
                    index_elements=[o.c.org, o.c.flow, o.c.entity],
                    set_={
                        "generation": o.c.generation + 1,
                        "marked_at": now,
                        "attempts": 0,
                        "due_at": now,
                    },
                )
            )
            conn.execute(sa.delete(d).where(d.c.id.in_([r.id for r in rows])))
            lines = [
                (r.org, r.flow, r.entity, "retried", f"dead letter {r.id} moved back to the outbox")
                for r in rows
            ]
            self._log_rows(conn, lines, now)
        self._notify_marked()
        return len(rows)

    def purge_dead_letters(
        self,
        ids: Sequence[int] | None = None,
        *,
        org: str | None = None,
        flow: str | None = None,
        older_than: dt.timedelta | None = None,
    ) -> int:
        """Delete dead letters for good; return how many.

        Selects by ``ids``, ``org``/``flow`` and ``older_than`` (last failure before now minus
        this); with no selector at all, purges every dead letter.
        """
        d = self.tables.dead_letters
        where = self._dl_filter(ids, org, flow)
        with self._tx() as conn:
            if older_than is not None:
                where.append(d.c.last_failure_at < self._now(conn) - older_than)
            return int(conn.execute(sa.delete(d).where(*where)).rowcount)
