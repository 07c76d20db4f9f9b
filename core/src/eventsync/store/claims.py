"""Claims: one writer at a time for a value, across every worker and process.

Two batches of one flow may run at once (several workers, several engines). When both hold a
registration with the same email, each would look the email up, find nothing and create a
record: two Leads. Before creating, a batch claims the values it is about to create records
for; a value another batch holds is retried shortly, and by then its record exists, so the
lookup finds it. A claim expires like a lease (on the database's clock), so a crashed holder
never blocks anyone for longer than that.

Every export batch claims and releases, so the statements are compiled once per store and run
on the driver's cursor (``driver_sql``), as the webhook intake's are.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from .base import StoreBase
from .driver_sql import IN_CHUNK, DriverStatement, padded_binds
from .seen import notification_key

__all__ = ["ClaimOps", "ClaimRelease", "release_within"]

#: The columns of a claim row, as ``claim`` writes them.
CLAIM_COLUMNS = ("org", "scope", "claim_key", "holder", "expires_at")


@attrs.frozen
class ClaimRelease:
    """Claims to give up (``release_claims``' arguments), for ``put_links(release=...)``: a
    batch's links and the release of its claims are then one transaction."""

    org: str
    scope: str
    keys: tuple[str, ...]
    holder: str


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
        stored = list(wanted)
        held: set[str] = set()
        with self._tx() as conn:
            now = self._now(conn)
            until = now + dt.timedelta(seconds=max(0.0, seconds))
            self._claim_upsert().run(
                conn,
                [
                    {"org": org, "scope": scope, "claim_key": key, "holder": holder,
                     "expires_at": until, "now": now}
                    for key in stored
                ],
            )  # fmt: skip
            for start in range(0, len(stored), IN_CHUNK):
                binds = padded_binds("key", stored[start : start + IN_CHUNK])
                query = self._claims_held(len(binds))
                values = {"org": org, "scope": scope, "holder": holder, **binds}
                held.update(row[0] for row in query.rows(conn, values))
        return {wanted[key] for key in held}

    def release_claims(self, org: str, scope: str, keys: Iterable[str], holder: str) -> int:
        """Give up ``holder``'s claims on ``keys``; expired claims of everyone are dropped."""
        with self._tx() as conn:
            return release_within(self, conn, ClaimRelease(org, scope, tuple(keys), holder))

    # ------------------------------------------------------------------ statements
    def _claim_upsert(self) -> DriverStatement:
        """Insert a claim, or take one over when it expired (or renew the holder's own)."""
        t = self.tables.claims

        def build() -> Any:
            insert = self._insert(t)
            now = sa.bindparam("now", type_=t.c.expires_at.type)
            return insert.on_conflict_do_update(
                index_elements=[t.c.org, t.c.scope, t.c.claim_key],
                set_={"holder": insert.excluded.holder, "expires_at": insert.excluded.expires_at},
                # Taken over only when expired (or renewed by its own holder).
                where=sa.or_(t.c.expires_at <= now, t.c.holder == insert.excluded.holder),
            )

        return self._compiled("claim_upsert", build, CLAIM_COLUMNS)

    def _claims_held(self, size: int) -> DriverStatement:
        """Which of ``size`` keys (binds ``key0``...) ``holder`` holds in an org's scope."""
        t = self.tables.claims
        return self._compiled(
            ("claims_held", size), lambda: sa.select(t.c.claim_key).where(*_claims_of(t, size))
        )


def release_within(store: StoreBase, conn: Connection, release: ClaimRelease) -> int:
    """``release_claims`` within the caller's transaction on ``conn`` (``put_links`` takes a
    release too); returns how many claims were given up."""
    stored = [notification_key(k) for k in dict.fromkeys(release.keys) if k]
    released = 0
    t = store.tables.claims
    now = sa.bindparam("now", type_=t.c.expires_at.type)
    expire = store._compiled("claims_expire", lambda: t.delete().where(t.c.expires_at <= now))
    expire.run(conn, [{"now": store._now(conn)}])
    owner = {"org": release.org, "scope": release.scope, "holder": release.holder}
    for start in range(0, len(stored), IN_CHUNK):
        binds = padded_binds("key", stored[start : start + IN_CHUNK])
        delete = _release_statement(store, len(binds))
        released += delete.run(conn, [{**owner, **binds}])
    return released


def _release_statement(store: StoreBase, size: int) -> DriverStatement:
    """Delete ``holder``'s claims on ``size`` keys (binds ``key0``...) in an org's scope."""
    t = store.tables.claims
    return store._compiled(("claims_release", size), lambda: t.delete().where(*_claims_of(t, size)))


def _claims_of(t: sa.Table, size: int) -> tuple[sa.ColumnElement[bool], ...]:
    """An org's scope's claims of ``holder`` on ``size`` keys (binds ``key0``...)."""
    return (
        t.c.org == sa.bindparam("org"),
        t.c.scope == sa.bindparam("scope"),
        t.c.holder == sa.bindparam("holder"),
        t.c.claim_key.in_([sa.bindparam(f"key{i}") for i in range(size)]),
    )
