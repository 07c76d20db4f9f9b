"""Taking in notifications: their marks and the ids they are recognised by, in one transaction.

Doing the re-send check, the marks and the remembering of the ids in one transaction (instead
of three) keeps the receiving side's cost per delivery down, and makes "marked but not
remembered" impossible rather than merely harmless. Deliveries that arrive together (a sender
with several connections) share one transaction: a group commit (``groupcommit``), each sender
answered only after it. The statements are built once per store: SQLAlchemy then compiles each
once, where building them per delivery cost more CPU than the rest of the intake together.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .groupcommit import GroupCommit
from .outbox import OutboxOps, _new_row
from .seen import SeenNotificationOps, notification_key

__all__ = ["NotificationOps", "Acceptance", "EXPIRE_EVERY"]

#: How often (on the store's clock) the intake deletes expired notification ids.
EXPIRE_EVERY = dt.timedelta(seconds=1)


@attrs.frozen
class Acceptance:
    """One notification to take in (the arguments of ``accept_notification``)."""

    org: str
    system: str
    marks: Mapping[str, Mapping[str, Any]]
    keys: tuple[str, ...]  # the stored forms (``notification_key``) of its ids
    horizon: float
    hint: str | None

    @property
    def remembers(self) -> bool:
        """Whether its ids are checked and remembered (it has some, and a horizon)."""
        return bool(self.keys) and self.horizon > 0


class NotificationOps(OutboxOps, SeenNotificationOps):
    """``accept_notification`` of ``StateStore``."""

    def accept_notification(
        self,
        org: str,
        system: str,
        marks: Mapping[str, Mapping[str, Any]],
        *,
        ids: Sequence[str] = (),
        horizon: float = 0.0,
        hint: str | None = None,
    ) -> int | None:
        """Mark ``marks`` (flow -> entity -> payload or None) and remember ``ids`` for
        ``horizon`` seconds, in one transaction (shared with notifications taken in at the same
        moment); returns how many marks were written, or None (nothing written) when every one
        of ``ids`` was received within its horizon, by an earlier transaction or by an earlier
        notification of the same one."""
        keys = tuple(dict.fromkeys(notification_key(i) for i in ids if i))
        return self.intake.submit(Acceptance(org, system, marks, keys, horizon, hint))

    @property
    def intake(self) -> GroupCommit[Acceptance, int | None]:
        """The group commit that ``accept_notification`` goes through (its counts: how many
        transactions took how many notifications)."""
        try:
            return self.__dict__["_intake"]
        except KeyError:
            # setdefault: two threads racing here still share one.
            return self.__dict__.setdefault("_intake", GroupCommit(self._accept_group))

    def _accept_group(self, group: Sequence[Acceptance]) -> list[int | None]:
        """Take in ``group`` in one transaction, in order: a notification whose ids were all
        received before, or earlier in the group, stores nothing (None)."""
        sql = self._intake_sql()
        results: list[int | None] = []
        rows: dict[tuple[str, str, str], dict[str, Any]] = {}
        lines: list[tuple[str, str, str, str, str]] = []
        expiries: dict[tuple[str, str, str], dt.datetime] = {}
        with self._tx() as conn:
            now = self._now(conn)
            seen = self._seen_keys(conn, sql, now, group)
            for acc in group:
                known = seen.setdefault((acc.org, acc.system), set())
                if acc.remembers and known.issuperset(acc.keys):
                    results.append(None)
                    continue
                total = 0
                for flow, entities in acc.marks.items():
                    for entity, payload in entities.items():
                        row = rows.get((acc.org, flow, entity))
                        if row is None:
                            row = _new_row(acc.org, flow, entity, payload, acc.hint, now)
                            rows[(acc.org, flow, entity)] = row
                        elif payload is not None:  # marked twice in the group: the later wins
                            row["payload"] = payload
                        lines.append((acc.org, flow, entity, "marked", acc.hint or ""))
                        total += 1
                if acc.remembers:
                    known.update(acc.keys)
                    until = now + dt.timedelta(seconds=acc.horizon)
                    for key in acc.keys:
                        at = (acc.org, acc.system, key)
                        expiries[at] = max(until, expiries.get(at, until))
                results.append(total)
            if rows:
                # One key order for every writer (see OutboxOps._upsert: no crosswise locks).
                conn.execute(sql["mark"], [rows[k] for k in sorted(rows)])
                self._log_rows(conn, lines, now)
            if expiries:
                self._expire_seen(conn, sql, now)
                remember = [
                    dict(org=org, system=system, notification_id=key, expires_at=until)
                    for (org, system, key), until in sorted(expiries.items())
                ]
                conn.execute(sql["remember"], remember)
        if rows:
            self._notify_marked()
        return results

    def _expire_seen(self, conn: Connection, sql: Mapping[str, Any], now: dt.datetime) -> None:
        """Delete the expired ids, at most once per ``EXPIRE_EVERY`` of the store's clock: an
        expired row is never "seen" (the check compares its expiry), so deleting them is only
        housekeeping, not worth a statement per delivery. One leader at a time runs this."""
        last = self.__dict__.get("_intake_expired_at")
        if last is not None and dt.timedelta(0) <= now - last < EXPIRE_EVERY:
            return
        conn.execute(sql["expire"], {"now": now})
        self.__dict__["_intake_expired_at"] = now

    def _seen_keys(
        self,
        conn: Connection,
        sql: Mapping[str, Any],
        now: dt.datetime,
        group: Sequence[Acceptance],
    ) -> dict[tuple[str, str], set[str]]:
        """Per (org, system): those of the group's keys received within their horizon."""
        wanted: dict[tuple[str, str], set[str]] = {}
        for acc in group:
            if acc.remembers:
                wanted.setdefault((acc.org, acc.system), set()).update(acc.keys)
        found: dict[tuple[str, str], set[str]] = {}
        for (org, system), keys in wanted.items():
            ordered = sorted(keys)
            hits = found.setdefault((org, system), set())
            for start in range(0, len(ordered), 500):
                params = {"org": org, "system": system, "now": now}
                params["keys"] = ordered[start : start + 500]
                hits.update(conn.execute(sql["seen"], params).scalars())
        return found

    def _intake_sql(self) -> dict[str, Any]:
        """The intake's statements, built on first use and kept (they depend on the tables)."""
        cached = self.__dict__.get("_intake_statements")
        if cached is not None:
            return cached
        t = self.tables.seen_notifications
        seen_insert = self._insert(t)
        latest = sa.func.max if self.dialect == "sqlite" else sa.func.greatest
        statements = {
            # The outbox's own mark upsert, for executemany: every row carries marked_at=now.
            "mark": self._mark_statement(),
            "seen": sa.select(t.c.notification_id).where(
                t.c.org == sa.bindparam("org"),
                t.c.system == sa.bindparam("system"),
                t.c.notification_id.in_(sa.bindparam("keys", expanding=True)),
                t.c.expires_at > sa.bindparam("now", type_=t.c.expires_at.type),
            ),
            "expire": t.delete().where(
                t.c.expires_at <= sa.bindparam("now", type_=t.c.expires_at.type)
            ),
            "remember": seen_insert.on_conflict_do_update(
                index_elements=[t.c.org, t.c.system, t.c.notification_id],
                set_={"expires_at": latest(t.c.expires_at, seen_insert.excluded.expires_at)},
            ),
        }
        return self.__dict__.setdefault("_intake_statements", statements)
