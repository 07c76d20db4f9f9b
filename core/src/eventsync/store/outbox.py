"""The outbox (docs/architecture.md §3): one row per (org, flow, entity) with a generation.

Life of a row::

    mark ──> pending ──lease──> leased ──complete──> deleted          (generation unchanged)
               ^  ^               │  └───complete──> pending again     (re-marked during the job)
               │  └──fail/backoff─┤
               │                  └───fail (last attempt or record error) ──> dead letter
               └───── lease expired: any worker may lease it again

Every time here (a lease's end, a due time, a backoff) is the database's, read in the transaction
that writes or compares it (``base.DatabaseClock``), never a process's: engines on machines whose
clocks disagree by minutes still agree on when a lease ends, so a live lease is never taken over
(``eventsync.store.base`` says what the database's clock guarantees on SQLite and PostgreSQL).
Each lease also carries a token (``OutboxItem.lease_token``, new for every lease), and every
outcome, heartbeat, release or deferral acts only on rows still carrying it: a worker whose lease
ran out and was taken over can never finish, fail, extend or hand back the new holder's work.
What fencing cannot undo is a remote write such a worker made before it noticed; the heartbeat
keeps a running job's lease alive, so that takes a worker stalled for ``lease_seconds``.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from ..models import RemoteFailure, Watermark
from .base import StoreBase
from .driver_sql import IN_CHUNK, DriverStatement, padded_binds
from .links import watermark_within
from .peek_sql import (
    LeaseStatements,
    PeekStatements,
    compile_lease,
    compile_peek,
    peek_shape,
    peek_values,
)
from .records import CompleteResult, OutboxItem, Retrying

__all__ = [
    "OutboxOps",
    "Failed",
    "MAX_BATCH",
    "FOLLOW_ON",
    "REQUEUED_NOTE",
    "LOST_NOTE",
    "completion_lines",
]

#: The hint of marks a job makes for another flow, a batch's entities at once (the import's
#: write-back marks): that batch already gathered them, so workers do not linger for more.
FOLLOW_ON = "follow-on"

#: The largest batch a lease returns (one sObject Collections call takes 200 records).
#: The most rows one lease takes: an engine limit; each system's plugin declares its own
#: per-call limit (``SystemProfile.max_batch``) and flows split batches to it.
MAX_BATCH = 1000
#: Marks per transaction: a whole lease, so a backfill chunk of ``MAX_BATCH`` is leased as one
#: batch (a worker never sees half of it), while the write lock is still held only briefly.
_CHUNK = MAX_BATCH

FailResult = Literal["retry", "dead", "requeued", "lost"]


@attrs.frozen
class Failed:
    """One failed item for ``fail_many``.

    :ivar retryable: None takes ``failure.retryable``.
    :ivar retry_after: seconds the remote system asked to wait (a lower bound for the backoff).
    """

    item: OutboxItem
    failure: RemoteFailure
    retryable: bool | None = None
    retry_after: float | None = None


#: The columns of an OutboxItem a lease reads back (it knows the lease's own), and ``due_at``.
_RETURNED_FIELDS = tuple(
    f.name
    for f in attrs.fields(OutboxItem)
    if f.name not in ("lease_token", "leased_by", "lease_until")
)
_LEASE_COLUMNS = (*_RETURNED_FIELDS, "due_at")


def _item(row: Any) -> OutboxItem:
    return OutboxItem(
        id=row.id,
        org=row.org,
        flow=row.flow,
        entity=row.entity,
        generation=row.generation,
        attempts=row.attempts,
        payload=row.payload,
        hint=row.hint,
        lease_token=row.lease_token,
        leased_by=row.leased_by,
        lease_until=row.lease_until,
        created_at=row.created_at,
        last_error=row.last_error,
    )


def _skipping(o: sa.Table, orgs: Collection[str], flows: Collection[tuple[str, str]]) -> list[Any]:
    """Conditions leaving out the rows of ``orgs`` and of the (org, flow) pairs ``flows``."""
    clauses: list[Any] = [o.c.org.not_in(list(orgs))] if orgs else []
    clauses += [sa.not_(sa.and_(o.c.org == org, o.c.flow == flow)) for org, flow in flows]
    return clauses


def _by_token(items: Iterable[OutboxItem]) -> dict[str, list[int]]:
    groups: dict[str, list[int]] = {}
    for item in items:
        if item.lease_token is None:
            raise ValueError(f"outbox item {item.id} ({item.entity}) was not leased")
        groups.setdefault(item.lease_token, []).append(item.id)
    return groups


class OutboxOps(StoreBase):
    """Outbox operations of ``StateStore``."""

    # ------------------------------------------------------------------ marking
    def mark(
        self, org: str, flow: str, entity: str, *, payload: Any = None, hint: str | None = None
    ) -> int:
        """Record that ``entity`` of ``flow`` in ``org`` may have changed; return its generation.

        A new row is due at once. Marking a row that is already there adds no work: it bumps the
        generation (so a worker holding it will not clear it) and replaces payload/hint when
        given; a row in backoff keeps its due time. Durable when this returns.
        """
        o = self.tables.outbox
        with self._tx() as conn:
            now = self._now(conn)
            stmt = self._upsert([_new_row(org, flow, entity, payload, hint, now)], now)
            generation = conn.execute(stmt.returning(o.c.generation)).scalar_one()
            self._log_marks(conn, org, flow, [entity], hint, now)
        self._notify_marked()
        return int(generation)

    def mark_many(
        self,
        org: str,
        flow: str,
        entities: Iterable[str] | Mapping[str, Any],
        *,
        hint: str | None = None,
        watermark: tuple[str, Watermark] | None = None,
    ) -> int:
        """Mark many entities of one flow (backfills); return how many marks were written.

        ``entities`` is an iterable of entity keys, or a mapping of entity key to payload. Writes
        one upsert (one statement executed for every row) per chunk of ``MAX_BATCH``, each
        chunk its own transaction, so a huge backfill never holds the write lock for long, and
        a backfill marking a lease's worth at a time has each batch leased whole. Duplicates
        within a chunk count once.

        ``watermark``: ``(source, position)`` saved (``set_watermark``) in the last chunk's
        transaction, so a scan's marks and the position they reach are stored together (one
        transaction a chunk, not two).
        """
        pairs: Iterable[tuple[str, Any]] = (
            entities.items() if isinstance(entities, Mapping) else ((e, None) for e in entities)
        )
        total = 0
        chunk: dict[str, Any] = {}
        for entity, payload in pairs:
            if len(chunk) >= _CHUNK:  # full, and more to come: the last chunk takes the watermark
                total += self._mark_chunk(org, flow, chunk, hint)
                chunk = {}
            chunk[entity] = payload
        if chunk or watermark is not None:
            total += self._mark_chunk(org, flow, chunk, hint, watermark)
        if total:
            self._notify_marked()
        return total

    def _mark_chunk(
        self,
        org: str,
        flow: str,
        chunk: dict[str, Any],
        hint: str | None,
        watermark: tuple[str, Watermark] | None = None,
    ) -> int:
        with self._tx() as conn:
            now = self._now(conn)
            rows = [_new_row(org, flow, e, p, hint, now) for e, p in chunk.items()]
            self._upsert_many(conn, rows)
            if rows:
                self._log_marks(conn, org, flow, list(chunk), hint, now)
            if watermark is not None:
                watermark_within(self, conn, org, flow, *watermark)
        return len(rows)

    def _log_marks(
        self,
        conn: Connection,
        org: str,
        flow: str,
        entities: list[str],
        hint: str | None,
        now: dt.datetime,
    ) -> None:
        """A ``marked`` sync-log line per entity, naming the trigger (``eventsync trace``)."""
        lines = [(org, flow, e, "marked", hint or "") for e in entities]
        self._log_rows(conn, lines, now)

    def _upsert_many(self, conn: Connection, rows: list[dict[str, Any]]) -> None:
        """Upsert many marks with one statement executed for every row: compiled once per
        store, where a multi-row VALUES list is compiled anew for each size (a backfill's
        per-record cost)."""
        if not rows:
            return
        # One key order for every writer (see ``_upsert``).
        conn.execute(self._mark_statement(), sorted(rows, key=lambda r: r["entity"]))

    def _mark_statement(self) -> Any:
        statement = getattr(self, "_mark_stmt", None)
        if statement is None:
            o = self.tables.outbox
            ins = self._insert(o)
            statement = ins.on_conflict_do_update(
                index_elements=[o.c.org, o.c.flow, o.c.entity],
                set_={
                    "generation": o.c.generation + 1,
                    "marked_at": ins.excluded.marked_at,
                    "payload": sa.func.coalesce(ins.excluded.payload, o.c.payload),
                    "hint": sa.func.coalesce(ins.excluded.hint, o.c.hint),
                },
            )
            self._mark_stmt = statement
        return statement

    def _upsert(self, rows: list[dict[str, Any]], now: dt.datetime) -> Any:
        o = self.tables.outbox
        # One key order for every writer: two processes marking overlapping sets in different
        # orders would otherwise lock index entries crosswise and deadlock (PostgreSQL).
        rows = sorted(rows, key=lambda r: r["entity"])
        ins = self._insert(o).values(rows)
        return ins.on_conflict_do_update(
            index_elements=[o.c.org, o.c.flow, o.c.entity],
            set_={
                "generation": o.c.generation + 1,
                "marked_at": now,
                "payload": sa.func.coalesce(ins.excluded.payload, o.c.payload),
                "hint": sa.func.coalesce(ins.excluded.hint, o.c.hint),
            },
        )

    # ------------------------------------------------------------------ leasing
    def lease(
        self,
        worker_id: str,
        limit: int = MAX_BATCH,
        lease_seconds: float = 60.0,
        *,
        org: str | None = None,
        flow: str | None = None,
        skip_orgs: Collection[str] = (),
        skip_flows: Collection[tuple[str, str]] = (),
    ) -> list[OutboxItem]:
        """Claim up to ``limit`` due rows of ONE (org, flow), oldest first, for ``lease_seconds``.

        The (org, flow) is the one of the oldest due row (optionally restricted by ``org`` /
        ``flow``; never one of ``skip_orgs`` or ``skip_flows``, the paused organisations and
        stopped flows, whose rows must not starve the others). Due means: its backoff has passed
        and it is not leased, or its lease expired (a crashed or stuck worker's rows are taken
        over). Atomic with concurrent workers: on PostgreSQL rows are locked with ``FOR UPDATE
        SKIP LOCKED``, on SQLite the transaction holds the write lock from ``BEGIN IMMEDIATE``.
        All returned items share one lease token. Returns an empty list when nothing is due.
        """
        if not 1 <= limit <= MAX_BATCH:
            raise ValueError(f"lease limit must be between 1 and {MAX_BATCH}, got {limit}")
        if lease_seconds <= 0:
            raise ValueError(f"lease_seconds must be positive, got {lease_seconds}")
        sql = self._lease_sql(peek_shape(org, flow, skip_orgs, skip_flows))
        values = peek_values(org, flow, skip_orgs, skip_flows)
        with self._tx() as conn:
            # Read after BEGIN IMMEDIATE (SQLite) took the write lock: not stale after a wait.
            values["now"] = now = self._now(conn)
            first = sql.first.rows(conn, values)
            if not first:
                return []
            (values["first_org"], values["first_flow"]), values["limit"] = first[0], limit
            values.update(
                token=uuid.uuid4().hex,
                worker=worker_id,
                until=now + dt.timedelta(seconds=lease_seconds),
            )
            rows = sql.take.rows(conn, values)
        at = {name: i for i, name in enumerate(sql.columns)}
        rows.sort(key=lambda row: (row[at["due_at"]], row[at["id"]]))  # RETURNING has no order
        lease = {
            "lease_token": values["token"],
            "leased_by": worker_id,
            "lease_until": values["until"],
        }
        return [OutboxItem(**{f: row[at[f]] for f in _RETURNED_FIELDS}, **lease) for row in rows]

    def _lease_sql(self, shape: tuple[bool, bool, int, int]) -> LeaseStatements:
        """``lease``'s statements for ``shape`` (``peek_sql``), compiled once per store."""
        cache: dict[tuple[bool, bool, int, int], LeaseStatements]
        cache = self.__dict__.setdefault("_lease_statements", {})
        sql = cache.get(shape)
        if sql is None:
            sql = cache.setdefault(
                shape,
                compile_lease(self.tables.outbox, self.engine.dialect, shape, _LEASE_COLUMNS),
            )
        return sql

    def peek_due(
        self,
        *,
        org: str | None = None,
        flow: str | None = None,
        limit: int = MAX_BATCH,
        skip_orgs: Collection[str] = (),
        skip_flows: Collection[tuple[str, str]] = (),
    ) -> tuple[int, float | None]:
        """How many rows ``lease`` would take now (up to ``limit``) and how many seconds ago
        (on the database's clock) the oldest of them was marked; ``(0, None)`` when nothing is
        due. Lets workers wait for fuller batches. The age is None too when the oldest row's
        latest mark was a ``FOLLOW_ON`` one: those rows came as a batch, nothing to wait for."""
        shape = peek_shape(org, flow, skip_orgs, skip_flows)
        cache: dict[tuple[bool, bool, int, int], PeekStatements]
        cache = self.__dict__.setdefault("_peek_sql", {})
        sql = cache.get(shape)
        if sql is None:
            sql = cache.setdefault(
                shape, compile_peek(self.tables.outbox, self.engine.dialect, shape)
            )
        values = peek_values(org, flow, skip_orgs, skip_flows)
        with self._read() as conn:
            values["now"] = now = self._now(conn)
            first = sql.first.rows(conn, values)
            if not first:
                return 0, None
            first_org, first_flow, marked_at, hint = first[0]
            values.update(first_org=first_org, first_flow=first_flow, limit=limit)
            [(count,)] = sql.count.rows(conn, values)
        if hint == FOLLOW_ON:
            return int(count), None
        return int(count), max(0.0, (now - marked_at).total_seconds())

    def due_pairs(self) -> list[tuple[str, str]]:
        """Every (org, flow) with rows ``lease`` would take now, in order: one cheap query (the
        scale-out scheduler's sweep asks every few seconds)."""
        o = self.tables.outbox
        with self._read() as conn:
            due = self._due(self._now(conn), None, None, (), ())
            q = sa.select(o.c.org, o.c.flow).where(*due).distinct().order_by(o.c.org, o.c.flow)
            return [(r.org, r.flow) for r in conn.execute(q)]

    def _due(
        self,
        now: dt.datetime,
        org: str | None,
        flow: str | None,
        skip_orgs: Collection[str],
        skip_flows: Collection[tuple[str, str]],
    ) -> list[Any]:
        """Conditions of a row ``lease`` may take at ``now``: past its backoff, and not leased or
        its lease ended (a crashed or stuck worker's rows are taken over)."""
        o = self.tables.outbox
        due = [o.c.due_at <= now, sa.or_(o.c.lease_until.is_(None), o.c.lease_until <= now)]
        if org is not None:
            due.append(o.c.org == org)
        if flow is not None:
            due.append(o.c.flow == flow)
        return due + _skipping(o, skip_orgs, skip_flows)

    def extend(self, items: Sequence[OutboxItem], lease_seconds: float) -> int:
        """Push the lease of ``items`` to now + ``lease_seconds`` (a heartbeat for long jobs).

        Returns how many rows were still ours.
        """
        o = self.tables.outbox
        count = 0
        with self._tx() as conn:
            until = self._now(conn) + dt.timedelta(seconds=lease_seconds)
            for token, ids in _by_token(items).items():
                count += conn.execute(
                    sa.update(o)
                    .where(o.c.id.in_(ids), o.c.lease_token == token)
                    .values(lease_until=until)
                ).rowcount
        return count

    def release(self, items: Sequence[OutboxItem]) -> int:
        """Give leased rows back untouched (shutdown): due again at once, attempts unchanged.

        Rows whose lease is no longer ours are left alone. Returns how many were released.
        """
        o = self.tables.outbox
        count = 0
        with self._tx() as conn:
            for token, ids in _by_token(items).items():
                count += conn.execute(
                    sa.update(o)
                    .where(o.c.id.in_(ids), o.c.lease_token == token)
                    .values(**_UNLEASED)
                ).rowcount
        return count

    def defer(
        self, items: Sequence[OutboxItem], seconds: float, failure: RemoteFailure | None = None
    ) -> int:
        """Give leased rows back, due in ``seconds``, attempts unchanged (held-back work).

        Not an attempt: however often rows are deferred they are never dead-lettered (a paused
        organisation, a stopped flow). ``failure`` becomes their last error. Rows whose lease is
        no longer ours are left alone. Returns how many were deferred.
        """
        o = self.tables.outbox
        count = 0
        with self._tx() as conn:
            values: dict[str, Any] = dict(
                _UNLEASED, due_at=self._now(conn) + dt.timedelta(seconds=max(0.0, seconds))
            )
            if failure is not None:
                values.update(last_error_code=failure.code, last_error=failure.message)
            for token, ids in _by_token(items).items():
                count += conn.execute(
                    sa.update(o).where(o.c.id.in_(ids), o.c.lease_token == token).values(**values)
                ).rowcount
        return count

    # ------------------------------------------------------------------ outcomes
    def complete(
        self, items: Sequence[OutboxItem], messages: Sequence[str] | None = None
    ) -> CompleteResult:
        """Finish leased items that synced successfully.

        A row is deleted only if its generation did not move since the lease; a row re-marked
        during the job is released instead, due at once, so the newer change is processed. A
        dead letter of the same entity is cleared by a success. Rows whose lease is no longer
        ours (expired and taken over) are left alone and reported as ``lost``.

        ``messages`` (one per item): the sync log gets each item's line in the same
        transaction, ``done`` with its message, or ``requeued`` / ``lost`` (``REQUEUED_NOTE``,
        ``LOST_NOTE``): the executor's every batch, one transaction instead of two.
        """
        if messages is not None and len(messages) != len(items):
            raise ValueError(f"{len(messages)} messages for {len(items)} items")
        done: list[int] = []
        requeued: list[int] = []
        with self._tx() as conn:
            now = self._now(conn)
            for token, ids in _by_token(items).items():
                for start in range(0, len(ids), IN_CHUNK):
                    binds = padded_binds("id", ids[start : start + IN_CHUNK])
                    values, size = {"token": token, "now": now, **binds}, len(binds)
                    done.extend(
                        row[0] for row in self._complete_sql("done", size).rows(conn, values)
                    )
                    requeued.extend(
                        row[0] for row in self._complete_sql("requeue", size).rows(conn, values)
                    )
            done_set = set(done)
            by_flow: dict[tuple[str, str], list[str]] = {}
            for item in items:
                if item.id in done_set:
                    by_flow.setdefault((item.org, item.flow), []).append(item.entity)
            for (org, flow), entities in by_flow.items():
                for start in range(0, len(entities), IN_CHUNK):
                    binds = padded_binds("id", entities[start : start + IN_CHUNK])
                    clear = self._complete_sql("clear", len(binds))
                    clear.run(conn, [{"org": org, "flow": flow, **binds}])
            gone = done_set | set(requeued)
            result = CompleteResult(
                completed=tuple(done),
                requeued=tuple(requeued),
                lost=tuple(i.id for i in items if i.id not in gone),
            )
            if messages is not None:
                self._log_rows(conn, completion_lines(items, messages, result), now)
        return result

    def _complete_sql(self, kind: str, size: int) -> DriverStatement:
        """``complete``'s statements over ``size`` ids (binds ``id0``...; the dead letters'
        over entities), compiled once per size: every batch completes. ``done`` deletes the
        rows leased (``token``) whose generation did not move, ``requeue`` makes the rest of
        them due again (``now``), ``clear`` deletes an org's flow's dead letters."""
        return self._compiled(("complete", kind, size), lambda: self._complete_query(kind, size))

    def _complete_query(self, kind: str, size: int) -> Any:
        """The statement of ``_complete_sql``, built."""
        o, d = self.tables.outbox, self.tables.dead_letters
        ids: list[Any] = [sa.bindparam(f"id{i}") for i in range(size)]
        ours = (o.c.id.in_(ids), o.c.lease_token == sa.bindparam("token"))
        query: Any
        if kind == "done":
            query = sa.delete(o).where(*ours, o.c.generation == o.c.leased_generation)
            query = query.returning(o.c.id)
        elif kind == "requeue":
            query = (
                sa.update(o)
                .where(*ours)
                .values(
                    **_UNLEASED,
                    attempts=0,
                    due_at=sa.bindparam("now", type_=o.c.due_at.type),
                    created_at=o.c.marked_at,
                    first_failure_at=None,
                )
                .returning(o.c.id)
            )
        else:
            query = sa.delete(d).where(
                d.c.org == sa.bindparam("org"),
                d.c.flow == sa.bindparam("flow"),
                d.c.entity.in_(ids),
            )
        return query

    def fail(
        self,
        item: OutboxItem,
        failure: RemoteFailure,
        *,
        retryable: bool | None = None,
        retry_after: float | None = None,
    ) -> FailResult:
        """Record a failed attempt of one leased item; return what became of it.

        ``"retry"``: a retryable failure below ``max_attempts``: due again after an exponential
        backoff with jitter (at least ``retry_after``). ``"dead"``: the last attempt, or a
        non-retryable (record) failure: moved to dead letters with the remote code, text and
        fields verbatim. ``"requeued"``: a record failure but the entity was re-marked during the
        job: the newer data gets a fresh try at once. ``"lost"``: the lease was no longer ours.
        """
        return self.fail_many([Failed(item, failure, retryable, retry_after)])[0]

    def fail_many(self, failures: Sequence[Failed]) -> list[FailResult]:
        """``fail`` for many items in one transaction; results in the same order."""
        results: list[FailResult] = []
        if not failures:
            return results
        with self._tx() as conn:
            now = self._now(conn)
            for entry in failures:
                results.append(self._fail_one(conn, entry, now))
        return results

    def _fail_one(self, conn: Connection, entry: Failed, now: dt.datetime) -> FailResult:
        o = self.tables.outbox
        item, failure = entry.item, entry.failure
        if item.lease_token is None:
            raise ValueError(f"outbox item {item.id} ({item.entity}) was not leased")
        # Lock the row (PostgreSQL) so a concurrent mark waits until we decided; on SQLite the
        # transaction already holds the write lock.
        query = sa.select(o).where(o.c.id == item.id, o.c.lease_token == item.lease_token)
        if self.dialect == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is None:
            return "lost"
        retryable = failure.retryable if entry.retryable is None else entry.retryable
        moved = row.generation != row.leased_generation
        first_failure = row.first_failure_at or now
        error = dict(
            last_error_code=failure.code, last_error=failure.message, first_failure_at=first_failure
        )
        where = sa.and_(o.c.id == item.id, o.c.lease_token == item.lease_token)
        if not retryable and moved:
            conn.execute(
                sa.update(o).where(where).values(**_UNLEASED, **error, attempts=0, due_at=now)
            )
            return "requeued"
        attempts = row.attempts + 1
        if retryable and attempts < self.policy.max_attempts:
            delay = self.backoff_seconds(attempts, entry.retry_after)
            conn.execute(
                sa.update(o)
                .where(where)
                .values(
                    **_UNLEASED,
                    **error,
                    attempts=attempts,
                    due_at=now + dt.timedelta(seconds=delay),
                )
            )
            return "retry"
        d = self.tables.dead_letters
        values = dict(
            org=row.org,
            flow=row.flow,
            entity=row.entity,
            code=failure.code,
            message=failure.message,
            fields=list(failure.fields),
            attempts=attempts,
            payload=row.payload,
            hint=row.hint,
            first_failure_at=first_failure,
            last_failure_at=now,
        )
        ins = self._insert(d).values(**values)
        conn.execute(
            ins.on_conflict_do_update(
                index_elements=[d.c.org, d.c.flow, d.c.entity],
                set_={
                    k: ins.excluded[k]
                    for k in (
                        "code",
                        "message",
                        "fields",
                        "attempts",
                        "payload",
                        "hint",
                        "last_failure_at",
                    )
                },
            )
        )
        conn.execute(sa.delete(o).where(where))
        return "dead"

    def backoff_seconds(self, attempts: int, retry_after: float | None = None) -> float:
        """The wait after the ``attempts``-th failed attempt (see ``RetryPolicy``)."""
        p = self.policy
        delay = min(p.backoff_cap, p.backoff_base * 2 ** max(0, attempts - 1))
        delay *= 1.0 - random.random() * p.jitter
        if retry_after is not None:
            delay = max(delay, retry_after)
        return delay

    # ------------------------------------------------------------------ reading
    def pending(
        self, org: str | None = None, flow: str | None = None, limit: int = 100
    ) -> list[OutboxItem]:
        """Outbox rows (leased or not), oldest due first; for status pages and tests."""
        o = self.tables.outbox
        q = sa.select(o).order_by(o.c.due_at, o.c.id).limit(limit)
        if org is not None:
            q = q.where(o.c.org == org)
        if flow is not None:
            q = q.where(o.c.flow == flow)
        with self._read() as conn:
            return [_item(r) for r in conn.execute(q)]

    def retrying(
        self, org: str | None = None, flow: str | None = None, limit: int = 100
    ) -> list[Retrying]:
        """Rows whose last attempt failed, with that error, next try first (``status``)."""
        o = self.tables.outbox
        q = sa.select(o).where(o.c.attempts > 0).order_by(o.c.due_at, o.c.id).limit(limit)
        if org is not None:
            q = q.where(o.c.org == org)
        if flow is not None:
            q = q.where(o.c.flow == flow)
        with self._read() as conn:
            return [
                Retrying(
                    r.org,
                    r.flow,
                    r.entity,
                    r.attempts,
                    r.last_error_code,
                    r.last_error,
                    r.due_at,
                    r.first_failure_at,
                )
                for r in conn.execute(q)
            ]

    def outbox_row(self, org: str, flow: str, entity: str) -> dict[str, Any] | None:
        """The outbox row of one entity as a mapping of its columns (``trace``), or None."""
        o = self.tables.outbox
        q = sa.select(o).where(o.c.org == org, o.c.flow == flow, o.c.entity == entity)
        with self._read() as conn:
            row = conn.execute(q).first()
            now = self._now(conn)
        if row is None:
            return None
        found = dict(row._mapping)
        leased = row.lease_until is not None and row.lease_until > now
        found["state"] = "in flight" if leased else "retrying" if row.attempts else "pending"
        return found


#: The sync-log message of a completed item re-marked during its job (``complete``).
REQUEUED_NOTE = "changed during the job; queued again"
#: The sync-log message of a completed item whose lease was taken over (``complete``).
LOST_NOTE = "lease expired and was taken over"


def completion_lines(
    items: Sequence[OutboxItem], messages: Sequence[str], result: CompleteResult
) -> list[tuple[str, str, str, str, str]]:
    """The sync-log line of each completed item, in order: ``done`` with its message, else
    ``requeued`` or ``lost``."""
    completed, requeued = set(result.completed), set(result.requeued)
    lines = []
    for item, message in zip(items, messages, strict=True):
        if item.id in completed:
            outcome = "done"
        elif item.id in requeued:
            outcome, message = "requeued", REQUEUED_NOTE
        else:
            outcome, message = "lost", LOST_NOTE
        lines.append((item.org, item.flow, item.entity, outcome, message))
    return lines


_UNLEASED: dict[str, Any] = dict(
    lease_token=None, leased_by=None, lease_until=None, leased_generation=None
)


def _new_row(
    org: str, flow: str, entity: str, payload: Any, hint: str | None, now: dt.datetime
) -> dict[str, Any]:
    return dict(
        org=org,
        flow=flow,
        entity=entity,
        generation=1,
        attempts=0,
        payload=payload,
        hint=hint,
        created_at=now,
        marked_at=now,
        due_at=now,
    )
