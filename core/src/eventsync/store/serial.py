"""One long-lived connection for a writer that runs one transaction at a time.

The webhook intake commits a transaction per delivery (``groupcommit``: one leader at a time).
Checking a connection out of SQLAlchemy's pool and back in for each of them (the pool's
bookkeeping, a fresh ``Connection`` and the reset on return) cost the intake about as much CPU
as the statements it ran. A SQLite connection is a file handle that never drops, so the intake
keeps one open and begins each transaction on it. On PostgreSQL a kept connection could be cut
by the server or the network between deliveries, which the pool's ping on checkout would have
caught; there the transactions go through the pool as before (the network costs more than the
checkout anyway).

On the kept connection the transaction is begun and committed on the driver's connection itself
(``BEGIN IMMEDIATE`` through the engine's write lock, ``sqlite_lock``), without SQLAlchemy's
transaction object and its events: its statements must therefore run on the driver's cursor
(``DriverStatement``, the clock's read), as the intake's all do. A statement executed through
SQLAlchemy would begin a second transaction and fail at once.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from .sqlite_lock import begin

__all__ = ["SerialConnection"]


class SerialConnection:
    """Transactions on one connection of ``engine`` kept open between them (SQLite), or on a
    pooled one each (other databases). Callers take turns: ``transaction`` holds a lock."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._keep = engine.dialect.name == "sqlite"
        self._lock = threading.Lock()
        self._conn: Connection | None = None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection in a transaction, committed when the block ends and rolled back when
        it raises."""
        if not self._keep:
            with self._engine.begin() as pooled:
                yield pooled
            return
        with self._lock:
            kept = self._conn
            if kept is None or kept.closed or kept.invalidated:
                kept = self._conn = self._engine.connect()
            conn: Connection = kept
            driver: Any = conn.connection.driver_connection
            try:
                with _as_sqlalchemy_error(conn, "BEGIN IMMEDIATE"):
                    begin(driver, read_only=False)
                try:
                    yield conn
                except BaseException:
                    driver.rollback()
                    raise
                with _as_sqlalchemy_error(conn, "COMMIT"):
                    driver.commit()
            except BaseException:
                # Whatever failed, the next transaction starts on a fresh connection.
                self._conn = None
                with contextlib.suppress(Exception):
                    conn.close()
                raise

    def close(self) -> None:
        """Close the kept connection (a later transaction opens another)."""
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()


@contextlib.contextmanager
def _as_sqlalchemy_error(conn: Connection, sql: str) -> Iterator[None]:
    """A driver error raised as SQLAlchemy's exception for it, as ``Connection.execute`` would."""
    dbapi_error = conn.dialect.loaded_dbapi.Error
    try:
        yield
    except dbapi_error as exc:
        raise sa.exc.DBAPIError.instance(sql, None, exc, dbapi_error, dialect=conn.dialect) from exc
