"""A backfill into HubSpot SIGKILLed while it runs, then run again: every registration becomes
exactly one contact. ``eventsync backfill`` runs as a real process with the configuration
``eventsync init --sandbox`` would write; the sandboxes run in this process. HubSpot answers
every upsert a little late (the sandbox's per-endpoint latency), so the kill lands mid-way.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import free_port, sandbox_config_files, start_sandboxes, write_private
from eventsync.store import StateStore
from eventsync.waiting import wait_until

EVENTSYNC = str(Path(sys.executable).with_name("eventsync"))
PG_URL = os.environ.get(
    "EVENTSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REGISTRATIONS = 240
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(params=["sqlite", "postgres"])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A SQLite file, or a PostgreSQL schema of its own reached by URL (search_path)."""
    if request.param == "sqlite":
        yield str(tmp_path / "state.sqlite3")
        return
    schema = f"kill_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(PG_URL)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        admin.dispose()


def backfill(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """``eventsync backfill export_registrations`` as a process of its own."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            [EVENTSYNC, "backfill", "export_registrations", "--config", str(config)],
            cwd=config.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200"},
        )


def test_a_backfill_killed_mid_way_and_run_again_writes_every_registration_once(state, tmp_path):
    hooks = Hooks(make_plugin_manager(environ={}))
    pair = start_sandboxes(
        hooks,
        crm="hubspot",
        platform="hopin",
        org="kill",
        endpoint=f"http://127.0.0.1:{free_port()}",
        triggers=False,
        registrations=REGISTRATIONS,
        options={"hubspot": {"faults": [{"endpoint": "upsert", "status": 0, "latency": 0.6}]}},
    )
    try:
        info = pair.info()
        text, secrets = sandbox_config_files(
            info,
            hooks=hooks,
            secrets_file="sandbox.env",
            engine={"state": state, "batch_size": 20, "workers": 2, "lease_seconds": 3.0},
        )
        config = tmp_path / "eventsync.toml"
        config.write_text(text, encoding="utf-8")
        write_private(tmp_path / "sandbox.env", secrets)
        admin_url = info["hubspot"]["admin_url"]

        def contacts() -> list[dict[str, Any]]:
            return requests.get(f"{admin_url}/objects/contacts", timeout=30).json()["results"]

        first = backfill(config, tmp_path / "backfill.log")
        wait_until("some contacts written", lambda: len(contacts()) >= 40, timeout=120)
        assert first.poll() is None, "the backfill ended before it could be killed"
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        written = len(contacts())
        assert written < REGISTRATIONS, "the kill came too late to interrupt anything"

        second = backfill(config, tmp_path / "backfill.log")
        assert second.wait(300) == 0, (tmp_path / "backfill.log").read_text()[-3000:]
        emails = Counter(c["properties"]["email"] for c in contacts())
        assert len(emails) == REGISTRATIONS and set(emails.values()) == {1}, emails.most_common(3)
        calls = requests.get(f"{admin_url}/counters", timeout=30).json()["calls"]
        # An upsert per batch, or (update policies in the mapping) a search, then a create.
        upserts = sum(calls.get(op, 0) for op in ("upsert", "create", "update"))
        store = StateStore.open(
            state if "://" in state else None, path=None if "://" in state else state
        )
        try:
            assert store.dead_letter_count() == 0
        finally:
            store.close()
        # Batches of 20: besides one call per batch, only what the kill interrupted (at most
        # one batch per worker) was sent again, with a little room for retried claims.
        assert upserts <= REGISTRATIONS // 20 + 2 + 2, upserts
    finally:
        pair.stop()
