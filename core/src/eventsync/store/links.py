"""Links (source entity -> target record, with a hash of what was last written) and watermarks."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..models import Watermark
from .base import StoreBase
from .claims import ClaimRelease, release_within
from .driver_sql import IN_CHUNK, DriverStatement, padded_binds
from .records import Link

__all__ = ["LinkOps", "content_hash", "watermark_within"]


def content_hash(data: Any) -> str:
    """A stable SHA-256 of JSON-able data (keys sorted), to compare with ``Link.hash``."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def _link(row: Any) -> Link:
    return Link(
        org=row.org,
        flow=row.flow,
        source_key=row.source_key,
        target_object=row.target_object,
        target_id=row.target_id,
        hash=row.hash,
        updated_at=row.updated_at,
        source_modified=row.source_modified,
    )


class LinkOps(StoreBase):
    """Link and watermark operations of ``StateStore``."""

    def get_link(self, org: str, flow: str, source_key: str) -> Link | None:
        """The link of one source entity, or None when it was never written."""
        return self.get_links(org, flow, [source_key]).get(source_key)

    def get_links(self, org: str, flow: str, source_keys: Sequence[str]) -> dict[str, Link]:
        """The links of many source entities of one flow (one query per ``IN_CHUNK`` keys), by
        key."""
        found: dict[str, Link] = {}
        keys = list(dict.fromkeys(source_keys))
        if not keys:
            return found
        with self._read() as conn:
            for start in range(0, len(keys), IN_CHUNK):
                binds = padded_binds("key", keys[start : start + IN_CHUNK])
                query = self._links_of(len(binds))
                for row in query.rows(conn, {"org": org, "flow": flow, **binds}):
                    link = Link(*row)
                    found[link.source_key] = link
        return found

    def _links_of(self, size: int) -> DriverStatement:
        """The links of ``size`` source keys (binds ``key0``...) of an org's flow, their
        columns in ``Link``'s order: every export batch reads its links, compiled once."""
        lk = self.tables.links

        def build() -> sa.Select[Any]:
            return sa.select(*(lk.c[f.name] for f in attrs.fields(Link))).where(
                lk.c.org == sa.bindparam("org"),
                lk.c.flow == sa.bindparam("flow"),
                lk.c.source_key.in_([sa.bindparam(f"key{i}") for i in range(size)]),
            )

        return self._compiled(("links_of", size), build)

    def find_links_to(self, org: str, target_object: str, target_id: str) -> list[Link]:
        """Every link (any flow) that points at one target record."""
        lk = self.tables.links
        q = sa.select(lk).where(
            lk.c.org == org, lk.c.target_object == target_object, lk.c.target_id == target_id
        )
        with self._read() as conn:
            return [_link(r) for r in conn.execute(q)]

    def put_link(
        self,
        org: str,
        flow: str,
        source_key: str,
        target_object: str,
        target_id: str,
        hash: str | None = None,
    ) -> Link:
        """Create or replace the link of one source entity; return it."""
        link = Link(org, flow, source_key, target_object, target_id, hash)
        return attrs.evolve(link, updated_at=self._put_links([link]))

    def put_links(self, links: Iterable[Link], *, release: ClaimRelease | None = None) -> int:
        """Create or replace many links in one transaction (``updated_at`` set to now).

        ``release``: claims given up in the same transaction (``release_claims``), those of
        the batch that wrote the links: one transaction at the end of every export batch."""
        rows = {(x.org, x.flow, x.source_key): x for x in links}
        if rows or release is not None:
            self._put_links(list(rows.values()), release)
        return len(rows)

    def _put_links(self, links: list[Link], release: ClaimRelease | None = None) -> dt.datetime:
        """Write ``links`` (distinct keys) in one transaction, then ``release`` the claims;
        return the links' ``updated_at``."""
        # Written only when one of them knows it (a batch that does not leaves the stored times
        # alone), so a store still at a version before 10 takes links as before.
        columns = ["target_object", "target_id", "hash", "updated_at"]
        if any(x.source_modified is not None for x in links):
            columns.append("source_modified")
        with self._tx() as conn:
            now = self._now(conn)
            values = [
                {
                    "org": x.org,
                    "flow": x.flow,
                    "source_key": x.source_key,
                    "target_object": x.target_object,
                    "target_id": x.target_id,
                    "hash": x.hash,
                    "updated_at": now,
                    "source_modified": x.source_modified,
                }
                for x in links
            ]
            if "source_modified" not in columns:
                for value in values:
                    del value["source_modified"]
            if values:
                self._link_statement(tuple(columns)).run(conn, values)
            if release is not None:
                release_within(self, conn, release)
        return now

    def _link_statement(self, columns: tuple[str, ...]) -> DriverStatement:
        """The links upsert writing ``columns`` over an existing link: one statement executed
        for every row, compiled once per store (a multi-row VALUES list is compiled anew for
        each size: a backfill's per-record cost) and run on the driver's cursor (every export
        batch writes its links)."""
        lk = self.tables.links

        def build() -> Any:
            ins = self._insert(lk)
            return ins.on_conflict_do_update(
                index_elements=[lk.c.org, lk.c.flow, lk.c.source_key],
                set_={k: ins.excluded[k] for k in columns},
            )

        keys = ("org", "flow", "source_key", *columns)
        return self._compiled(("links_upsert", columns), build, keys)

    def delete_link(self, org: str, flow: str, source_key: str) -> bool:
        """Forget the link of one source entity; True when there was one."""
        lk = self.tables.links
        with self._tx() as conn:
            return bool(
                conn.execute(
                    sa.delete(lk).where(
                        lk.c.org == org, lk.c.flow == flow, lk.c.source_key == source_key
                    )
                ).rowcount
            )

    def delete_links(self, org: str, flow: str, source_keys: Sequence[str]) -> int:
        """Forget the links of many source entities of one flow; returns how many there were."""
        lk = self.tables.links
        keys = list(dict.fromkeys(source_keys))
        deleted = 0
        with self._tx() as conn:
            for start in range(0, len(keys), 500):
                chunk = keys[start : start + 500]
                deleted += int(
                    conn.execute(
                        sa.delete(lk).where(
                            lk.c.org == org, lk.c.flow == flow, lk.c.source_key.in_(chunk)
                        )
                    ).rowcount
                )
        return deleted

    # ------------------------------------------------------------------ watermarks
    def get_watermark(self, org: str, flow: str, source: str) -> Watermark | None:
        """The ``(timestamp, id)`` position a poller of ``source`` reached, or None."""
        w = self.tables.watermarks
        with self._read() as conn:
            row = conn.execute(
                sa.select(w).where(w.c.org == org, w.c.flow == flow, w.c.source == source)
            ).first()
        return None if row is None else Watermark(timestamp=row.ts, id=row.last_id)

    def set_watermark(
        self, org: str, flow: str, source: str, mark: Watermark, *, force: bool = False
    ) -> Watermark:
        """Advance the watermark of ``source`` to ``mark``; return the stored watermark.

        Only moves forward in ``(timestamp, id)`` order unless ``force`` is true (a re-sync from
        an earlier point), so a late poller can never move it back.
        """
        with self._tx() as conn:
            return watermark_within(self, conn, org, flow, source, mark, force=force)


def watermark_within(
    store: StoreBase,
    conn: Connection,
    org: str,
    flow: str,
    source: str,
    mark: Watermark,
    *,
    force: bool = False,
) -> Watermark:
    """``set_watermark`` within the caller's transaction on ``conn`` (a scan's chunk of marks
    saves its position with them); returns the stored watermark."""
    w = store.tables.watermarks
    where = (w.c.org == org, w.c.flow == flow, w.c.source == source)
    row = conn.execute(sa.select(w).where(*where)).first()
    now = store._now(conn)
    if row is None:
        conn.execute(
            w.insert().values(
                org=org,
                flow=flow,
                source=source,
                ts=mark.timestamp,
                last_id=mark.id,
                updated_at=now,
            )
        )
        return mark
    if not force and (mark.timestamp, mark.id) <= (row.ts, row.last_id):
        return Watermark(timestamp=row.ts, id=row.last_id)
    conn.execute(
        sa.update(w).where(*where).values(ts=mark.timestamp, last_id=mark.id, updated_at=now)
    )
    return mark
