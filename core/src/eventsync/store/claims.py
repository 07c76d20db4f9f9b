"""Claims: one writer at a time for a value, across every worker and process.

Two batches of one flow may run at once (several workers, several engines). When both hold a
registration with the same email, each would look the email up, find nothing and create a
record: two Leads. Before creating, a batch claims the values it is about to create records
for; a value another batch holds is retried shortly, and by then its record exists, so the
lookup finds it. A claim expires like a lease (on the database's clock), so a crashed holder
never blocks anyone for longer than that.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import sqlalchemy as sa

from .base import StoreBase
from .seen import notification_key

__all__ = ["ClaimOps"]


class ClaimOps(StoreBase):
    """Claiming values (``scope`` names what they are, e.g. ``"export_registrations:Lead"``)."""

    def claim(
        self, org: str, scope: str, keys: Iterable[str], holder: str, seconds: float
    ) -> set[str]:
        """Claim ``keys`` for ``holder`` for ``seconds``; returns those it now holds (new,
        expired or already its own). The others are held by someone else."""
        wanted = {notification_key(k): k for k in dict.fromkeys(keys) if k}
        if not wanted:
            return set()
        t = self.tables.claims
        insert = self._insert(t)
        with self._tx() as conn:
            now = self._now(conn)
            until = now + dt.timedelta(seconds=max(0.0, seconds))
            statement = insert.on_conflict_do_update(
                index_elements=[t.c.org, t.c.scope, t.c.claim_key],
                set_={"holder": insert.excluded.holder, "expires_at": insert.excluded.expires_at},
                # Taken over only when expired (or renewed by its own holder).
                where=sa.or_(t.c.expires_at <= now, t.c.holder == insert.excluded.holder),
            )
            conn.execute(
                statement,
                [
                    {"org": org, "scope": scope, "claim_key": key, "holder": holder,
                     "expires_at": until}
                    for key in wanted
                ],
            )  # fmt: skip
            held = conn.execute(
                sa.select(t.c.claim_key).where(
                    t.c.org == org,
                    t.c.scope == scope,
                    t.c.holder == holder,
                    t.c.claim_key.in_(list(wanted)),
                )
            )
            return {wanted[key] for key in held.scalars()}

    def release_claims(self, org: str, scope: str, keys: Iterable[str], holder: str) -> int:
        """Give up ``holder``'s claims on ``keys``; expired claims of everyone are dropped."""
        stored = [notification_key(k) for k in dict.fromkeys(keys) if k]
        t = self.tables.claims
        with self._tx() as conn:
            now = self._now(conn)
            conn.execute(t.delete().where(t.c.expires_at <= now))
            if not stored:
                return 0
            result = conn.execute(
                t.delete().where(
                    t.c.org == org,
                    t.c.scope == scope,
                    t.c.holder == holder,
                    t.c.claim_key.in_(stored),
                )
            )
            return int(result.rowcount or 0)
