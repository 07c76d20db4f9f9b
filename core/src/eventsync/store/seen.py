"""Ids of received notifications, remembered for as long as their sender may re-send them.

A sender that retries (a lost acknowledgement, a crash before it) and an attacker replaying a
captured request look the same: a notification whose ids were already received. Keeping the
ids in the state store, not in memory, makes the answer the same after a restart and in every
process sharing the store. Rows expire (``expires_at``) and are deleted as new ones arrive, so
the table holds one horizon's worth of notifications at most.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .base import StoreBase

__all__ = ["SeenNotificationOps", "notification_key"]

# Longer ids are stored as a digest so any id fits the key column.
_MAX_KEY = 200


def notification_key(notification_id: str) -> str:
    """The stored form of a notification id: itself, or a SHA-256 digest when it is long."""
    if len(notification_id) <= _MAX_KEY:
        return notification_id
    return "sha256:" + hashlib.sha256(notification_id.encode()).hexdigest()


class SeenNotificationOps(StoreBase):
    """Remembering notification ids (``Engine.receive`` refuses re-sends and replays with it)."""

    def seen_notifications(self, org: str, system: str, ids: Iterable[str]) -> set[str]:
        """Those of ``ids`` received for ``org`` and ``system`` whose horizon has not passed."""
        with self._read() as conn:
            return self._seen_in(conn, self._now(conn), org, system, ids)

    def remember_notifications(
        self, org: str, system: str, ids: Iterable[str], horizon: float
    ) -> int:
        """Remember ``ids`` for ``horizon`` seconds (a later expiry wins); expired rows of every
        organisation are deleted in the same transaction. Returns how many ids were given."""
        keys = list(dict.fromkeys(notification_key(i) for i in ids if i))
        if not keys or horizon <= 0:
            return 0
        with self._tx() as conn:
            self._remember_in(conn, self._now(conn), org, system, keys, horizon)
        return len(keys)

    def _seen_in(
        self, conn: Connection, now: dt.datetime, org: str, system: str, ids: Iterable[str]
    ) -> set[str]:
        """``seen_notifications`` on ``conn`` at ``now`` (the database's clock)."""
        wanted = {notification_key(i): i for i in dict.fromkeys(ids) if i}
        t = self.tables.seen_notifications
        found: set[str] = set()
        keys = list(wanted)
        for start in range(0, len(keys), 500):
            rows = conn.execute(
                sa.select(t.c.notification_id).where(
                    t.c.org == org,
                    t.c.system == system,
                    t.c.notification_id.in_(keys[start : start + 500]),
                    t.c.expires_at > now,
                )
            )
            found.update(wanted[key] for key in rows.scalars())
        return found

    def _remember_in(
        self,
        conn: Connection,
        now: dt.datetime,
        org: str,
        system: str,
        keys: list[str],
        horizon: float,
    ) -> None:
        """Remember the stored ``keys`` (``notification_key``) on ``conn``, until ``now``
        (the database's clock: every process sharing the store agrees on when an id expires)
        plus ``horizon``; expired rows of every organisation are deleted."""
        t = self.tables.seen_notifications
        insert = self._insert(t)
        statement = insert.on_conflict_do_update(
            index_elements=[t.c.org, t.c.system, t.c.notification_id],
            set_={"expires_at": sa.func.max(t.c.expires_at, insert.excluded.expires_at)}
            if self.dialect == "sqlite"
            else {"expires_at": sa.func.greatest(t.c.expires_at, insert.excluded.expires_at)},
        )
        until = now + dt.timedelta(seconds=horizon)
        conn.execute(t.delete().where(t.c.expires_at <= now))
        conn.execute(
            statement,
            [dict(org=org, system=system, notification_id=k, expires_at=until) for k in keys],
        )
