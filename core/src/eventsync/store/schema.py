"""Tables of the state store and the ordered list of migrations that build them.

Why not alembic: the store has a handful of tables, must upgrade itself on every start of an
embedded SQLite process as well as a PostgreSQL deployment, and ships inside a library whose users
never run a separate migration tool. Alembic would add a dependency, an ``env.py``/``alembic.ini``
layout to package and a second way to reach the database, for what is here an ordered list of
small functions run under one lock. Each migration is written against SQLAlchemy Core, is applied
in its own transaction together with the ``schema_version`` row that records it, and is frozen
once released: a later change is a new migration, never an edit. If the schema grows complex
(data migrations across many releases, branching), switching to alembic is straightforward
because ``schema_version`` already records the applied steps.

Table names can carry a prefix (``prefix="t1_"`` gives ``t1_outbox``) and, on PostgreSQL, live in
a schema of their own; tests use both to isolate themselves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection

__all__ = ["Tables", "build_tables", "MIGRATIONS", "LATEST_VERSION", "current_version", "upgrade"]


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """Stores naive UTC on every dialect, hands back aware UTC datetimes."""

    impl = sa.DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the state store; use UTC")
        return value.astimezone(dt.UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # pragma: no cover - defensive, SQLite returns datetimes
            value = dt.datetime.fromisoformat(value)
        return value.replace(tzinfo=dt.UTC)


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot be stored as a key (None when it can): longer than ``MAX_KEY``
    characters, or holding a NUL character (which PostgreSQL text cannot)."""
    if len(key) > MAX_KEY:
        return f"longer than {MAX_KEY} characters"
    if "\x00" in key:
        return "holds a NUL character"
    return None


def _id_type() -> sa.types.TypeEngine[int]:
    # SQLite only auto-increments an INTEGER PRIMARY KEY.
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


#: Longest key (entity, notification id, org, flow or system name) the store holds.
MAX_KEY = 255
KEY = sa.String(MAX_KEY)
JSON = sa.JSON(none_as_null=True)


@attrs.frozen
class Tables:
    """The current (latest-version) table objects of one store."""

    metadata: sa.MetaData
    schema_version: sa.Table
    links: sa.Table
    watermarks: sa.Table
    outbox: sa.Table
    dead_letters: sa.Table
    sync_log: sa.Table
    seen_notifications: sa.Table
    claims: sa.Table
    subscriptions: sa.Table
    audit_log: sa.Table
    forget_requests: sa.Table
    api_usage: sa.Table
    record_counts: sa.Table
    prefix: str = ""
    schema: str | None = None


def build_tables(prefix: str = "", schema: str | None = None) -> Tables:
    """Declare the latest shape of every table (what all migrations together produce)."""
    md = sa.MetaData(schema=schema)
    p = prefix
    schema_version = _schema_version_table(md, p)
    links = sa.Table(
        f"{p}links",
        md,
        sa.Column("org", KEY, primary_key=True),
        sa.Column("flow", KEY, primary_key=True),
        sa.Column("source_key", KEY, primary_key=True),
        sa.Column("target_object", KEY, nullable=False),
        sa.Column("target_id", KEY, nullable=False),
        sa.Column("hash", sa.String(128)),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        # When the source last changed the version that was written (v10): a notification's
        # copy of the record older than this is not trusted.
        sa.Column("source_modified", UTCDateTime()),
        sa.Index(f"{p}ix_links_target", "org", "target_object", "target_id"),
    )
    watermarks = sa.Table(
        f"{p}watermarks",
        md,
        sa.Column("org", KEY, primary_key=True),
        sa.Column("flow", KEY, primary_key=True),
        sa.Column("source", KEY, primary_key=True),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("last_id", KEY, nullable=False, server_default=""),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    outbox = sa.Table(
        f"{p}outbox",
        md,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("org", KEY, nullable=False),
        sa.Column("flow", KEY, nullable=False),
        sa.Column("entity", KEY, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False, server_default="1"),
        sa.Column("leased_generation", sa.Integer),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("payload", JSON),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("marked_at", UTCDateTime(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("lease_token", sa.String(64)),
        sa.Column("leased_by", KEY),
        sa.Column("lease_until", UTCDateTime()),
        sa.Column("first_failure_at", UTCDateTime()),
        sa.Column("last_error_code", KEY),
        sa.Column("last_error", sa.Text),
        sa.Column("hint", sa.String(200)),  # added in version 2
        sa.UniqueConstraint("org", "flow", "entity", name=f"{p}uq_outbox_entity"),
        sa.Index(f"{p}ix_outbox_due", "org", "flow", "due_at"),
        sa.Index(f"{p}ix_outbox_due_all", "due_at"),
        sa.Index(f"{p}ix_outbox_lease", "lease_token"),
    )
    dead_letters = sa.Table(
        f"{p}dead_letters",
        md,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("org", KEY, nullable=False),
        sa.Column("flow", KEY, nullable=False),
        sa.Column("entity", KEY, nullable=False),
        sa.Column("code", KEY, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("fields", JSON),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("payload", JSON),
        sa.Column("first_failure_at", UTCDateTime(), nullable=False),
        sa.Column("last_failure_at", UTCDateTime(), nullable=False),
        sa.Column("hint", sa.String(200)),  # added in version 2
        sa.UniqueConstraint("org", "flow", "entity", name=f"{p}uq_dead_letters_entity"),
        # Version 6: ids are never reused after a deletion (SQLite AUTOINCREMENT; PostgreSQL's
        # sequence never goes back), so `eventsync retry --id N` names one failure for ever.
        sqlite_autoincrement=True,
    )
    sync_log = _sync_log_table(md, p, latest=True)
    seen_notifications = _seen_notifications_table(md, p)
    claims = _claims_table(md, p)
    subscriptions = _subscriptions_table(md, p)
    return Tables(
        metadata=md,
        schema_version=schema_version,
        links=links,
        watermarks=watermarks,
        outbox=outbox,
        dead_letters=dead_letters,
        sync_log=sync_log,
        seen_notifications=seen_notifications,
        claims=claims,
        subscriptions=subscriptions,
        audit_log=_audit_log_table(md, p),
        forget_requests=_forget_requests_table(md, p),
        api_usage=_api_usage_table(md, p),
        record_counts=_record_counts_table(md, p),
        prefix=prefix,
        schema=schema,
    )


def _schema_version_table(md: sa.MetaData, p: str) -> sa.Table:
    return sa.Table(
        f"{p}schema_version",
        md,
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("applied_at", UTCDateTime(), nullable=False),
    )


def _sync_log_table(md: sa.MetaData, p: str, latest: bool = False) -> sa.Table:
    # ``latest`` adds what version 7 added: the structured detail of a line (what a write
    # changed, which attempt), and an index for one entity's lines (``eventsync trace``).
    extra: list[Any] = (
        [
            sa.Column("detail", JSON),
            sa.Index(f"{p}ix_sync_log_entity", "org", "flow", "entity", "at"),
        ]
        if latest
        else []
    )
    return sa.Table(
        f"{p}sync_log",
        md,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("org", KEY, nullable=False),
        sa.Column("flow", KEY, nullable=False),
        sa.Column("entity", KEY, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("message", sa.Text, nullable=False, server_default=""),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Index(f"{p}ix_sync_log_flow", "org", "flow", "outcome", "at"),
        sa.Index(f"{p}ix_sync_log_at", "at"),
        *extra,
    )


def _seen_notifications_table(md: sa.MetaData, p: str) -> sa.Table:
    # Ids of received notifications, kept until their sender stops retrying (expires_at), so a
    # re-send or a replay within that horizon stores nothing, whichever process receives it.
    return sa.Table(
        f"{p}seen_notifications",
        md,
        sa.Column("org", KEY, primary_key=True),
        sa.Column("system", KEY, primary_key=True),
        sa.Column("notification_id", KEY, primary_key=True),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Index(f"{p}ix_seen_notifications_expires", "expires_at"),
    )


# --------------------------------------------------------------------------- migrations
# A migration receives the connection (inside the transaction that will also record it) and the
# prefix/schema of the store. Frozen once released: never edit one, append a new one.


def _v1_initial(conn: Connection, prefix: str, schema: str | None) -> None:
    """Version 1 as first released: links, watermarks, outbox, dead letters (no hints, no log)."""
    md = sa.MetaData(schema=schema)
    p = prefix
    sa.Table(
        f"{p}links",
        md,
        sa.Column("org", KEY, primary_key=True),
        sa.Column("flow", KEY, primary_key=True),
        sa.Column("source_key", KEY, primary_key=True),
        sa.Column("target_object", KEY, nullable=False),
        sa.Column("target_id", KEY, nullable=False),
        sa.Column("hash", sa.String(128)),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Index(f"{p}ix_links_target", "org", "target_object", "target_id"),
    )
    sa.Table(
        f"{p}watermarks",
        md,
        sa.Column("org", KEY, primary_key=True),
        sa.Column("flow", KEY, primary_key=True),
        sa.Column("source", KEY, primary_key=True),
        sa.Column("ts", UTCDateTime(), nullable=False),
        sa.Column("last_id", KEY, nullable=False, server_default=""),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )
    sa.Table(
        f"{p}outbox",
        md,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("org", KEY, nullable=False),
        sa.Column("flow", KEY, nullable=False),
        sa.Column("entity", KEY, nullable=False),
        sa.Column("generation", sa.Integer, nullable=False, server_default="1"),
        sa.Column("leased_generation", sa.Integer),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("payload", JSON),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("marked_at", UTCDateTime(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("lease_token", sa.String(64)),
        sa.Column("leased_by", KEY),
        sa.Column("lease_until", UTCDateTime()),
        sa.Column("first_failure_at", UTCDateTime()),
        sa.Column("last_error_code", KEY),
        sa.Column("last_error", sa.Text),
        sa.UniqueConstraint("org", "flow", "entity", name=f"{p}uq_outbox_entity"),
        sa.Index(f"{p}ix_outbox_due", "org", "flow", "due_at"),
        sa.Index(f"{p}ix_outbox_due_all", "due_at"),
        sa.Index(f"{p}ix_outbox_lease", "lease_token"),
    )
    sa.Table(
        f"{p}dead_letters",
        md,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("org", KEY, nullable=False),
        sa.Column("flow", KEY, nullable=False),
        sa.Column("entity", KEY, nullable=False),
        sa.Column("code", KEY, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("fields", JSON),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("payload", JSON),
        sa.Column("first_failure_at", UTCDateTime(), nullable=False),
        sa.Column("last_failure_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("org", "flow", "entity", name=f"{p}uq_dead_letters_entity"),
    )
    md.create_all(conn)


def _v2_hints_and_sync_log(conn: Connection, prefix: str, schema: str | None) -> None:
    """Version 2: a ``hint`` column on outbox and dead letters; the sync log table."""
    md = sa.MetaData(schema=schema)
    for name in ("outbox", "dead_letters"):
        _add_column(conn, f"{prefix}{name}", schema, sa.Column("hint", sa.String(200)))
    _sync_log_table(md, prefix).create(conn)


def _v3_database_clock(conn: Connection, prefix: str, schema: str | None) -> None:
    """Version 3: lease ends, due times and backoffs are on the database's clock.

    No table changes. The times already stored were written by process clocks, close enough to
    the database's to keep. The version exists so that an older eventsync, which compares
    leases with its own process clock, refuses this store instead of working beside newer
    processes: one skewed old process would take over live leases again.
    """


def _claims_table(md: sa.MetaData, p: str) -> sa.Table:
    # Short claims on a value (e.g. a match key) while one batch writes the record it names,
    # so two concurrent batches never both create it; they expire like leases.
    return sa.Table(
        f"{p}claims",
        md,
        sa.Column("org", KEY, primary_key=True),
        sa.Column("scope", KEY, primary_key=True),
        sa.Column("claim_key", KEY, primary_key=True),
        sa.Column("holder", KEY, nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Index(f"{p}ix_claims_expires", "expires_at"),
    )


def _v5_claims(conn: Connection, prefix: str, schema: str | None) -> None:
    """Version 5: claims on match-key values while a batch creates the record they name."""
    _claims_table(sa.MetaData(schema=schema), prefix).create(conn)


def _v4_seen_notifications(conn: Connection, prefix: str, schema: str | None) -> None:
    """Version 4: the ids of received notifications, remembered for their replay horizon."""
    _seen_notifications_table(sa.MetaData(schema=schema), prefix).create(conn)


def _subscriptions_table(md: sa.MetaData, p: str) -> sa.Table:
    # The notification subscriptions eventsync made on remote systems, so that a later run
    # renews its own and ends those the settings no longer ask for (another URL).
    return sa.Table(
        f"{p}subscriptions",
        md,
        sa.Column("org", KEY, primary_key=True),
        sa.Column("system", KEY, primary_key=True),
        sa.Column("subscription_id", KEY, primary_key=True),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("expires_at", UTCDateTime()),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
    )


def _v6_subscriptions_and_unique_dead_letter_ids(
    conn: Connection, prefix: str, schema: str | None
) -> None:
    """Version 6: the subscriptions eventsync made; dead-letter ids never reused.

    SQLite reuses the largest INTEGER PRIMARY KEY once its row is deleted unless the table is
    AUTOINCREMENT, which only a rebuilt table can become: the rows are copied with their ids
    (which also sets the table's sequence past them). PostgreSQL's sequence never reuses an id.
    """
    _subscriptions_table(sa.MetaData(schema=schema), prefix).create(conn)
    if conn.dialect.name != "sqlite":
        return
    name = f"{prefix}dead_letters"
    old = f"{prefix}dead_letters_v5"
    prep = conn.dialect.identifier_preparer
    conn.exec_driver_sql(f"ALTER TABLE {prep.quote(name)} RENAME TO {prep.quote(old)}")
    md = sa.MetaData()
    table = sa.Table(
        name,
        md,
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("org", KEY, nullable=False),
        sa.Column("flow", KEY, nullable=False),
        sa.Column("entity", KEY, nullable=False),
        sa.Column("code", KEY, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("fields", JSON),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("payload", JSON),
        sa.Column("first_failure_at", UTCDateTime(), nullable=False),
        sa.Column("last_failure_at", UTCDateTime(), nullable=False),
        sa.Column("hint", sa.String(200)),
        sa.UniqueConstraint("org", "flow", "entity", name=f"{prefix}uq_dead_letters_entity"),
        sqlite_autoincrement=True,
    )
    table.create(conn)
    columns = ", ".join(prep.quote(c.name) for c in table.columns)
    conn.exec_driver_sql(
        f"INSERT INTO {prep.quote(name)} ({columns}) SELECT {columns} FROM {prep.quote(old)}"
    )
    conn.exec_driver_sql(f"DROP TABLE {prep.quote(old)}")


def _v7_sync_log_detail(conn: Connection, prefix: str, schema: str | None) -> None:
    """Version 7: a ``detail`` column on the sync log and an index on one entity's lines."""
    _add_column(conn, f"{prefix}sync_log", schema, sa.Column("detail", JSON))
    table = _sync_log_table(sa.MetaData(schema=schema), prefix, latest=True)
    next(i for i in table.indexes if i.name == f"{prefix}ix_sync_log_entity").create(conn)


def _add_column(conn: Connection, table: str, schema: str | None, column: sa.Column[Any]) -> None:
    prep = conn.dialect.identifier_preparer
    qualified = (
        prep.quote(table) if schema is None else f"{prep.quote_schema(schema)}.{prep.quote(table)}"
    )
    type_sql = column.type.compile(dialect=conn.dialect)
    conn.exec_driver_sql(f"ALTER TABLE {qualified} ADD COLUMN {prep.quote(column.name)} {type_sql}")


def _audit_log_table(md: sa.MetaData, p: str) -> sa.Table:
    # One row per record eventsync wrote to a remote system: field names only, never values,
    # so the trail holds no personal data beyond the ids it names.
    return sa.Table(
        f"{p}audit_log",
        md,
        sa.Column("id", _id_type(), primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("org", KEY, nullable=False),
        sa.Column("flow", KEY, nullable=False),
        sa.Column("system", KEY, nullable=False),
        sa.Column("object", KEY, nullable=False),
        sa.Column("operation", sa.String(20), nullable=False),
        sa.Column("record_id", KEY, nullable=False, server_default=""),
        sa.Column("entity", KEY, nullable=False, server_default=""),
        sa.Column("fields", JSON),
        sa.Index(f"{p}ix_audit_log_flow", "org", "flow", "at"),
        sa.Index(f"{p}ix_audit_log_entity", "org", "entity"),
        sa.Index(f"{p}ix_audit_log_at", "at"),
    )


def _forget_requests_table(md: sa.MetaData, p: str) -> sa.Table:
    # An erasure in progress: the address is kept only until every step is done, so an
    # interrupted ``forget`` resumes instead of leaving the state half-done.
    return sa.Table(
        f"{p}forget_requests",
        md,
        sa.Column("id", KEY, primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("orgs", JSON, nullable=False),
        sa.Column("progress", JSON),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )


def _v8_audit_and_erasure(conn: Connection, prefix: str, schema: str | None) -> None:
    """Version 8: the audit trail of remote writes, and erasures in progress."""
    md = sa.MetaData(schema=schema)
    _audit_log_table(md, prefix).create(conn)
    _forget_requests_table(md, prefix).create(conn)


def _v10_link_source_modified(conn: Connection, prefix: str, schema: str | None) -> None:
    """Version 10: a link remembers when the source changed the version last written."""
    _add_column(conn, f"{prefix}links", schema, sa.Column("source_modified", UTCDateTime()))


def _api_usage_table(md: sa.MetaData, p: str) -> sa.Table:
    # The remote API usage any process of the deployment saw last, per org and system: the
    # budget guard of every process reads it, so a process that makes no calls (a backfill
    # marking rows for the workers) still sees what the workers spent.
    return sa.Table(
        f"{p}api_usage",
        md,
        sa.Column("org", KEY, primary_key=True),
        sa.Column("system", KEY, primary_key=True),
        sa.Column("used", sa.BigInteger, nullable=False),
        sa.Column("usage_limit", sa.BigInteger, nullable=False),
        sa.Column("reporter", KEY, nullable=False),
        sa.Column("reported_at", UTCDateTime(), nullable=False),
    )


def _record_counts_table(md: sa.MetaData, p: str) -> sa.Table:
    # Records finished by every process, by outcome and error class: counters that only grow
    # (added to atomically per batch), so /metrics of any process shows the deployment's.
    return sa.Table(
        f"{p}record_counts",
        md,
        sa.Column("org", KEY, primary_key=True),
        sa.Column("flow", KEY, primary_key=True),
        sa.Column("outcome", sa.String(20), primary_key=True),
        sa.Column("error_class", sa.String(20), primary_key=True),
        sa.Column("count", sa.BigInteger, nullable=False),
    )


def _v11_shared_usage_and_counts(conn: Connection, prefix: str, schema: str | None) -> None:
    """Version 11: API usage and record counters shared by every process of a deployment."""
    md = sa.MetaData(schema=schema)
    _api_usage_table(md, prefix).create(conn)
    _record_counts_table(md, prefix).create(conn)


Migration = tuple[int, str, Callable[[Connection, str, "str | None"], None]]

#: The ordered migrations: (version, description, function). Append only.
MIGRATIONS: tuple[Migration, ...] = (
    (1, "links, watermarks, outbox, dead letters", _v1_initial),
    (2, "hints on outbox and dead letters; sync log", _v2_hints_and_sync_log),
    (3, "leases, due times and backoffs on the database clock", _v3_database_clock),
    (4, "ids of received notifications", _v4_seen_notifications),
    (5, "claims on match-key values", _v5_claims),
    (
        6,
        "subscriptions made; dead-letter ids never reused",
        _v6_subscriptions_and_unique_dead_letter_ids,
    ),
    (7, "sync-log detail and an index on entities", _v7_sync_log_detail),
    (8, "audit trail of remote writes; erasures in progress", _v8_audit_and_erasure),
    (10, "the source's modified time on links", _v10_link_source_modified),
    (11, "API usage and record counters shared across processes", _v11_shared_usage_and_counts),
)
LATEST_VERSION = MIGRATIONS[-1][0]


def current_version(conn: Connection, tables: Tables) -> int:
    """The schema version recorded in the database, 0 for an empty database."""
    if not sa.inspect(conn).has_table(tables.schema_version.name, schema=tables.schema):
        return 0
    found = conn.execute(sa.select(sa.func.max(tables.schema_version.c.version))).scalar()
    return int(found or 0)


def upgrade(conn: Connection, tables: Tables, target: int | None = None) -> list[int]:
    """Apply the missing migrations up to ``target`` (default: latest); return those applied.

    The caller holds the migration lock and the transaction. Refuses a database whose version is
    newer than this code knows, rather than writing to a schema it does not understand.
    """
    from ..errors import ConfigurationError

    target = LATEST_VERSION if target is None else target
    if not sa.inspect(conn).has_table(tables.schema_version.name, schema=tables.schema):
        tables.schema_version.create(conn)
    have = current_version(conn, tables)
    if have > LATEST_VERSION:
        raise ConfigurationError(
            [
                f"$.engine.state: the state store is at schema version {have} but this "
                f"eventsync knows only up to {LATEST_VERSION}; upgrade eventsync (pip install "
                f"-U eventsync) before running it"
            ]
        )
    applied = []
    for version, description, fn in MIGRATIONS:
        if have < version <= target:
            fn(conn, tables.prefix, tables.schema)
            conn.execute(
                tables.schema_version.insert().values(
                    version=version,
                    description=description,
                    applied_at=dt.datetime.now(dt.UTC),
                )
            )
            applied.append(version)
    return applied
