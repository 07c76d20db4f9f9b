"""One process's SQLite writers handed the write lock in turn, not polling for it.

Every store transaction starts with ``BEGIN IMMEDIATE`` (``eventsync.store.engine``), so SQLite
lets one connection write at a time. A connection that finds the lock taken waits in SQLite's
busy handler, which sleeps and retries, backing off to 100 ms between tries: with a backfill's
scanner and six workers in one process, a waiter slept through many hand-offs, and the scanner
spent a quarter of its time there. Here the connections of one engine first take a Python lock
shared by all of them, held from ``BEGIN IMMEDIATE`` to the end of the transaction, so a waiter
wakes the moment the writer before it committed. Other processes sharing the file still meet
SQLite's busy handler, as before. Reads (a connection with the execution option ``READ_ONLY``)
begin a deferred transaction instead and take no lock: in WAL mode they read beside the writer.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

__all__ = ["READ_ONLY", "begin", "locked_connection_factory"]

#: The execution option of a connection that only reads (``StoreBase._read``).
READ_ONLY = "eventsync_read_only"


def locked_connection_factory(lock: threading.Lock, timeout: float) -> type[sqlite3.Connection]:
    """A ``sqlite3.Connection`` class (the ``factory`` of ``sqlite3.connect``) whose
    ``begin_immediate`` takes ``lock`` (waiting at most ``timeout`` seconds, as SQLite's own
    busy timeout would) and whose commit, rollback or close gives it back."""

    class LockedConnection(sqlite3.Connection):
        """A connection holding the engine's write lock while in a transaction it began."""

        _holds = False

        def begin_immediate(self) -> None:
            """Take the write lock, then ``BEGIN IMMEDIATE``."""
            if not lock.acquire(timeout=timeout):
                raise sqlite3.OperationalError("database is locked")
            self._holds = True
            try:
                self.execute("BEGIN IMMEDIATE").close()
            except BaseException:
                self._release()
                raise

        def commit(self) -> None:
            try:
                super().commit()
            finally:
                self._release()

        def rollback(self) -> None:
            try:
                super().rollback()
            finally:
                self._release()

        def close(self) -> None:
            try:
                super().close()
            finally:
                self._release()

        def _release(self) -> None:
            if self._holds:
                self._holds = False
                lock.release()

    return LockedConnection


def begin(dbapi_connection: Any, read_only: bool) -> None:
    """Begin a transaction on a driver connection: deferred for a read, else ``BEGIN
    IMMEDIATE``, through the connection's write lock when it has one."""
    immediate = getattr(dbapi_connection, "begin_immediate", None)
    if immediate is not None and not read_only:
        immediate()
        return
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("BEGIN" if read_only else "BEGIN IMMEDIATE")
    finally:
        cursor.close()
