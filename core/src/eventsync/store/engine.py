"""Creating the SQLAlchemy engine for SQLite or PostgreSQL, and opening/upgrading a store.

SQLite (the default, embedded mode): a file in WAL mode, ``busy_timeout`` so concurrent writers
wait instead of failing, ``foreign_keys=ON``, a page cache of ``SQLITE_CACHE_KIB`` a connection
(memory flat in the database's size), JSON columns decoded with interned keys (a leased
batch's payloads share their field names), and every transaction but a read-only one
(``StoreBase._read``) started with ``BEGIN IMMEDIATE``: a transaction that reads and then writes
(leasing does) takes the write lock up front and can never fail half-way with SQLITE_BUSY on a
lock upgrade. This makes the SQLite lease as atomic as PostgreSQL's ``FOR UPDATE SKIP LOCKED``.
The engine's own connections queue for that lock in turn (``eventsync.store.sqlite_lock``).

PostgreSQL (scale-out): psycopg 3 through SQLAlchemy, READ COMMITTED, rows claimed with ``SELECT
... FOR UPDATE SKIP LOCKED``; migrations run under a transaction-level advisory lock so several
processes may start at once.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import zlib
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from ..errors import ConfigurationError
from .schema import Tables, current_version, upgrade
from .sqlite_lock import READ_ONLY, begin, locked_connection_factory

__all__ = [
    "DEFAULT_SQLITE_PATH",
    "StateStoreMissing",
    "make_url",
    "create_engine",
    "migrate",
    "require_sqlite_file",
    "require_tables",
]


#: SQLite page cache per connection, in KiB. SQLite's default (2 MiB) fills as the database
#: grows, on every pooled connection (up to ``2 * pool_size``): a 100,000-record backfill held
#: tens of MB of cache that a 10,000-record one did not. The file's pages stay in the OS page
#: cache, so a smaller cache costs a read syscall, not a disk read.
SQLITE_CACHE_KIB = 512


class StateStoreMissing(ConfigurationError):
    """The state store asked for does not exist, and the caller must not create it."""


#: Where the embedded store lives when neither a URL nor a path is given.
DEFAULT_SQLITE_PATH = "eventsync-state.sqlite3"

_SYNCHRONOUS = {"OFF", "NORMAL", "FULL", "EXTRA"}


def make_url(url: str | None, path: str | os.PathLike[str] | None) -> sa.engine.URL:
    """The database URL: ``url`` if given, else a SQLite file at ``path`` (or the default)."""
    if url is not None and path is not None:
        raise ConfigurationError(["state store: give either a URL or a SQLite path, not both"])
    if url is None:
        file = Path(path if path is not None else DEFAULT_SQLITE_PATH).expanduser().resolve()
        file.parent.mkdir(parents=True, exist_ok=True)
        return sa.engine.URL.create("sqlite+pysqlite", database=str(file))
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigurationError([f"state store: {url!r} is not a database URL ({exc})"]) from exc
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise ConfigurationError(
            [f"state store: unsupported database {backend!r}; use sqlite or postgresql"]
        )
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ConfigurationError(
            ["state store: an in-memory SQLite database cannot be shared; give a file path"]
        )
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def require_sqlite_file(url: str | None, path: str | os.PathLike[str] | None) -> None:
    """StateStoreMissing when the SQLite file named by ``url``/``path`` does not exist."""
    if url is not None:
        parsed = make_url(url, None)
        if parsed.get_backend_name() != "sqlite":
            return
        file = Path(str(parsed.database))
    else:
        file = Path(path if path is not None else DEFAULT_SQLITE_PATH).expanduser()
    if not file.resolve().is_file():
        raise StateStoreMissing(
            [
                f"$.engine.state: there is no state database at {file.resolve()} (a relative "
                "path is read against the config file's directory); fix [engine] state, or "
                "create it by starting `eventsync run`"
            ]
        )


def require_tables(engine: Engine, tables: Tables) -> None:
    """StateStoreMissing when the database has no eventsync tables (never migrated)."""
    with engine.connect() as conn:
        found = current_version(conn, tables)
    if found == 0:
        where = engine.url.render_as_string(hide_password=True)
        raise StateStoreMissing(
            [
                f"$.engine.state: {where} holds no eventsync state (no schema_version table); "
                "fix [engine] state, or create it by starting `eventsync run`"
            ]
        )


def create_engine(
    url: sa.engine.URL,
    *,
    busy_timeout: float = 30.0,
    sqlite_synchronous: str = "FULL",
    pool_size: int = 8,
    echo: bool = False,
) -> Engine:
    """An engine configured for the store's dialect (see the module docstring)."""
    if url.get_backend_name() == "sqlite":
        sync = sqlite_synchronous.upper()
        if sync not in _SYNCHRONOUS:
            raise ConfigurationError(
                [f"state store: sqlite_synchronous must be one of {sorted(_SYNCHRONOUS)}"]
            )
        engine = sa.create_engine(
            url,
            echo=echo,
            pool_size=pool_size,
            max_overflow=pool_size,
            connect_args={
                "timeout": busy_timeout,
                "check_same_thread": False,
                # One write lock for the engine's connections (see ``sqlite_lock``).
                "factory": locked_connection_factory(threading.Lock(), busy_timeout),
            },
            json_deserializer=_loads_sharing_keys,
        )
        _configure_sqlite(engine, int(busy_timeout * 1000), sync)
        return engine
    return sa.create_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        isolation_level="READ COMMITTED",
    )


def _loads_sharing_keys(text: str) -> Any:
    """``json.loads`` whose object keys are interned: every payload of a leased batch (a
    backfill's snapshots, thirty-odd fields each) names the same keys, and each decoded row had
    its own copies of them, about half of what a decoded registration holds."""
    return json.loads(text, object_hook=_interned_keys)


def _interned_keys(obj: dict[str, Any]) -> dict[str, Any]:
    return {sys.intern(key): value for key, value in obj.items()}


def _configure_sqlite(engine: Engine, busy_ms: int, synchronous: str) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module; we emit BEGIN ourselves.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {busy_ms}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute(f"PRAGMA synchronous = {synchronous}")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")  # negative: KiB, not pages
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # On the driver's connection: every transaction starts here, and exec_driver_sql's
        # execution machinery cost more than the statement.
        read_only = bool(conn.get_execution_options().get(READ_ONLY))
        begin(conn.connection.driver_connection, read_only)


def migrate(engine: Engine, tables: Tables, target: int | None = None) -> list[int]:
    """Create the PostgreSQL schema if needed and apply missing migrations, under a lock."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            key = zlib.crc32(f"eventsync-migrate:{tables.schema}:{tables.prefix}".encode())
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
            if tables.schema:
                conn.execute(sa.schema.CreateSchema(tables.schema, if_not_exists=True))
        return upgrade(conn, tables, target)
