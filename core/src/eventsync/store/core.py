"""``StateStore``: links, watermarks, outbox, dead letters, sync log and the ids of received
notifications behind one typed API."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy.engine import Engine

from .audit import AuditOps
from .base import Clock, DatabaseClock
from .claims import ClaimOps
from .deadletters import DeadLetterOps
from .engine import create_engine, make_url, migrate, require_sqlite_file, require_tables
from .erasure import ErasureOps
from .links import LinkOps
from .notifications import NotificationOps
from .outbox import OutboxOps
from .records import RetryPolicy
from .schema import LATEST_VERSION, Tables, build_tables, current_version
from .seen import SeenNotificationOps
from .shared import SharedOps
from .subscriptions import SubscriptionOps
from .synclog import SyncLogOps

__all__ = ["StateStore"]


class StateStore(
    NotificationOps,
    OutboxOps,
    DeadLetterOps,
    LinkOps,
    SyncLogOps,
    SeenNotificationOps,
    ClaimOps,
    SubscriptionOps,
    AuditOps,
    ErasureOps,
    SharedOps,
):
    """The state store of eventsync, on SQLite (embedded default) or PostgreSQL (scale-out).

    Open it with ``StateStore.open()``; it is safe to share one instance between threads and to
    open the same database from several processes. Close it with ``close()`` (or use it as a
    context manager).
    """

    def __init__(
        self,
        engine: Engine,
        tables: Tables,
        policy: RetryPolicy | None = None,
        clock: Clock | DatabaseClock | None = None,
    ) -> None:
        super().__init__(engine, tables, policy or RetryPolicy(), clock)

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        path: str | os.PathLike[str] | None = None,
        prefix: str = "",
        schema: str | None = None,
        policy: RetryPolicy | None = None,
        max_attempts: int | None = None,
        backoff_base: float | None = None,
        backoff_cap: float | None = None,
        busy_timeout: float = 30.0,
        sqlite_synchronous: str = "FULL",
        pool_size: int = 8,
        clock: Clock | DatabaseClock | None = None,
        migrate_to: int | None = None,
        echo: bool = False,
        create: bool = True,
    ) -> StateStore:
        """Open (creating or upgrading the schema) the store at ``url`` or the SQLite ``path``.

        :param url: a SQLAlchemy URL, ``sqlite:///state.db`` or
            ``postgresql+psycopg://user@host:5432/db`` (plain ``postgresql://`` uses psycopg 3).
            None means a SQLite file at ``path`` (default ``./eventsync-state.sqlite3``).
        :param prefix: prepended to every table name (isolation within one database).
        :param schema: PostgreSQL schema to keep the tables in (created when missing).
        :param policy: the retry policy; ``max_attempts``/``backoff_base``/``backoff_cap``
            override single fields of it.
        :param busy_timeout: SQLite: seconds a writer waits for the lock before failing.
        :param sqlite_synchronous: SQLite ``PRAGMA synchronous``; FULL (default) makes every
            committed mark survive a power loss, NORMAL is faster and survives process crashes.
        :param clock: where the store's time comes from. None (the default) reads the database's
            clock (``DatabaseClock``, see ``eventsync.store.base``); a ``DatabaseClock`` shared
            by several stores moves all their times at once (tests: ``advance``); a function
            returning aware UTC datetimes replaces the database's clock (tests of exact times).
        :param migrate_to: stop migrating at this version (tests of upgrades only).
        :param create: False refuses a store that does not exist yet (no SQLite file, or a
            database without eventsync's tables) with ``StateStoreMissing`` instead of making
            an empty one: commands that only read state must not report on a new, empty store.
        """
        if schema is not None and url is None:
            raise ValueError("schema= needs a PostgreSQL URL; use prefix= with SQLite")
        policy = policy or RetryPolicy()
        overrides: dict[str, Any] = {
            k: v
            for k, v in (
                ("max_attempts", max_attempts),
                ("backoff_base", backoff_base),
                ("backoff_cap", backoff_cap),
            )
            if v is not None
        }
        if overrides:
            import attrs

            policy = attrs.evolve(policy, **overrides)
        if not create:
            require_sqlite_file(url, path)
        engine = create_engine(
            make_url(url, path),
            busy_timeout=busy_timeout,
            sqlite_synchronous=sqlite_synchronous,
            pool_size=pool_size,
            echo=echo,
        )
        tables = build_tables(prefix, schema)
        try:
            if not create:
                require_tables(engine, tables)
            migrate(engine, tables, migrate_to)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, tables, policy, clock)

    def schema_version(self) -> int:
        """The schema version of the database (``LATEST_VERSION`` once opened normally)."""
        with self._read() as conn:
            return current_version(conn, self.tables)

    latest_version = LATEST_VERSION

    def close(self) -> None:
        """Close every connection. The store must not be used afterwards."""
        self._serial.close()
        self.engine.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        url = self.engine.url.render_as_string(hide_password=True)
        return f"<StateStore {url} prefix={self.tables.prefix!r} schema={self.tables.schema!r}>"
