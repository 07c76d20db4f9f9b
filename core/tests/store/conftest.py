"""Fixtures: every store test runs on SQLite and on PostgreSQL, each in its own database space.

SQLite: a fresh file under ``tmp_path``. PostgreSQL: a fresh schema named after the test in the
database of ``EVENTSYNC_TEST_POSTGRES_URL`` (default the local ``test`` database), dropped after
the test. An unreachable PostgreSQL server FAILS the tests: CI starts the server.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from eventsync.store import StateStore

PG_URL = os.environ.get(
    "EVENTSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _pg_engine() -> sa.engine.Engine:
    engine = sa.create_engine(
        PG_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 5}
    )
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure to reach it is the same verdict
        engine.dispose()
        pytest.fail(
            f"PostgreSQL is not reachable at {PG_URL} ({type(exc).__name__}: {exc}); "
            "start it (the CI script does) or set EVENTSYNC_TEST_POSTGRES_URL",
            pytrace=False,
        )
    return engine


class Target:
    """Where a test's store lives; ``open()`` opens (another) store on the same place."""

    def __init__(self, backend: str, url: str | None, path: str | None, schema: str | None):
        self.backend = backend
        self.url = url
        self.path = path
        self.schema = schema
        self.opened: list[StateStore] = []

    def open(self, **kw: Any) -> StateStore:
        store = StateStore.open(self.url, path=self.path, schema=self.schema, **kw)
        self.opened.append(store)
        return store

    def argv(self) -> list[str]:
        """Command-line arguments for the helper subprocesses (``_proc.py``)."""
        args = ["--url", self.url] if self.url else ["--path", str(self.path)]
        return args + (["--schema", self.schema] if self.schema else [])


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request: pytest.FixtureRequest, tmp_path: Any) -> Iterator[Target]:
    if request.param == "sqlite":
        t = Target("sqlite", None, str(tmp_path / "state.sqlite3"), None)
        yield t
        for store in t.opened:
            store.close()
        return
    engine = _pg_engine()
    schema = f"es_test_{uuid.uuid4().hex[:12]}"
    t = Target("postgresql", PG_URL, None, schema)
    try:
        yield t
    finally:
        for store in t.opened:
            store.close()
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        engine.dispose()


@pytest.fixture
def store(target: Target) -> StateStore:
    return target.open()


class FakeClock:
    """A settable clock for the store (aware UTC)."""

    def __init__(self) -> None:
        self.now = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def clocked_store(target: Target, clock: FakeClock) -> Callable[..., StateStore]:
    def factory(**kw: Any) -> StateStore:
        return target.open(clock=clock, **kw)

    return factory
