"""What the processes of a deployment share through the state store, with real processes: a
receiver, a scheduler and two workers. The record counters on any process's /metrics add up
to the deployment's work, and the API budget is judged on the usage the workers' calls brought,
so a backfill in a process that made no calls itself pauses at its share."""

from __future__ import annotations

import json
import re
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from eventsync.engine import Engine
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import SandboxPair, free_port, start_sandboxes
from eventsync.store import StateStore

from .scale_out_harness import (
    BROKERS,
    EVENTSYNC,
    Role,
    Sandboxes,
    fresh_database,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ORG = "scale"
FLOW = "export_registrations"
SEEDED = 600  # more than one backfill chunk (500): the backfill checks its budget after one


@pytest.fixture
def site() -> Iterator[tuple[SandboxPair, Hooks, int]]:
    """The sandboxes with ``SEEDED`` registrations, notifying a port chosen here."""
    hooks = Hooks(make_plugin_manager(environ={}))
    port = free_port()
    pair = start_sandboxes(
        hooks,
        crm="salesforce",
        platform="hopin",
        org=ORG,
        endpoint=f"http://127.0.0.1:{port}",
        options={"hopin": {"seed_registrations": SEEDED}},
    )
    try:
        yield pair, hooks, port
    finally:
        pair.stop()


def _samples(url: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Every sample of ``name`` on the /metrics page at ``url``: (labels, value)."""
    text = requests.get(f"{url}/metrics", timeout=30).text
    found = []
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match:
            found.append((dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))), float(match[2])))
    return found


def _status(config: Path) -> dict:
    done = subprocess.run(
        [EVENTSYNC, "status", "--config", str(config), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=config.parent,
    )
    assert "Traceback" not in done.stderr, done.stderr
    return json.loads(done.stdout)


def test_counters_and_the_api_budget_are_the_deployments(
    site: tuple[SandboxPair, Hooks, int], tmp_path: Path
) -> None:
    pair, hooks, port = site
    world = Sandboxes(pair)
    queue = f"shared-{uuid.uuid4().hex[:8]}"
    url = f"http://127.0.0.1:{port}"
    with fresh_database() as database:
        config = write_config(
            tmp_path,
            pair,
            hooks,
            state=database,
            broker=BROKERS["redis"],
            listen=f"127.0.0.1:{port}",
            queue=queue,
            engine={"backfill_budget_share": 0.5},
        )
        workers = [
            Role("worker", config, tmp_path / f"worker-{n}.log", "--queues", queue)
            for n in range(2)
        ]
        roles = [
            Role("serve", config, tmp_path / "serve.log"),
            Role("scheduler", config, tmp_path / "scheduler.log"),
            *workers,
        ]
        store = StateStore.open(database)
        engine: Engine | None = None
        try:
            # The seeded registrations, polled by the scheduler, synced by both workers.
            wait_for(
                "every seeded registration synced",
                lambda: (
                    len(world.leads_by_email()) >= SEEDED
                    and not any(s.pending or s.leased for s in store.statuses(org=ORG))
                ),
                300,
                interval=1.0,
            )
            ran = [w for w in workers if f"batch of {ORG}/{FLOW}" in w.output()]
            assert len(ran) == 2, "the work did not spread over both workers"

            # The receiver ran no batch, yet its /metrics gives the deployment's counters: the
            # records both workers finished, as their sync-log lines say.
            logged: dict[str, int] = {}
            for line in store.sync_log(org=ORG, flow=FLOW, limit=100_000):
                logged[line.outcome] = logged.get(line.outcome, 0) + 1
            shared: dict[str, float] = {}
            for labels, value in _samples(url, "eventsync_deployment_records_total"):
                if (labels["org"], labels["flow"]) == (ORG, FLOW):
                    shared[labels["outcome"]] = shared.get(labels["outcome"], 0) + value
            assert shared["done"] >= SEEDED
            assert shared == {k: float(v) for k, v in logged.items() if k in shared}
            assert set(shared) >= {k for k in logged if k in ("done", "retry", "dead")}
            own = _samples(url, "eventsync_records_total")
            assert sum(value for _, value in own) == 0  # its own counter: this process's work

            # A backfill process connects; then the org's usage is one call short of the
            # backfill share (a reset of the counter, as a new day's allowance would be).
            engine = Engine.from_file(config, pollers=False, subscribe=False, run_executor=False)
            conn = engine.connection(ORG, "crm")
            hooks_of = engine.context(ORG).hooks
            seen = hooks_of.api_usage(conn)
            assert seen is None or seen.share < 0.5
            world.sf_admin("POST", "/counters/reset", {"api_usage": 99, "daily_limit": 200})
            # Real-time work on the workers takes the org past half its allowance.
            for n in range(30):
                world.register(f"late{n:02}@shared.example")
            [budget] = wait_for(
                "the workers' usage to reach the backfill process",
                lambda: [
                    b for b in engine.budgets(ORG) if b.system == "salesforce" and b.used >= 100
                ],
                120,
            )
            assert budget.limit == 200 and not budget.allows("backfill")
            # This process made no call since: its own reading alone would let it go on.
            assert hooks_of.api_usage(conn) == seen
            paused = engine.backfill(ORG, FLOW)
            assert not paused.finished and "paused" in paused.reason
            assert paused.marked == 500  # one chunk, then the budget

            # `eventsync status` and the receiver's /metrics show the deployment's figure.
            [row] = [b for b in _status(config)["budgets"] if b["system"] == "salesforce"]
            assert row["used"] >= 100 and row["limit"] == 200 and "backfills" in row["state"]
            [(_, used)] = [
                (labels, value)
                for labels, value in _samples(url, "eventsync_api_calls_used")
                if labels == {"org": ORG, "system": "salesforce"}
            ]
            assert used >= 100
        finally:
            if engine is not None:
                engine.close()
            store.close()
            for role in reversed(roles):
                role.stop()
