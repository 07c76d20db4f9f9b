"""Schema creation, versioning, upgrade from an older version, dialect settings, isolation."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from eventsync.errors import ConfigurationError, EventsyncError
from eventsync.store import LATEST_VERSION, StateStore
from eventsync.store.schema import MIGRATIONS

TABLES = (
    "links",
    "watermarks",
    "outbox",
    "dead_letters",
    "sync_log",
    "seen_notifications",
    "schema_version",
)


def _columns(store: StateStore) -> dict[str, set[str]]:
    insp = sa.inspect(store.engine)
    t = store.tables
    return {
        name: {c["name"] for c in insp.get_columns(getattr(t, name).name, schema=t.schema)}
        for name in TABLES
    }


def test_fresh_store_is_at_latest_version_and_matches_declared_tables(store: StateStore) -> None:
    assert store.schema_version() == LATEST_VERSION == MIGRATIONS[-1][0]
    declared = {name: {c.name for c in getattr(store.tables, name).columns} for name in TABLES}
    assert _columns(store) == declared


def test_reopening_applies_nothing_twice(target) -> None:
    target.open().mark("acme", "export", "a")
    again = target.open()
    assert again.schema_version() == LATEST_VERSION
    with again.engine.connect() as conn:
        versions = conn.execute(sa.select(again.tables.schema_version.c.version)).scalars().all()
    assert sorted(versions) == [v for v, _, _ in MIGRATIONS]
    assert len(again.pending()) == 1


def test_upgrade_from_version_1_keeps_data(target) -> None:
    old = target.open(migrate_to=1)
    assert old.schema_version() == 1
    insp = sa.inspect(old.engine)
    assert not insp.has_table(old.tables.sync_log.name, schema=old.tables.schema)
    # write a v1 row the way version-1 code did (no hint column yet)
    v1_outbox = sa.Table(
        old.tables.outbox.name, sa.MetaData(schema=old.tables.schema), autoload_with=old.engine
    )
    assert "hint" not in v1_outbox.c
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with old.engine.begin() as conn:
        conn.execute(
            v1_outbox.insert().values(
                org="acme",
                flow="export",
                entity="reg-1",
                generation=4,
                attempts=0,
                payload={"v": 1},
                created_at=now,
                marked_at=now,
                due_at=now,
            )
        )
    old.close()

    new = target.open()
    assert new.schema_version() == LATEST_VERSION
    (row,) = new.pending()
    assert (row.entity, row.generation, row.payload, row.hint) == ("reg-1", 4, {"v": 1}, None)
    assert new.mark("acme", "export", "reg-1", hint="updated") == 5
    (item,) = new.lease("w")
    assert item.hint == "updated"
    new.complete([item])
    new.log("acme", "export", "reg-1", "done", "upgraded fine")
    assert new.sync_log()[0].message == "upgraded fine"


def test_upgrade_from_version_2_keeps_rows_and_their_leases(target) -> None:
    old = target.open(migrate_to=2)
    assert old.schema_version() == 2
    old.mark_many("acme", "export", ["held", "waiting"])
    (held,) = old.lease("old-worker", limit=1, lease_seconds=300)
    old.put_link("acme", "export", "held", "Lead", "00Q1")
    old.close()

    new = target.open()
    assert new.schema_version() == LATEST_VERSION >= 3
    # the lease survived the upgrade: the new code leaves the held row to its holder
    assert [i.entity for i in new.lease("new-worker")] == ["waiting"]
    rows = {i.entity: i for i in new.pending()}
    assert rows["held"].lease_token == held.lease_token
    assert new.complete([held]).completed == (held.id,)  # and its holder still finishes it
    assert new.get_link("acme", "export", "held").target_id == "00Q1"


def test_a_version_2_eventsync_refuses_a_store_on_the_database_clock(target, monkeypatch) -> None:
    target.open(migrate_to=3)  # on the database clock
    from eventsync.store import schema

    monkeypatch.setattr(schema, "MIGRATIONS", schema.MIGRATIONS[:2])
    monkeypatch.setattr(schema, "LATEST_VERSION", 2)
    with pytest.raises(
        EventsyncError, match="schema version 3 but this eventsync knows only up to 2"
    ):
        target.open()


def test_a_newer_database_is_refused(target) -> None:
    store = target.open()
    with store.engine.begin() as conn:
        conn.execute(
            store.tables.schema_version.insert().values(
                version=LATEST_VERSION + 1,
                description="from the future",
                applied_at=dt.datetime.now(dt.UTC),
            )
        )
    with pytest.raises(EventsyncError, match="upgrade eventsync"):
        target.open()


def test_prefixes_isolate_stores_in_one_database(target) -> None:
    a = target.open(prefix="a_")
    b = target.open(prefix="b_")
    a.mark("acme", "export", "x")
    assert b.pending() == []
    assert a.tables.outbox.name == "a_outbox"


def test_sqlite_settings(tmp_path) -> None:
    store = StateStore.open(path=tmp_path / "s.db", busy_timeout=7)
    try:
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 7000
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
    finally:
        store.close()


def test_default_path_and_bad_urls(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    store = StateStore.open()
    store.close()
    assert (tmp_path / "eventsync-state.sqlite3").exists()
    with pytest.raises(ConfigurationError, match="unsupported database"):
        StateStore.open("mysql://x@y/z")
    with pytest.raises(ConfigurationError, match="in-memory"):
        StateStore.open("sqlite://")
    with pytest.raises(ConfigurationError, match="not both"):
        StateStore.open("sqlite:///x.db", path="y.db")
