"""Scale-out benchmark: Celery worker processes draining a shared outbox (docs/scale-out.md).

Everything runs on this machine: the sandboxes in this process, PostgreSQL and Redis as the
machine runs them, and `eventsync scheduler` plus N `eventsync worker` processes (2 threads
each) as children. Printed per latency profile (none, then the sandboxes' realistic one), all
measured in one run:

* throughput: a backlog spread over 8 orgs (each with sandboxes of its own) drained by 1, 2
  and 4 worker processes, twice each: by new processes (which sign in to every org they meet
  within the measured time) and again by the same processes (the steady state of long-running
  workers); records per second and the ratio to 1 worker (targets: >= 1.8x at 2, >= 3x at 4
  while the work is latency-bound; without latency the machine's cores bound it), Salesforce
  API calls per 1,000 records, the machine's idle CPU share and load average during the
  second round (other work on a shared machine takes the cores the workers would use), and
  the CPU each role's processes spent per record in that round (``--cpu``: the workers, the
  scheduler, this process's sandboxes and the PostgreSQL backends of the benchmark's database);
* real time: a burst of registrations delivered as webhooks to `eventsync serve`, 4 workers:
  creation -> Lead visible, p50 / p95 (50 ms resolution);
* fairness: 50 orgs, one of them with a backlog 10x the others', 4 workers: when each small
  org's last record landed (p50 / p95 / max, seconds from the start) against the big org's.

    .venv/bin/python bench/scale_out.py [--records 1600] [--latency both|none|realistic]
        [--only throughput|burst|fairness] [--cpu]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path

import _latency
import psutil
import requests
from _watch import Watcher
from eventsync.distributed.fleet import (
    fleet_config_files,
    scratch_database,
    start_fleet,
    stop_fleet,
)
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import SandboxPair, free_port, write_private
from eventsync.store import StateStore

EVENTSYNC = str(Path(sys.executable).with_name("eventsync"))
PG_URL = os.environ.get(
    "EVENTSYNC_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BROKER = os.environ.get("EVENTSYNC_BENCH_BROKER", "redis://127.0.0.1:6379/0")
FLOW = "export_registrations"
SYSTEMS = {"crm": "salesforce", "platform": "hopin"}


def percentile(values: Sequence[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def database() -> AbstractContextManager[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    return scratch_database(PG_URL, "bench")


class Deployment:
    """A config for ``pairs`` and the role processes started from it."""

    def __init__(self, pairs: list[SandboxPair], state: str, listen: str | None = None) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="eventsync-bench-scale-"))
        self.queue = f"bench-{uuid.uuid4().hex[:8]}"
        engine = {
            "state": state,
            "broker": BROKER,
            "secrets_file": str(self.dir / "fleet.env"),
            "workers": 2,
            "batch_size": 50,
            "org_concurrency": 4,
            "sweep_interval": 0.5,
        }
        if listen:
            engine["listen"] = listen
        text, secrets = fleet_config_files(
            pairs, engine=engine, poll_interval=300.0, queues={p.org: self.queue for p in pairs}
        )
        self.config = self.dir / "eventsync.toml"
        self.config.write_text(text)
        write_private(self.dir / "fleet.env", secrets)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.roles: dict[int, str] = {}
        self.database = sa_url_database(state)

    def start(self, role: str, *args: str, ready: str) -> subprocess.Popen[bytes]:
        """Start ``eventsync ROLE`` and wait until its log shows ``ready``."""
        log = self.dir / f"{role}-{len(self.procs)}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [EVENTSYNC, role, "--config", str(self.config), *args],
                cwd=self.dir,
                stdout=out,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        self.procs.append(proc)
        self.roles[proc.pid] = role
        deadline = time.monotonic() + 120
        while ready not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{role} did not start:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        return proc

    def workers(self, count: int) -> list[subprocess.Popen[bytes]]:
        """Start ``count`` worker processes on the deployment's queue."""
        return [
            self.start("worker", "--queues", self.queue, ready="eventsync worker: ready")
            for _ in range(count)
        ]

    def stop(self, procs: Sequence[subprocess.Popen[bytes]] | None = None) -> None:
        """SIGTERM the processes (all by default) and wait for them."""
        chosen = list(procs if procs is not None else self.procs)
        for proc in chosen:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in chosen:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
            if proc in self.procs:
                self.procs.remove(proc)


def sa_url_database(url: str) -> str:
    """The database name of a SQLAlchemy URL."""
    import sqlalchemy as sa

    return str(sa.engine.make_url(url).database)


class RoleCPU:
    """CPU seconds (user + system) spent so far by each role of a deployment: its worker and
    scheduler processes, this process (the sandboxes) and the PostgreSQL backends connected
    to its database (other databases' backends, a shared machine's, are left out)."""

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment

    def _processes(self) -> dict[int, tuple[str, psutil.Process]]:
        found = {os.getpid(): ("sandboxes", psutil.Process())}
        for proc in self.deployment.procs:
            if proc.poll() is None:
                found[proc.pid] = (self.deployment.roles[proc.pid], psutil.Process(proc.pid))
        for proc in psutil.process_iter(["name", "cmdline"]):
            cmdline = " ".join(proc.info["cmdline"] or ())
            if proc.info["name"] == "postgres" and f" {self.deployment.database} " in cmdline:
                found[proc.pid] = ("postgres", proc)
        return found

    def snapshot(self) -> dict[int, tuple[str, float]]:
        """CPU seconds by process id, with its role."""
        taken = {}
        for pid, (role, proc) in self._processes().items():
            try:
                times = proc.cpu_times()
            except psutil.Error:  # ended meanwhile
                continue
            taken[pid] = (role, times.user + times.system)
        return taken

    @staticmethod
    def spent(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> dict:
        """CPU seconds by role between two snapshots (a process new in ``after`` counts all)."""
        by_role: dict[str, float] = {}
        for pid, (role, seconds) in after.items():
            by_role[role] = by_role.get(role, 0.0) + seconds - before.get(pid, (role, 0.0))[1]
        return by_role


def register(pair: SandboxPair, emails: Sequence[str]) -> list[str]:
    """Register ``emails`` in the pair's Hopin sandbox; their registration ids."""
    hp = pair.platform.info()
    http = requests.Session()
    ids = []
    for email in emails:
        response = http.post(
            f"{hp['admin_url']}/events/{hp['event_id']}/registrations",
            json={"ticketId": hp["ticket_id"], "email": email, "firstName": "Bench",
                  "lastName": email.partition("@")[0]},
            timeout=30,
        )  # fmt: skip
        response.raise_for_status()
        ids.append(str(response.json()["data"]["id"]))
    return ids


def sf_calls(pairs: Sequence[SandboxPair]) -> int:
    """Salesforce API calls the pairs' sandboxes counted so far."""
    total = 0
    for pair in pairs:
        sf = pair.crm.info()
        response = requests.get(
            f"{sf['admin_url']}/counters",
            headers={"X-Admin-Token": sf["admin_token"]},
            verify=sf["ca_bundle"],
            timeout=30,
        )
        total += int(response.json()["api_usage"])
    return total


def wait_idle(store: StateStore, timeout: float = 600.0) -> None:
    """Wait until the outbox is empty: every row done (one indexed row read per look, so the
    benchmark's own watching costs PostgreSQL and this process little of the CPU measured)."""
    deadline = time.monotonic() + timeout
    while store.pending(limit=1):
        if time.monotonic() > deadline:
            raise RuntimeError("the backlog did not drain")
        time.sleep(0.05)


def drain_round(
    store: StateStore,
    pairs: Sequence[SandboxPair],
    records: int,
    host: str,
    cpu: RoleCPU | None = None,
) -> dict:
    """Register ``records`` (spread over the pairs), mark them and wait until the workers drained
    them: records per second, Salesforce calls per 1,000, how busy the machine was and (with
    ``cpu``) each role's CPU milliseconds per record."""
    run = uuid.uuid4().hex[:6]
    marks = {
        pair.org: register(pair, [f"{run}-{n}@{host}" for n in range(records // len(pairs))])
        for pair in pairs
    }
    calls = sf_calls(pairs)
    psutil.cpu_times_percent(None)
    before = cpu.snapshot() if cpu else {}
    started = time.monotonic()
    for org, ids in marks.items():
        store.mark_many(org, FLOW, ids, hint="bench")
    wait_idle(store)
    elapsed = time.monotonic() - started
    machine = psutil.cpu_times_percent(None)
    done = sum(len(ids) for ids in marks.values())
    spent = RoleCPU.spent(before, cpu.snapshot()) if cpu else {}
    return {
        "cpu_ms": {role: seconds * 1000 / done for role, seconds in sorted(spent.items())},
        "records": done,
        "per_second": done / elapsed,
        "sf_per_1000": (sf_calls(pairs) - calls) * 1000 / done,
        "idle": machine.idle,
        "load": os.getloadavg()[0],
    }


def throughput(hooks: Hooks, records: int, profile: str, cpu: bool = False) -> list[dict]:
    """Drain the same-sized backlog of 8 orgs with 1, 2 and 4 worker processes, twice each:
    first with new processes (each signs in to the orgs it meets: the cost of a start), then
    with the same processes again (steady state, as long-running workers are)."""
    pairs = start_fleet(hooks, 8, **SYSTEMS, prefix="tp", latency=_latency.option(profile))
    results = []
    try:
        with database() as state:
            deployment = Deployment(pairs, state)
            store = StateStore.open(state)
            try:
                deployment.start("scheduler", "--no-pollers", ready="scheduler: active")
                for count in (1, 2, 4):
                    workers = deployment.workers(count)
                    cold = drain_round(store, pairs, records, "cold.example")
                    roles = RoleCPU(deployment) if cpu else None
                    warm = drain_round(store, pairs, records, "warm.example", roles)
                    results.append({"workers": count, "cold": cold, "warm": warm})
                    deployment.stop(workers)
            finally:
                deployment.stop()
                store.close()
    finally:
        stop_fleet(pairs)
    return results


def burst(hooks: Hooks, records: int, profile: str) -> dict:
    """Registrations as webhooks to `eventsync serve` over 5 s, 4 workers: landing times."""
    port = free_port()
    pairs = start_fleet(
        hooks, 1, **SYSTEMS, prefix="rt", latency=_latency.option(profile),
        endpoint=f"http://127.0.0.1:{port}",
    )  # fmt: skip
    try:
        with database() as state:
            deployment = Deployment(pairs, state, listen=f"127.0.0.1:{port}")
            try:
                deployment.start("scheduler", "--no-pollers", ready="scheduler: active")
                deployment.start("serve", ready="receiving on")
                deployment.workers(4)
                sf, hp = pairs[0].crm.info(), pairs[0].platform.info()
                admin = requests.Session()
                admin.headers["X-Admin-Token"] = sf["admin_token"]
                tls = {"verify": sf["ca_bundle"], "timeout": 10}
                watcher = Watcher(
                    admin,
                    f"{sf['admin_url']}/records/Lead",
                    tls,
                    lambda lead: str(lead.get("Email") or "") or None,
                    psutil.Process(),
                )
                hopin = requests.Session()
                created: dict[str, float] = {}
                started = time.monotonic()
                for i in range(records):
                    due = started + i * 5.0 / records
                    if (delay := due - time.monotonic()) > 0:
                        time.sleep(delay)
                    email = f"rt{i:05d}@burst.example"
                    hopin.post(
                        f"{hp['admin_url']}/events/{hp['event_id']}/registrations",
                        json={"ticketId": hp["ticket_id"], "email": email,
                              "firstName": "Rt", "lastName": f"N{i}"},
                        timeout=10,
                    ).raise_for_status()  # fmt: skip
                    created[email] = time.monotonic()
                deadline = time.monotonic() + 120
                while len(watcher.seen) < records and time.monotonic() < deadline:
                    time.sleep(0.1)
                watcher.stop()
                latencies = [watcher.seen[e] - t for e, t in created.items() if e in watcher.seen]
            finally:
                deployment.stop()
    finally:
        stop_fleet(pairs)
    return {
        "records": records,
        "landed": len(latencies),
        "p50": percentile(latencies, 50),
        "p95": percentile(latencies, 95),
    }


def fairness(hooks: Hooks, per_org: int, profile: str) -> dict:
    """50 orgs, org00 with 10x the others' backlog, 4 workers: when each org finished."""
    pairs = start_fleet(hooks, 50, **SYSTEMS, prefix="fair", latency=_latency.option(profile))
    try:
        with database() as state:
            deployment = Deployment(pairs, state)
            store = StateStore.open(state)
            try:
                deployment.start("scheduler", "--no-pollers", ready="scheduler: active")
                marks = {
                    pair.org: register(
                        pair,
                        [f"f{n}@fair.example" for n in range(per_org * (10 if i == 0 else 1))],
                    )
                    for i, pair in enumerate(pairs)
                }
                deployment.workers(4)
                started = time.monotonic()
                for org, ids in marks.items():
                    store.mark_many(org, FLOW, ids, hint="bench")
                finished: dict[str, float] = {}
                deadline = started + 900
                while len(finished) < len(pairs) and time.monotonic() < deadline:
                    for status in store.statuses():
                        busy = status.pending or status.leased
                        if not busy and status.org not in finished:
                            finished[status.org] = time.monotonic() - started
                    time.sleep(0.05)
            finally:
                deployment.stop()
                store.close()
    finally:
        stop_fleet(pairs)
    small = [t for org, t in finished.items() if org != pairs[0].org]
    return {
        "orgs": len(pairs),
        "finished": len(finished),
        "small_p50": percentile(small, 50),
        "small_p95": percentile(small, 95),
        "small_max": max(small, default=float("nan")),
        "big": finished.get(pairs[0].org, float("nan")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=1600, help="throughput backlog")
    parser.add_argument("--burst", type=int, default=300, help="real-time registrations")
    parser.add_argument("--per-org", type=int, default=20, help="fairness backlog per org")
    parser.add_argument(
        "--only", choices=["throughput", "burst", "fairness"], help="run one part (default: all)"
    )
    parser.add_argument(
        "--cpu", action="store_true", help="CPU ms per record per role in the second rounds"
    )
    _latency.add_argument(parser)
    args = parser.parse_args()
    parts = {args.only} if args.only else {"throughput", "burst", "fairness"}
    hooks = Hooks(make_plugin_manager(environ={}))
    print(f"scale-out on Celery ({BROKER.split('://')[0]}), {os.cpu_count()} CPUs")
    for profile in _latency.chosen(args):
        if "throughput" in parts:
            print_throughput(throughput(hooks, args.records, profile, args.cpu), args, profile)
        if "burst" in parts:
            rt = burst(hooks, args.burst, profile)
            print(
                f"real time, {rt['records']} webhooks over 5 s, 4 workers: landed "
                f"{rt['landed']}, p50 {rt['p50'] * 1000:.0f} ms, p95 {rt['p95'] * 1000:.0f} ms"
            )
        if "fairness" in parts:
            fair = fairness(hooks, args.per_org, profile)
            print(
                f"fairness, {fair['orgs']} orgs ({fair['finished']} finished), 4 workers: small "
                f"orgs done by p50 {fair['small_p50']:.1f} s, p95 {fair['small_p95']:.1f} s, "
                f"max {fair['small_max']:.1f} s; the 10x org by {fair['big']:.1f} s"
            )


def print_throughput(rows: list[dict], args: argparse.Namespace, profile: str) -> None:
    """The throughput table (and, with ``--cpu``, CPU ms per record per role)."""
    print(
        f"\nlatency {profile}: throughput, {args.records} records over 8 orgs; new worker "
        "processes first (their sign-ins included), then the same processes again"
    )
    print(
        f"{'workers':>8} {'new: rec/s':>11} {'ratio':>6} {'again: rec/s':>13} {'ratio':>6} "
        f"{'SF calls/1000':>14} {'CPU idle':>9} {'load':>5}"
    )
    for r in rows:
        cold, warm = r["cold"], r["warm"]
        print(
            f"{r['workers']:>8} {cold['per_second']:>11.1f} "
            f"{cold['per_second'] / rows[0]['cold']['per_second']:>5.2f}x "
            f"{warm['per_second']:>13.1f} "
            f"{warm['per_second'] / rows[0]['warm']['per_second']:>5.2f}x "
            f"{warm['sf_per_1000']:>14.1f} {warm['idle']:>8.0f}% {warm['load']:>5.1f}"
        )
    if args.cpu:
        roles = sorted({role for r in rows for role in r["warm"]["cpu_ms"]})
        print("CPU ms per record while the same processes drained again, by role")
        print(f"{'workers':>8} " + " ".join(f"{role:>10}" for role in roles))
        for r in rows:
            ms = r["warm"]["cpu_ms"]
            print(f"{r['workers']:>8} " + " ".join(f"{ms.get(role, 0):>10.2f}" for role in roles))


if __name__ == "__main__":
    main()
