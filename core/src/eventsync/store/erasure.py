"""Erasure in the state store: requests in progress, and the purge of one person's rows.

The purge scans EVERY table of the store that SQLAlchemy's inspector finds (with the store's
prefix, in its schema), not a list of known ones, so tables added later are covered too. A row
goes when any of its text or JSON columns contains the address (ignoring case) or equals one of
the person's ids (their registrations, invitations, CRM records). Watermarks are positions in a
source, not facts about a person: one that names an id of the person forgets the id (the
next scan re-reads that instant, which costs nothing) instead of starting over. The purge, the
audit entry saying an erasure happened and the end of the request are one transaction: the
state is never half-erased.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
import sqlalchemy as sa

from .audit import AuditWrite
from .base import StoreBase

__all__ = ["ErasureOps", "ForgetRequest"]

# Column types that never hold an address or an id.
_SKIP_TYPES = (sa.Integer, sa.Numeric, sa.Float, sa.DateTime, sa.Date, sa.Boolean, sa.Time)


@attrs.frozen
class ForgetRequest:
    """An erasure in progress: the address (kept only until it is done), the organisations it
    covers, and what each step has done so far (``progress``, JSON)."""

    id: str
    email: str
    orgs: tuple[str, ...]
    progress: Mapping[str, Any]


class ErasureOps(StoreBase):
    """Erasure operations of ``StateStore``."""

    def forget_request(self, email: str) -> ForgetRequest | None:
        """The unfinished request for ``email`` (ignoring case), if any."""
        t = self.tables.forget_requests
        with self._read() as conn:
            for row in conn.execute(sa.select(t)):
                if row.email.lower() == email.lower():
                    return ForgetRequest(row.id, row.email, tuple(row.orgs), row.progress or {})
        return None

    def open_forget_request(self, email: str, orgs: Sequence[str]) -> ForgetRequest:
        """Start a request (or return the unfinished one for the same address)."""
        found = self.forget_request(email)
        if found is not None:
            return found
        request = ForgetRequest(uuid.uuid4().hex, email, tuple(orgs), {})
        with self._tx() as conn:
            conn.execute(
                self.tables.forget_requests.insert().values(
                    id=request.id,
                    email=email,
                    orgs=list(orgs),
                    progress={},
                    created_at=self._now(conn),
                )
            )
        return request

    def linked_ids(self, org: str, ids: Iterable[str]) -> set[str]:
        """Both ends (source key and target id) of every link of ``org``, any flow, from or to
        one of ``ids``."""
        links = self.tables.links
        wanted = sorted(set(ids))
        found: set[str] = set()
        with self._read() as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                rows = conn.execute(
                    sa.select(links.c.source_key, links.c.target_id).where(
                        links.c.org == org,
                        sa.or_(links.c.source_key.in_(chunk), links.c.target_id.in_(chunk)),
                    )
                )
                for source_key, target_id in rows:
                    found.update((source_key, target_id))
        return found

    def save_forget_progress(self, request_id: str, progress: Mapping[str, Any]) -> None:
        """Record what the request's steps have done (so a rerun resumes after them)."""
        t = self.tables.forget_requests
        with self._tx() as conn:
            conn.execute(sa.update(t).where(t.c.id == request_id).values(progress=dict(progress)))

    def purge_person(
        self, request_id: str, email: str, ids: Sequence[str], audit: Sequence[AuditWrite]
    ) -> dict[str, int]:
        """Delete every row naming ``email`` or one of ``ids`` in every table of the store, write
        ``audit`` and end the request, in one transaction. Returns rows removed per table."""
        removed: dict[str, int] = {}
        wanted = sorted({i for i in ids if i})
        pattern = "%" + _like_escape(email.lower()) + "%"
        own = {self.tables.schema_version.name, self.tables.forget_requests.name}
        with self._tx() as conn:
            names = sa.inspect(conn).get_table_names(schema=self.tables.schema)
            for name in names:
                if not name.startswith(self.tables.prefix) or name in own:
                    continue
                table = sa.Table(name, sa.MetaData(schema=self.tables.schema), autoload_with=conn)
                count = self._purge_table(conn, table, pattern, wanted)
                if count:
                    removed[name] = count
            now = self._now(conn)
            rows = [attrs.asdict(w) | {"at": now} for w in audit]
            for row in rows:
                row["fields"] = list(row["fields"])
            if rows:
                conn.execute(self.tables.audit_log.insert(), rows)
            t = self.tables.forget_requests
            conn.execute(sa.delete(t).where(t.c.id == request_id))
        return removed

    def _purge_table(
        self, conn: sa.Connection, table: sa.Table, pattern: str, ids: Sequence[str]
    ) -> int:
        columns = [c for c in table.columns if not isinstance(c.type, _SKIP_TYPES)]
        if not columns:
            return 0
        text = {c.name: sa.func.lower(sa.cast(c, sa.Text)) for c in columns}
        if table.name == self.tables.watermarks.name:
            if not ids:
                return 0
            done = 0
            for start in range(0, len(ids), 500):
                chunk = list(ids[start : start + 500])
                done += int(
                    conn.execute(
                        sa.update(table).where(table.c.last_id.in_(chunk)).values(last_id="")
                    ).rowcount
                )
            return done
        conditions: list[Any] = [expr.like(pattern, escape="\\") for expr in text.values()]
        done = 0
        chunks = [list(ids[s : s + 200]) for s in range(0, len(ids), 200)] or [[]]
        for chunk in chunks:
            where = list(conditions)
            if chunk:
                where += [sa.cast(c, sa.Text).in_(chunk) for c in columns]
            done += int(conn.execute(sa.delete(table).where(sa.or_(*where))).rowcount)
        return done


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
