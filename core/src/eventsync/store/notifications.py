"""Taking in notifications: their marks and the ids they are recognised by, in one transaction.

Doing the re-send check, the marks and the remembering of the ids in one transaction (instead
of three) keeps the receiving side's cost per delivery down, and makes "marked but not
remembered" impossible rather than merely harmless. Deliveries that arrive together (a sender
with several connections) share one transaction: a group commit (``groupcommit``), each sender
answered only after it. The statements are compiled once per store and run on the driver's
cursor (``driver_sql``): building them per delivery cost more CPU than the rest of the intake
together, and running them through SQLAlchemy's execution machinery cost several times what
the database spent on them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .driver_sql import Conversions, DriverStatement
from .groupcommit import GroupCommit
from .outbox import OutboxOps, _new_row
from .seen import SeenNotificationOps, notification_key

__all__ = ["NotificationOps", "Acceptance", "EXPIRE_EVERY"]

#: How often (on the store's clock) the intake deletes expired notification ids.
EXPIRE_EVERY = dt.timedelta(seconds=1)
#: Most notification ids looked up in one statement.
SEEN_CHUNK = 512
#: The columns of an outbox row as ``_new_row`` makes it.
MARK_COLUMNS = (
    "org",
    "flow",
    "entity",
    "generation",
    "attempts",
    "payload",
    "hint",
    "created_at",
    "marked_at",
    "due_at",
)


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
        memo = Conversions()  # the statements share their times (one ``now``)
        with self._serial.transaction() as conn:
            now = self._now(conn)
            seen = self._seen_keys(conn, now, group, memo)
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
                sql["mark"].run(conn, [rows[k] for k in sorted(rows)], memo)
                self._log_rows(conn, lines, now, memo)
            if expiries:
                self._expire_seen(conn, sql, now, memo)
                remember = [
                    dict(org=org, system=system, notification_id=key, expires_at=until)
                    for (org, system, key), until in sorted(expiries.items())
                ]
                sql["remember"].run(conn, remember, memo)
        if rows:
            self._notify_marked()
        return results

    def _expire_seen(
        self,
        conn: Connection,
        sql: Mapping[str, DriverStatement],
        now: dt.datetime,
        memo: Conversions,
    ) -> None:
        """Delete the expired ids, at most once per ``EXPIRE_EVERY`` of the store's clock: an
        expired row is never "seen" (the check compares its expiry), so deleting them is only
        housekeeping, not worth a statement per delivery. One leader at a time runs this."""
        last = self.__dict__.get("_intake_expired_at")
        if last is not None and dt.timedelta(0) <= now - last < EXPIRE_EVERY:
            return
        sql["expire"].run(conn, [{"now": now}], memo)
        self.__dict__["_intake_expired_at"] = now

    def _seen_keys(
        self,
        conn: Connection,
        now: dt.datetime,
        group: Sequence[Acceptance],
        memo: Conversions,
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
            for start in range(0, len(ordered), SEEN_CHUNK):
                chunk = ordered[start : start + SEEN_CHUNK]
                # Padded to a power of two with repeats (harmless in IN): a few statements
                # serve every size.
                size = 1 << (len(chunk) - 1).bit_length()
                params = {"org": org, "system": system, "now": now}
                params.update((f"key{i}", chunk[min(i, len(chunk) - 1)]) for i in range(size))
                hits.update(row[0] for row in self._seen_statement(size).rows(conn, params, memo))
        return found

    def _seen_statement(self, size: int) -> DriverStatement:
        """Which of ``size`` ids (binds ``key0``...) of an org and system are still remembered."""
        cache = self.__dict__.setdefault("_intake_seen_statements", {})
        statement = cache.get(size)
        if statement is None:
            t = self.tables.seen_notifications
            query = sa.select(t.c.notification_id).where(
                t.c.org == sa.bindparam("org"),
                t.c.system == sa.bindparam("system"),
                t.c.notification_id.in_([sa.bindparam(f"key{i}") for i in range(size)]),
                t.c.expires_at > sa.bindparam("now", type_=t.c.expires_at.type),
            )
            statement = DriverStatement.compile(query, self.engine.dialect)
            statement = cache.setdefault(size, statement)
        return statement

    def _intake_sql(self) -> dict[str, DriverStatement]:
        """The intake's statements, compiled on first use and kept (they depend on the tables)."""
        cached = self.__dict__.get("_intake_statements")
        if cached is not None:
            return cached
        t = self.tables.seen_notifications
        seen_insert = self._insert(t)
        latest = sa.func.max if self.dialect == "sqlite" else sa.func.greatest
        dialect = self.engine.dialect
        statements = {
            # The outbox's own mark upsert, for executemany: every row carries marked_at=now.
            "mark": DriverStatement.compile(self._mark_statement(), dialect, MARK_COLUMNS),
            "expire": DriverStatement.compile(
                t.delete().where(t.c.expires_at <= sa.bindparam("now", type_=t.c.expires_at.type)),
                dialect,
            ),
            "remember": DriverStatement.compile(
                seen_insert.on_conflict_do_update(
                    index_elements=[t.c.org, t.c.system, t.c.notification_id],
                    set_={"expires_at": latest(t.c.expires_at, seen_insert.excluded.expires_at)},
                ),
                dialect,
                ["org", "system", "notification_id", "expires_at"],
            ),
        }
        return self.__dict__.setdefault("_intake_statements", statements)
