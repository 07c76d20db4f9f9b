"""Scale-out on Celery with real processes: ``serve``, three ``worker``s and a ``scheduler``
against the sandboxes, PostgreSQL and the real Redis and RabbitMQ (docs/scale-out.md).

A burst of Hopin registrations reaches the receiver; every one becomes exactly one Lead in
Salesforce while a worker is SIGKILLed mid-stream and every worker's broker connection is cut
(the workers reach the broker through a relay the test controls).
"""

from __future__ import annotations

import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import SandboxPair, free_port, start_sandboxes
from eventsync.store import StateStore
from eventsync_salesforce.sandbox.wiring import TICKET_CODE_FIELD

from .scale_out_harness import (
    BROKERS,
    Relay,
    Role,
    Sandboxes,
    accepted_notifications,
    fresh_database,
    lease_holder_pids,
    wait_for,
    write_config,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ORG = "scale"
BURST = 150


@pytest.fixture
def database() -> Iterator[str]:
    """A PostgreSQL database of the test's own."""
    with fresh_database() as url:
        yield url


@pytest.fixture
def deployment(tmp_path: Path) -> Iterator[tuple[SandboxPair, Hooks, int]]:
    """The sandboxes, notifying a receiver port chosen here."""
    hooks = Hooks(make_plugin_manager(environ={}))
    port = free_port()
    pair = start_sandboxes(
        hooks,
        crm="salesforce",
        platform="hopin",
        org=ORG,
        endpoint=f"http://127.0.0.1:{port}",
        options={"hopin": {"delivery_backoff": 0.2, "delivery_backoff_max": 2.0}},
    )
    try:
        yield pair, hooks, port
    finally:
        pair.stop()


def _idle(store: StateStore) -> bool:
    return not any(s.pending or s.leased for s in store.statuses(org=ORG))


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_burst_exactly_once_through_kills_and_cuts(
    broker: str,
    database: str,
    deployment: tuple[SandboxPair, Hooks, int],
    tmp_path: Path,
) -> None:
    pair, hooks, port = deployment
    world = Sandboxes(pair)
    world.sf_admin(
        "POST",
        "/seed",
        {"object": "Campaign", "records": [
            {"Name": "Scale", TICKET_CODE_FIELD: world.hopin["ticket_integration_code"]}]},
    )  # fmt: skip
    url = BROKERS[broker]
    host, _, rest = url.split("@")[-1].split("://")[-1].partition(":")
    relay = Relay((host, int(rest.partition("/")[0])))
    queue = f"scale-{uuid.uuid4().hex[:8]}"
    common = {"state": database, "listen": f"127.0.0.1:{port}", "queue": queue}
    # Pollers slow: the burst travels through the receiver; the poller is the safety net.
    common = {**common, "poll_interval": 30.0}
    config = write_config(tmp_path, pair, hooks, broker=url, **common)
    relayed = write_config(
        tmp_path, pair, hooks, broker=relay.url(url), name="worker.toml", **common
    )
    roles: list[Role] = []
    try:
        scheduler = Role("scheduler", config, tmp_path / "scheduler.log", "--lock-seconds", "6")
        roles.append(scheduler)
        wait_for(
            "the scheduler to be active", lambda: "scheduler: active" in scheduler.output(), 90
        )
        serve = Role("serve", config, tmp_path / "serve.log")
        roles.append(serve)
        wait_for("the receiver to listen", lambda: "receiving on" in serve.output(), 90)
        workers = [
            Role("worker", relayed, tmp_path / f"worker-{n}.log", "--queues", queue)
            for n in range(3)
        ]
        roles.extend(workers)
        emails = [f"p{n:04}@burst.example" for n in range(BURST)]
        for email in emails[: BURST // 3]:
            world.register(email)
        store = StateStore.open(database)
        # A worker killed while it holds leases: its rows come back when the leases end.
        by_pid = {w.proc.pid: w for w in workers}
        holders = wait_for(
            "a worker holding leases", lambda: lease_holder_pids(database) & set(by_pid), 120, 0.02
        )
        victim = by_pid[min(holders)]
        victim.signal(signal.SIGKILL)
        victim.wait(30)
        for email in emails[BURST // 3 : 2 * BURST // 3]:
            world.register(email)
        # Every worker's broker connection cut at once, mid-stream.
        assert relay.cut() >= 2
        for email in emails[2 * BURST // 3 :]:
            world.register(email)
        wait_for(
            "every registration in Salesforce",
            lambda: len(world.leads_by_email()) >= BURST and _idle(store),
            300,
            interval=1.0,
        )
        leads = world.leads_by_email()
        assert {e: n for e, n in leads.items() if n != 1} == {}
        assert set(leads) == set(emails)
        assert store.dead_letters(org=ORG) == []
        assert all(w.alive() for w in workers if w is not victim), "a worker died from the cut"
        assert accepted_notifications(f"http://127.0.0.1:{port}") >= BURST / 2
        store.close()
    finally:
        for role in reversed(roles):
            role.stop()
        relay.close()


@contextmanager
def _batch_in_flight(
    database: str,
    deployment: tuple[SandboxPair, Hooks, int],
    directory: Path,
    latency: float,
    count: int,
    *worker_args: str,
) -> Iterator[tuple[Role, StateStore]]:
    """A worker (with ``worker_args``) holding a batch of ``count`` registrations while
    Salesforce answers each write after ``latency`` seconds; the store of the deployment."""
    pair, hooks, port = deployment
    world = Sandboxes(pair)
    world.sf_admin("POST", "/faults", {"endpoint": "collections", "latency": latency, "status": 0})
    queue = f"scale-{uuid.uuid4().hex[:8]}"
    config = write_config(
        directory,
        pair,
        hooks,
        state=database,
        broker=BROKERS["redis"],
        listen=f"127.0.0.1:{port}",
        queue=queue,
        engine={"lease_seconds": 120.0},
    )
    scheduler = Role("scheduler", config, directory / "scheduler.log", "--no-pollers")
    worker = Role("worker", config, directory / "worker.log", "--queues", queue, *worker_args)
    store = StateStore.open(database)
    try:
        wait_for(
            "the scheduler to be active", lambda: "scheduler: active" in scheduler.output(), 90
        )
        ids = [world.register(f"t{n:03}@term.example") for n in range(count)]
        store.mark_many(ORG, "export_registrations", ids, hint="test")
        wait_for("a batch in flight", lambda: any(s.leased for s in store.statuses(org=ORG)), 120)
        yield worker, store
    finally:
        worker.stop()
        scheduler.stop()
        store.close()


def test_sigterm_finishes_or_releases_the_batch(
    database: str, deployment: tuple[SandboxPair, Hooks, int], tmp_path: Path
) -> None:
    # Salesforce answers slowly: the batch is still in flight when SIGTERM arrives.
    with _batch_in_flight(database, deployment, tmp_path, 2.0, 40) as (worker, store):
        worker.signal(signal.SIGTERM)
        assert worker.wait(120) == 0, worker.output()[-3000:]
        # Its leases (120 s) did not simply run out: the batch was recorded or released.
        assert not any(s.leased for s in store.statuses(org=ORG)), store.statuses(org=ORG)


def test_a_batch_outlasting_the_stop_timeout_is_released(
    database: str, deployment: tuple[SandboxPair, Hooks, int], tmp_path: Path
) -> None:
    # Salesforce answers after a minute: far longer than the worker's stop timeout.
    batch = _batch_in_flight(database, deployment, tmp_path, 60.0, 10, "--stop-timeout", "1")
    with batch as (worker, store):
        worker.signal(signal.SIGTERM)
        # It ends well before Salesforce answers, exit 1: the batch was released, not finished.
        assert worker.wait(40) == 1, worker.output()[-3000:]
        assert "released 10 leased rows" in worker.output()
        # Its rows are due again at once, not after the 120 s lease.
        [status] = store.statuses(org=ORG, flow="export_registrations")
        assert (status.leased, status.pending) == (0, 10), status
        assert store.dead_letters(org=ORG) == []
