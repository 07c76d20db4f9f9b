"""The scale-out roles' guards and the scheduler lock, with real processes: SQLite and a
missing broker refused (exit 2, naming the fix), two schedulers with one active and a standby
that takes over, and per-org concurrency held across worker processes."""

from __future__ import annotations

import datetime as dt
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from eventsync.config import load_config
from eventsync.distributed import Dispatcher, make_celery
from eventsync.distributed.fleet import lease_holders
from eventsync.distributed.scheduler import LOCK_SCOPE
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

ORG = "scale"


class Site:
    """The sandboxes, the receiver port they notify and the test's directory."""

    def __init__(self, pair: SandboxPair, hooks: Hooks, port: int, directory: Path) -> None:
        self.pair, self.hooks, self.port, self.directory = pair, hooks, port, directory

    def config(self, state: str, broker: str, queue: str = "unused", **engine: Any) -> Path:
        """A config file for the sandboxes with these scale-out settings."""
        return write_config(
            self.directory,
            self.pair,
            self.hooks,
            state=state,
            broker=broker,
            listen=f"127.0.0.1:{self.port}",
            queue=queue,
            engine=engine,
        )


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The sandboxes, notifying a port chosen here (nobody listens unless a test serves)."""
    hooks = Hooks(make_plugin_manager(environ={}))
    port = free_port()
    pair = start_sandboxes(
        hooks, crm="salesforce", platform="hopin", org=ORG, endpoint=f"http://127.0.0.1:{port}"
    )
    try:
        yield Site(pair, hooks, port, tmp_path)
    finally:
        pair.stop()


def _run(role: str, config: Path) -> subprocess.CompletedProcess[str]:
    """``eventsync ROLE --config CONFIG`` run to its end."""
    return subprocess.run(
        [EVENTSYNC, role, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=config.parent,
    )


@pytest.mark.parametrize("role", ["serve", "worker", "scheduler"])
def test_multi_process_roles_refuse_sqlite_and_a_missing_broker(
    role: str, site: Site, tmp_path: Path
) -> None:
    config = site.config(state=str(tmp_path / "state.sqlite"), broker="")
    done = _run(role, config)
    assert done.returncode == 2, done.stderr
    assert "SQLite cannot do" in done.stderr and "PostgreSQL URL" in done.stderr
    assert "$.engine.broker" in done.stderr and "redis://" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "state.sqlite").exists()


def test_an_unsupported_broker_url_is_a_config_error(site: Site) -> None:
    config = site.config(
        state="postgresql+psycopg://nobody@127.0.0.1:1/none", broker="sqs://secret@queue"
    )
    done = _run("worker", config)
    assert done.returncode == 2, done.stderr
    assert "$.engine.broker: 'sqs://...' is not a broker URL" in done.stderr
    assert "secret" not in done.stderr


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_two_schedulers_one_active_and_the_standby_takes_over(site: Site, tmp_path: Path) -> None:
    with fresh_database() as database:
        config = site.config(database, BROKERS["redis"], f"scale-{uuid.uuid4().hex[:8]}")
        first = Role("scheduler", config, tmp_path / "first.log", "--lock-seconds", "3")
        second: Role | None = None
        try:
            wait_for(
                "the first scheduler to be active",
                lambda: "scheduler: active" in first.output(),
                90,
            )
            second = Role("scheduler", config, tmp_path / "second.log", "--lock-seconds", "3")
            standby = second
            wait_for("the standby", lambda: "standby" in standby.output(), 90)
            # The lock is renewed over several of its leases, and stays the first one's.
            holder, until = wait_for("the lock", lambda: _lock(database), 30)
            assert holder.endswith(f":{first.proc.pid}")
            wait_for(
                "several renewals",
                lambda: (_lock(database) or ("", until))[1] > until + dt.timedelta(seconds=9),
                60,
            )
            assert _lock(database)[0] == holder
            assert "scheduler: active" not in standby.output()
            first.signal(signal.SIGTERM)
            assert first.wait(60) == 0
            wait_for(
                "the standby to take over", lambda: "scheduler: active" in standby.output(), 60
            )
            holder, _ = wait_for("the lock to change hands", lambda: _lock(database), 30)
            assert holder.endswith(f":{standby.proc.pid}")
        finally:
            first.stop()
            if second is not None:
                second.stop()


def _lock(database: str) -> tuple[str, dt.datetime] | None:
    """The scheduler lock's holder and the end of its lease (None: nobody holds it)."""
    engine = sa.create_engine(database)
    try:
        with engine.connect() as conn:
            row = conn.exec_driver_sql(
                "SELECT holder, expires_at FROM claims WHERE scope = %(scope)s",
                {"scope": LOCK_SCOPE},
            ).first()
            return (str(row[0]), row[1]) if row else None
    finally:
        engine.dispose()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_per_org_concurrency_holds_across_worker_processes(site: Site, tmp_path: Path) -> None:
    world = Sandboxes(site.pair)
    # Salesforce answers slowly, so batches overlap unless the limit keeps them apart.
    world.sf_admin("POST", "/faults", {"endpoint": "collections", "latency": 0.3, "status": 0})
    queue = f"scale-{uuid.uuid4().hex[:8]}"
    with fresh_database() as database:
        config = site.config(database, BROKERS["rabbitmq"], queue, org_concurrency=1, batch_size=5)
        store = StateStore.open(database)
        ids = [world.register(f"c{n:03}@limit.example") for n in range(60)]
        store.mark_many(ORG, "export_registrations", ids, hint="test")
        scheduler = Role("scheduler", config, tmp_path / "scheduler.log", "--no-pollers")
        # One thread each: a drain sends its pair on while its own message is unacknowledged,
        # so the next drain runs in another process (not by chance of which one asks first).
        workers = [
            Role(
                "worker", config, tmp_path / f"worker-{n}.log", "--queues", queue,
                "--concurrency", "1",
            )
            for n in range(3)
        ]  # fmt: skip
        most, seen = 0, set()
        try:
            deadline = time.monotonic() + 240
            while any(s.pending or s.leased for s in store.statuses(org=ORG)):
                assert time.monotonic() < deadline, "the backlog did not drain"
                holders = lease_holders(database)
                most = max(most, len(holders))
                seen |= holders
                time.sleep(0.02)
            assert len(world.leads_by_email()) == 60
        finally:
            for role in (*workers, scheduler):
                role.stop()
            store.close()
    assert most == 1, f"{most} batches of one org ran at once with org_concurrency = 1"
    assert len({h.rpartition(":")[2] for h in seen}) >= 2, "only one worker process took work"


#: The Salesforce endpoint categories a batch's writes go through.
WRITES = ("collections", "composite", "sobject")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_batch_slower_than_a_lease_keeps_its_org_slot(site: Site, tmp_path: Path) -> None:
    world = Sandboxes(site.pair)
    # Every write takes 4.5 s, longer than the 3 s lease: the running batch's slot must be
    # renewed while it writes, or the other worker's drain would take it and write beside it.
    world.sf_admin("POST", "/faults", {"endpoint": "collections", "latency": 4.5, "status": 0})
    queue = f"slots-{uuid.uuid4().hex[:8]}"
    with fresh_database() as database:
        config = site.config(
            database, BROKERS["redis"], queue, org_concurrency=1, batch_size=4, lease_seconds=3.0
        )
        store = StateStore.open(database)
        ids = [world.register(f"s{n:03}@slot.example") for n in range(12)]
        workers = [
            Role("worker", config, tmp_path / f"worker-{n}.log", "--queues", queue)
            for n in range(2)
        ]
        roles = list(workers)
        most = 0
        try:
            for worker in workers:  # both ready before the work exists: either can take it
                wait_for(
                    "a worker ready", lambda w=worker: "eventsync worker: ready" in w.output(), 120
                )
            world.sf_admin("POST", "/counters/reset", {"api_usage": None})
            store.mark_many(ORG, "export_registrations", ids, hint="test")
            roles.append(Role("scheduler", config, tmp_path / "scheduler.log", "--no-pollers"))
            deadline = time.monotonic() + 240
            while any(s.pending or s.leased for s in store.statuses(org=ORG)):
                assert time.monotonic() < deadline, "the backlog did not drain"
                most = max(most, len(lease_holders(database)))
                time.sleep(0.02)
            assert len(world.leads_by_email()) == 12
            assert store.dead_letters(org=ORG) == []
            peak = world.sf_admin("GET", "/counters")["peak_in_flight"]
        finally:
            for role in reversed(roles):
                role.stop()
            store.close()
    # The sandbox saw one write at a time, and the store one batch's leases at a time.
    assert max(peak.get(e, 0) for e in WRITES) == 1, peak
    assert most == 1, f"{most} batches of one org ran at once with org_concurrency = 1"


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_celery_inspect_sees_the_worker_and_its_drain_task(site: Site, tmp_path: Path) -> None:
    celery = str(Path(EVENTSYNC).with_name("celery"))
    with fresh_database() as database:
        queue = f"scale-{uuid.uuid4().hex[:8]}"
        config = site.config(database, BROKERS["rabbitmq"], queue)
        worker = Role("worker", config, tmp_path / "worker.log", "--queues", queue)
        try:
            wait_for("the worker", lambda: "eventsync worker: ready" in worker.output(), 90)
            name = f"eventsync-worker-{worker.proc.pid}@"
            inspect = [celery, "--broker", BROKERS["rabbitmq"], "inspect", "--timeout", "10"]

            def answer(*args: str) -> str:
                done = subprocess.run([*inspect, *args], capture_output=True, text=True, timeout=60)
                return done.stdout if done.returncode == 0 and name in done.stdout else ""

            assert "pong" in wait_for("a pong", lambda: answer("ping"), 60, 1.0)
            assert "eventsync.drain" in answer("registered")
            assert queue in answer("active_queues")
        finally:
            worker.stop()


#: The worker's line once it described its flows' objects (a positive count).
WARMED = r"described [1-9]\d* CRM objects of the flows this worker serves"
#: The Salesforce endpoint categories of a describe.
DESCRIBES = ("describe", "describe_global")


def _describes(world: Sandboxes) -> dict[str, int]:
    by = world.sf_admin("GET", "/counters")["by_endpoint"]
    return {e: by.get(e, 0) for e in DESCRIBES}


@contextmanager
def _worker_starting(site: Site, tmp_path: Path, fault: dict[str, Any]) -> Iterator[Any]:
    """A worker starting while Salesforce's global describe has ``fault``; yields the
    sandboxes, the store, the worker and a function that registers someone, marks the
    registration and sends its drain (from here: a scheduler would describe at its start)."""
    world = Sandboxes(site.pair)
    world.sf_admin("POST", "/faults", fault)
    queue = f"warm-{uuid.uuid4().hex[:8]}"
    with fresh_database() as database:
        config = site.config(database, BROKERS["redis"], queue)
        loaded = load_config(config)
        store = StateStore.open(database)
        worker = Role("worker", config, tmp_path / "worker.log", "--queues", queue)

        def sync(email: str) -> None:
            store.mark_many(ORG, "export_registrations", [world.register(email)])
            assert Dispatcher(make_celery(loaded), loaded).send(ORG, "export_registrations")
            wait_for("the Lead", lambda: email in world.leads_by_email(), 120)

        try:
            yield world, worker, sync
        finally:
            worker.stop()
            store.close()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_worker_describes_its_flows_objects_at_start_without_waiting(
    site: Site, tmp_path: Path
) -> None:
    # The global describe answers after 20 s: the worker must be ready long before that.
    slow = {"endpoint": "describe_global", "latency": 20.0, "status": 0, "times": 1}
    with _worker_starting(site, tmp_path, slow) as (world, worker, sync):
        wait_for("the worker", lambda: "eventsync worker: ready" in worker.output(), 120)

        # Ready while the describe is still under way, unanswered: the warming thread may send
        # it a moment after the worker says ready, and it takes 20 s to answer.
        def describing() -> dict | None:
            counters = world.sf_admin("GET", "/counters")
            return counters if counters["peak_in_flight"].get("describe_global") == 1 else None

        counters = wait_for("the describe under way", describing, 15)
        assert counters["by_endpoint"].get("describe_global", 0) == 0, counters
        assert "CRM objects of the flows" not in worker.output()
        wait_for("the describes", lambda: re.search(WARMED, worker.output()), 120)
        assert _describes(world)["describe"] >= 1
        world.sf_admin("POST", "/counters/reset", {"api_usage": None})
        sync("w@warm.example")
        assert _describes(world) == {"describe": 0, "describe_global": 0}


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_describe_failing_at_a_workers_start_is_logged_and_the_worker_goes_on(
    site: Site, tmp_path: Path
) -> None:
    refused = {"endpoint": "describe_global", "status": 503}
    with _worker_starting(site, tmp_path, refused) as (world, worker, sync):
        wait_for("the warning", lambda: "cannot describe" in worker.output(), 120)
        assert f"for {ORG}: " in worker.output() and not re.search(WARMED, worker.output())
        wait_for("the worker", lambda: "eventsync worker: ready" in worker.output(), 120)
        assert worker.alive()
        world.sf_admin("DELETE", "/faults")
        sync("f@warm.example")
        assert _describes(world)["describe"] >= 1  # the first push described
