"""Benchmark: contacts upserted on email through the hubspot plugin versus a hand-written
optimal ``requests`` script making the same HubSpot calls, then the whole export flow
(Hopin registrations to HubSpot contacts through the engine).

Part 1 runs both sides in one process against one local HubSpot sandbox (answers shuffled,
as HubSpot's may be), interleaved batch by batch so both see the same portal size. The
optimal script sends one ``batch/upsert`` with ``idProperty=email`` per 100 contacts and
reads the results by ``objectWriteTraceId``; the plugin makes the same call, so its overhead
is its own (conversion, correlation, rate-limit bookkeeping). A third line has one invalid
contact in every batch: HubSpot refuses such a batch whole and the plugin halves it until the
bad one stands alone, which the calls per 1,000 records show.

Part 2 backfills the export flow (``eventsync backfill export_registrations``'s path:
``Engine.backfill`` then the workers) of registrations seeded in the Hopin sandbox, and counts
HubSpot's calls per 1,000 registrations.

Both parts run without latency and then with the sandboxes' ``realistic`` profile (HubSpot
about 150 ms a call and 300 ms a batch, Hopin about 120 ms a call), printed apart.

API calls are read from the sandbox's counters. Run:
    .venv/bin/python bench/hubspot_export.py [--records 5000] [--registrations 2000]
        [--latency both|none|realistic]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import _latency
import requests
from eventsync import backoff
from eventsync.engine import Engine
from eventsync.models import PushItem, PushRequest
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import config_for, start_sandboxes
from eventsync_hubspot.sandbox.wiring import sandbox_options

BATCH = 100


def contacts(prefix: str, start: int, count: int, bad: bool = False) -> list[dict[str, Any]]:
    """``count`` distinct contacts (the first one invalid when ``bad``)."""
    rows = [
        {"email": f"{prefix}{i}@bench.example", "firstname": "Bench", "lastname": f"{prefix}{i}"}
        for i in range(start, start + count)
    ]
    if bad:
        rows[0] = {**rows[0], "hopin_link_status": "Not an option"}
    return rows


def optimal_batch(http: requests.Session, url: str, rows: list[dict[str, Any]]) -> int:
    """The best a hand-written script can do: one batch/upsert; returns the contacts written."""
    inputs = [
        {"idProperty": "email", "id": r["email"], "properties": r, "objectWriteTraceId": str(n)}
        for n, r in enumerate(rows)
    ]
    answer = http.post(f"{url}/crm/v3/objects/contacts/batch/upsert", json={"inputs": inputs})
    answer.raise_for_status()
    by_trace = {row["objectWriteTraceId"]: row["id"] for row in answer.json()["results"]}
    return len(by_trace)


def calls(admin: str) -> int:
    """The sandbox's API calls so far."""
    return int(requests.get(f"{admin}/counters", timeout=30).json()["total"])


def push_part(hooks: Hooks, records: int, latency: str | None) -> float:
    """Part 1: plugin versus the optimal script, then the plugin with a bad record per batch;
    returns the plugin's seconds per record (for part 2's ratio)."""
    sandbox = hooks.start_sandbox(
        "hubspot", {**sandbox_options(None), "rate_limit": 10**9, "latency": latency}
    )
    try:
        conn = hooks.authenticate(sandbox.settings("bench"))
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {sandbox.access_token}"
        seconds = {"plugin": 0.0, "optimal": 0.0, "bad": 0.0}
        used = dict.fromkeys(seconds, 0)
        failures = dict.fromkeys(seconds, 0)
        for number, start in enumerate(range(0, records, BATCH)):
            count = min(BATCH, records - start)
            order = ["plugin", "optimal"] if number % 2 == 0 else ["optimal", "plugin"]
            for side in [*order, "bad"]:
                rows = contacts(side[0], start, count, bad=side == "bad")
                before, began = calls(sandbox.admin_url), time.perf_counter()
                if side == "optimal":
                    failures[side] += count - optimal_batch(http, sandbox.url, rows)
                else:
                    items = tuple(PushItem(r["email"], r) for r in rows)
                    request = PushRequest("contacts", "upsert", items, match_key="email")
                    failures[side] += sum(not r.ok for r in hooks.push(conn, request))
                seconds[side] += time.perf_counter() - began
                used[side] += calls(sandbox.admin_url) - before  # admin reads are not counted
        per_k = {side: used[side] * 1000 / records for side in used}
        print(f"part 1: {records} contacts per side, upsert on email, batches of {BATCH}")
        for side, label in (("plugin", "plugin "), ("optimal", "optimal")):
            print(
                f"  {label}: {used[side]} API calls = {per_k[side]:.1f} per 1,000 records, "
                f"{failures[side]} failed records"
            )
        print(
            f"  plugin, one bad contact per batch: {used['bad']} API calls = "
            f"{per_k['bad']:.1f} per 1,000 records, {failures['bad']} failed records "
            f"(time ratio to the clean plugin run {seconds['bad'] / seconds['plugin']:.2f})"
        )
        print(f"  time ratio plugin/optimal: {seconds['plugin'] / seconds['optimal']:.2f}")
        return seconds["plugin"] / records
    finally:
        sandbox.stop()


def export_part(hooks: Hooks, registrations: int, push_seconds: float, latency: str | None) -> None:
    """Part 2: the export flow's backfill through the engine."""
    pair = start_sandboxes(
        hooks,
        crm="hubspot",
        platform="hopin",
        org="bench",
        triggers=False,
        registrations=registrations,
        options={"hubspot": {"rate_limit": 10**9}},
        latency=latency,
    )
    try:
        with tempfile.TemporaryDirectory() as workdir:
            flows = pair.flows()
            config = config_for(
                pair,
                state=str(Path(workdir) / "state.sqlite"),
                flows={"export_registrations": flows["export_registrations"]},
                engine={"batch_size": 200, "workers": 2},
            )
            engine = Engine(config, hooks=hooks, env=pair.secrets(), pollers=False)
            admin = pair.crm.info()["admin_url"]
            try:
                before, began = calls(admin), time.perf_counter()
                result = engine.backfill("bench", "export_registrations")
                engine.start()
                assert engine.wait_idle(600), engine.status()
                elapsed = time.perf_counter() - began
                used = calls(admin) - before
                dead = engine.store.dead_letter_count()
            finally:
                engine.close()
        print(
            f"part 2: export flow backfill of {result.marked} registrations: {used} HubSpot API "
            f"calls = {used * 1000 / registrations:.1f} per 1,000 registrations, "
            f"{dead} dead letters; time per registration / part 1's plugin time per contact: "
            f"{elapsed / (result.marked or 1) / push_seconds:.1f}"
        )
    finally:
        pair.stop()


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5_000)
    parser.add_argument("--registrations", type=int, default=2_000)
    _latency.add_argument(parser)
    args = parser.parse_args()
    hooks = Hooks(make_plugin_manager(environ={}))
    for profile in _latency.chosen(args):
        print(f"== latency profile: {profile}")
        latency = _latency.option(profile)
        with backoff.disabled():
            push_seconds = push_part(hooks, args.records, latency)
            export_part(hooks, args.registrations, push_seconds, latency)


if __name__ == "__main__":
    main()
