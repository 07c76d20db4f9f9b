"""What every part of the store shares: engine, tables, clock, policy, dialect helpers.

The store's clock is the database's (``DatabaseClock``): every time the store writes or compares
(a lease's end, a due time, a backoff, a log line) is read from the database inside the
transaction that uses it, never from the process, so engines on machines whose clocks disagree
still agree on when a lease ends.

PostgreSQL: the server's ``clock_timestamp()``. Every client, wherever it runs, reads the one
server clock, so a skewed client clock changes nothing.

SQLite: SQLite's own ``strftime(..., 'now')``, i.e. the operating system's real-time clock of
the machine the file is on. That is one clock for every process sharing the file (WAL mode needs
them all on that machine; containers there share its kernel clock), and no fake or offset a
process applies to its own idea of time (in Python, say) reaches it. What it does not guarantee:
the clock is not monotonic, so a step of the machine's clock (an NTP correction, an operator)
makes live leases end early or late, though for every process alike; and a process that
interposes on the C library's time calls (libfaketime) or opens the file over a network file
system (which SQLite does not support) would read another clock.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from .driver_sql import Conversions, DriverStatement
from .records import RetryPolicy
from .schema import Tables
from .serial import SerialConnection
from .sqlite_lock import READ_ONLY

#: A function returning aware UTC datetimes: a fixed, settable clock for tests of exact times.
Clock = Callable[[], dt.datetime]


class DatabaseClock:
    """The store's default clock: the database's, plus an ``offset`` (zero but in tests).

    Share one instance between stores to move the time of all of them at once (``advance``):
    a test's time travel then behaves like the database server's clock moving, which every
    process sees alike.
    """

    def __init__(self, offset: float = 0.0) -> None:
        self._offset = dt.timedelta(seconds=offset)
        self._lock = threading.Lock()

    @property
    def offset(self) -> dt.timedelta:
        """How far this clock is ahead of the database's."""
        with self._lock:
            return self._offset

    def advance(self, seconds: float) -> None:
        """Move this clock ``seconds`` forward (tests: let leases and backoffs expire)."""
        with self._lock:
            self._offset += dt.timedelta(seconds=seconds)

    def read(self, conn: Connection) -> dt.datetime:
        """The database's time now, aware UTC, read on ``conn`` (inside its transaction)."""
        # On the driver's own cursor: this runs in nearly every transaction, and SQLAlchemy's
        # execution machinery cost several times the query itself.
        cursor = conn.connection.cursor()
        try:
            if conn.dialect.name == "postgresql":
                # clock_timestamp(), not now(): the time of this statement, not of the
                # transaction's start, should the transaction have waited for a lock.
                cursor.execute("SELECT clock_timestamp()")
                row: Any = cursor.fetchone()
                now = row[0].astimezone(dt.UTC)
            else:
                # UTC, to the millisecond.
                cursor.execute("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")
                row = cursor.fetchone()
                now = dt.datetime.fromisoformat(row[0]).replace(tzinfo=dt.UTC)
        finally:
            cursor.close()
        return now + self.offset


class _FixedClock:
    """A ``Clock`` function standing in for the database's clock (tests of exact times)."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock

    def read(self, conn: Connection) -> dt.datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the store clock must return aware datetimes")
        return now


class StoreBase:
    """Holds the engine and helpers; the public operations live in the mixins."""

    def __init__(
        self,
        engine: Engine,
        tables: Tables,
        policy: RetryPolicy,
        clock: Clock | DatabaseClock | None = None,
    ) -> None:
        self.engine = engine
        self.tables = tables
        self.policy = policy
        self._clock: DatabaseClock | _FixedClock
        if clock is None:
            self._clock = DatabaseClock()
        elif isinstance(clock, DatabaseClock):
            self._clock = clock
        else:
            self._clock = _FixedClock(clock)
        self._listeners: list[Callable[[], None]] = []
        self._listeners_lock = threading.Lock()
        #: The intake's transactions, one at a time, on a connection kept open (``serial``).
        self._serial = SerialConnection(engine)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    def _log_rows(
        self,
        conn: Connection,
        lines: Sequence[Sequence[Any]],
        now: dt.datetime,
        memo: Conversions | None = None,
    ) -> None:
        """Insert sync-log lines within the caller's transaction (``memo``: the conversions
        its other statements made, ``DriverStatement.run``)."""
        rows = [
            dict(
                org=line[0], flow=line[1], entity=line[2], outcome=line[3], message=line[4], at=now
            )
            for line in lines
        ]
        details = [line[5] if len(line) > 5 else None for line in lines]
        # Lines without detail leave the column out: a store still at an older schema version
        # (while it is being upgraded, or in the migration tests) can take them.
        with_detail = any(d is not None for d in details)
        if with_detail:
            for row, detail in zip(rows, details, strict=True):
                row["detail"] = detail
        self._sync_log_insert(with_detail).run(conn, rows, memo)

    def _compiled(
        self, key: Hashable, build: Callable[[], Any], columns: Sequence[str] = ()
    ) -> DriverStatement:
        """The statement ``build`` returns, compiled for the driver once per store under
        ``key`` (an INSERT's parameters: ``columns``): the hot statements run on the driver's
        cursor, and building and compiling them per call cost more than running them."""
        cache: dict[Hashable, DriverStatement] = self.__dict__.setdefault("_compiled_sql", {})
        statement = cache.get(key)
        if statement is None:
            compiled = DriverStatement.compile(build(), self.engine.dialect, columns)
            statement = cache.setdefault(key, compiled)
        return statement

    def _sync_log_insert(self, with_detail: bool) -> DriverStatement:
        """The sync log's INSERT (with or without ``detail``): nearly every transaction writes
        log lines."""
        columns = ["org", "flow", "entity", "outcome", "message", "at"]
        columns += ["detail"] if with_detail else []
        return self._compiled(("sync_log", with_detail), self.tables.sync_log.insert, columns)

    def _now(self, conn: Connection) -> dt.datetime:
        """The store's time (the database's), read on ``conn``: call it inside the transaction
        that writes or compares the time, so a wait for a lock cannot make it stale."""
        return self._clock.read(conn)

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        """A connection for reads only. On SQLite its transaction is deferred: in WAL mode it
        reads a snapshot beside the writer instead of queueing for the write lock (a backfill's
        workers and scanner waited there for link look-ups and status counts). Never write on
        it: a deferred transaction's upgrade to a writer can fail at once with SQLITE_BUSY."""
        with self.engine.connect() as conn:
            yield conn.execution_options(**{READ_ONLY: True})

    def _insert(self, table: sa.Table) -> Any:
        """A dialect ``INSERT`` that supports ``on_conflict_do_update`` (same API on both)."""
        if self.dialect == "postgresql":
            return postgresql.insert(table)
        return sqlite.insert(table)

    def _for_update(self, query: sa.Select[Any]) -> sa.Select[Any]:
        """Row locks that skip rows other workers hold (PostgreSQL); SQLite has BEGIN IMMEDIATE."""
        if self.dialect == "postgresql":
            return query.with_for_update(skip_locked=True)
        return query

    def add_mark_listener(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after every committed mark (an executor uses it to wake up)."""
        with self._listeners_lock:
            self._listeners.append(callback)

    def remove_mark_listener(self, callback: Callable[[], None]) -> None:
        """Stop calling a callback given to ``add_mark_listener``; unknown ones are ignored."""
        with self._listeners_lock:
            if callback in self._listeners:
                self._listeners.remove(callback)

    def _notify_marked(self) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for callback in listeners:
            callback()
