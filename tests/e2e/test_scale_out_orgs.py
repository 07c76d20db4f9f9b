"""Many organisations in one scale-out deployment: 50 generated orgs against sandboxes of their
own, three worker processes and a scheduler; one org's Salesforce is down for the whole test
(every call a 503) and every other org's records still arrive, exactly once."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from eventsync.distributed.fleet import fleet_config_files, start_fleet, stop_fleet
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import SandboxPair, write_private
from eventsync.store import StateStore

from .scale_out_harness import BROKERS, ENGINE, EVENTSYNC, Role, Sandboxes, fresh_database, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ORGS = 50
PER_ORG = 6
DOWN = "org07"


@pytest.fixture
def fleet() -> Iterator[list[SandboxPair]]:
    """A Salesforce and a Hopin sandbox for each of ``ORGS`` organisations."""
    pairs = start_fleet(
        Hooks(make_plugin_manager(environ={})), ORGS, crm="salesforce", platform="hopin"
    )
    try:
        yield pairs
    finally:
        stop_fleet(pairs)


def test_one_orgs_outage_leaves_fifty_others_flowing(
    fleet: list[SandboxPair], tmp_path: Path
) -> None:
    worlds = {pair.org: Sandboxes(pair) for pair in fleet}
    down = worlds[DOWN]
    down.sf_admin("POST", "/faults", {"endpoint": "*", "status": 503})
    queue = f"scale-{uuid.uuid4().hex[:8]}"
    with fresh_database() as database:
        text, secrets = fleet_config_files(
            fleet,
            engine={
                "state": database,
                "broker": BROKERS["redis"],
                "secrets_file": str(tmp_path / "fleet.env"),
                **ENGINE,
                "max_attempts": 1000,  # the org that is down retries for the whole test
            },
            queues={pair.org: queue for pair in fleet},
        )
        config = tmp_path / "eventsync.toml"
        config.write_text(text)
        write_private(tmp_path / "fleet.env", secrets)
        store = StateStore.open(database)
        expected: dict[str, set[str]] = {}
        for org, world in worlds.items():
            emails = [f"{org}-{n}@fleet.example" for n in range(PER_ORG)]
            ids = [world.register(email) for email in emails]
            store.mark_many(org, "export_registrations", ids, hint="test")
            expected[org] = set(emails)
        roles = [Role("scheduler", config, tmp_path / "scheduler.log", "--no-pollers")]
        roles += [
            Role("worker", config, tmp_path / f"worker-{n}.log", "--queues", queue)
            for n in range(3)
        ]
        try:
            healthy = [org for org in worlds if org != DOWN]

            def arrived() -> tuple[int, int]:
                done = sum(len(worlds[org].leads_by_email()) >= PER_ORG for org in healthy)
                return done, len(healthy)

            wait_for("every healthy org's records", lambda: arrived()[0] == len(healthy), 420, 1.0)
            for org in healthy:
                assert worlds[org].leads_by_email() == dict.fromkeys(expected[org], 1), org
            # The org that is down keeps its rows, retrying; nothing of it is lost or written.
            # (A row is leased for a moment between a lead arriving and its row completing, and
            # the down org's rows while they are tried: wait for the steady state, then judge.)
            wait_for("the down org's rows to be retried", lambda: store.retrying(org=DOWN), 120)
            [status] = store.statuses(org=DOWN)
            assert status.pending + status.leased == PER_ORG
            assert store.dead_letters(org=DOWN) == []
            assert _leads(down) == 0
            assert all(role.alive() for role in roles)

            # `eventsync status` reads the shared store: every worker's work, in one report.
            def settled() -> dict | None:
                report = _status(config)
                rows = {row["org"]: row for row in report["flows"]}
                healthy_done = all(
                    org in rows and rows[org]["pending"] == 0 and rows[org]["leased"] == 0
                    for org in healthy
                )
                down_retrying = rows.get(DOWN, {}).get("retrying", 0) >= 1
                return report if healthy_done and down_retrying else None

            report = wait_for("a status report of the steady state", settled, 120, 1.0)
            rows = {row["org"]: row for row in report["flows"]}
            assert set(rows) == set(worlds)
            assert rows[DOWN]["pending"] + rows[DOWN]["leased"] == PER_ORG
            assert all(rows[org]["last_success_at"] for org in healthy)
        finally:
            for role in roles:
                role.stop()
            store.close()


def _status(config: Path) -> dict:
    """``eventsync status --json`` of the deployment, run as a separate process."""
    done = subprocess.run(
        [EVENTSYNC, "status", "--json", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=config.parent,
    )
    assert done.returncode in (0, 1), done.stderr
    return json.loads(done.stdout)


def _leads(world: Sandboxes) -> int:
    """Leads in a sandbox whose API is failing (its admin API still answers)."""
    try:
        return len(world.leads_by_email())
    except requests.RequestException:
        return -1
