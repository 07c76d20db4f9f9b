"""What every part of the store shares: engine, tables, clock, policy, dialect helpers."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from .records import RetryPolicy
from .schema import Tables

Clock = Callable[[], dt.datetime]


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(dt.UTC)


class StoreBase:
    """Holds the engine and helpers; the public operations live in the mixins."""

    def __init__(
        self, engine: Engine, tables: Tables, policy: RetryPolicy, clock: Clock | None = None
    ) -> None:
        self.engine = engine
        self.tables = tables
        self.policy = policy
        self._clock: Clock = clock or utcnow
        self._listeners: list[Callable[[], None]] = []
        self._listeners_lock = threading.Lock()

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    def _now(self) -> dt.datetime:
        now = self._clock()
        if now.tzinfo is None:
            raise ValueError("the store clock must return aware datetimes")
        return now

    @contextmanager
    def _tx(self) -> Iterator[Connection]:
        with self.engine.begin() as conn:
            yield conn

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
