"""Idle cost: what an engine does per flow while nothing changes.

For each of the four flows alone, both sandboxes and an embedded engine with that flow's poller
run in this process. The sources are seeded (Hopin registrations, one of them refused by a
Salesforce validation rule so that a dead letter exists; a Campaign with members carrying the
ticket code), the engine syncs them, and once a whole poll marks nothing the benchmark counts,
over ``--polls`` polls of nothing changing: remote API calls (from the sandboxes' own counters),
jobs run (batches), sync-log rows added and dead-letter attempts. API calls per day are the
calls per poll times the polls a day makes at the flow's default ``poll_interval`` (60 s; the
attendance report's 300 s) and at the sandbox configuration's 2 s.

Run twice: without latency, and with ``--latency`` seconds added to every sandbox API answer
(the sandboxes' fault injection with status 0); idle cost must not depend on it.

    .venv/bin/python bench/idle.py [--polls 20] [--latency 0.1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import attrs
import requests
from eventsync.engine import Engine
from eventsync.logs import configure
from eventsync.models import PushItem, PushRequest
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import SandboxPair, config_for, start_sandboxes
from eventsync_salesforce.sandbox.wiring import TICKET_CODE_FIELD

FLOWS = ("export_registrations", "import_registrations", "magic_links", "attendance")
#: Fast polls for the measurement; the figures per day are scaled to real intervals.
POLL = 0.2
DAY = 86_400
SPAM = {
    "object": "Lead",
    "name": "No_Spam",
    "condition": "Company = 'Spam Inc'",
    "message": "Spam companies may not register",
    "field": "Company",
}


def _sf(pair: SandboxPair, method: str, path: str, body: Any = None) -> Any:
    info = pair.crm.info()
    answer = requests.request(
        method,
        f"{info['admin_url']}{path}",
        json=body,
        headers={"X-Admin-Token": info["admin_token"]},
        verify=info["ca_bundle"],
        timeout=30,
    )
    answer.raise_for_status()
    return answer.json() if answer.content else None


def _hopin(pair: SandboxPair, method: str, path: str, body: Any = None) -> Any:
    answer = requests.request(
        method, f"{pair.platform.info()['admin_url']}{path}", json=body, timeout=30
    )
    answer.raise_for_status()
    return answer.json() if answer.content else None


def _calls(pair: SandboxPair) -> tuple[int, int]:
    """API calls so far: (Salesforce, Hopin)."""
    return int(_sf(pair, "GET", "/counters")["total"]), int(
        _hopin(pair, "GET", "/counters")["total"]
    )


def _seed(pair: SandboxPair, engine: Engine) -> None:
    hopin = pair.platform.info()
    for n in range(10):
        body = {"ticketId": hopin["ticket_id"], "email": f"idle{n}@example.com",
                "firstName": f"Idle{n}", "lastName": "Tester", "headline": "Fine Co"}  # fmt: skip
        _hopin(pair, "POST", f"/events/{hopin['event_id']}/registrations", body)
    spam = {"ticketId": hopin["ticket_id"], "email": "spam@example.com", "firstName": "Spam",
            "lastName": "Tester", "headline": "Spam Inc"}  # fmt: skip
    _hopin(pair, "POST", f"/events/{hopin['event_id']}/registrations", spam)
    crm = engine.connection(pair.org, "crm")

    def insert(obj: str, rows: list[dict[str, Any]]) -> list[str]:
        items = tuple(PushItem(str(i), row) for i, row in enumerate(rows))
        results = engine.hooks.push(crm, PushRequest(obj, "insert", items))
        assert all(r.ok for r in results), [r.error for r in results if not r.ok]
        return [str(r.id) for r in results]

    [campaign] = insert(
        "Campaign", [{"Name": "Idle", TICKET_CODE_FIELD: hopin["ticket_integration_code"]}]
    )
    insert(
        "CampaignMemberStatus",
        [{"CampaignId": campaign, "Label": "Attended", "HasResponded": True}],
    )
    leads = insert(
        "Lead",
        [
            {"LastName": f"M{n}", "Company": "Acme", "Email": f"member{n}@example.com"}
            for n in range(5)
        ],
    )
    insert("CampaignMember", [{"CampaignId": campaign, "LeadId": lead} for lead in leads])


def _wait(what: str, probe: Any, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def measure(flow: str, polls: int, latency: float) -> dict[str, Any]:
    """Idle figures of one flow: per poll, and per day at 60 s and 2 s poll intervals."""
    hooks = Hooks(make_plugin_manager(environ={}))
    pair = start_sandboxes(
        hooks, crm="salesforce", platform="hopin", org="idle", triggers=False,
        options={"salesforce": {"config": {"validation_rules": [SPAM]}}},
    )  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="eventsync-idle-"))
    flows = {flow: pair.flows(POLL)[flow]}
    config = config_for(pair, state=str(workdir / "state.sqlite"), flows=flows, poll_interval=POLL)
    engine = Engine(config, hooks=hooks, env=pair.secrets(), pollers=True)
    try:
        _seed(pair, engine)
        if latency:
            _sf(pair, "POST", "/faults", {"endpoint": "*", "status": 0, "latency": latency})
            _hopin(pair, "POST", "/faults", {"path": "/v1/*", "latency": latency})
        engine.start()
        scanner, stats, store = engine.scanner, engine.executor.stats, engine.store

        def polled() -> int:
            return scanner.polls.get((pair.org, flow), 0)

        def settled() -> bool:
            # A whole poll that started after the last batch and marked nothing.
            batches, rows, start = stats.batches, len(store.sync_log(limit=100_000)), polled()
            _wait("two polls", lambda: polled() >= start + 2)
            busy = store.statuses()
            return (
                stats.batches == batches
                and len(store.sync_log(limit=100_000)) == rows
                and not any(s.pending or s.leased for s in busy)
            )

        _wait(f"{flow} to settle", settled, timeout=300)
        dead = {d.entity: d.attempts for d in store.dead_letters()}
        sf0, hp0 = _calls(pair)
        batches0, rows0, polls0 = stats.batches, len(store.sync_log(limit=100_000)), polled()
        _wait(f"{polls} idle polls", lambda: polled() >= polls0 + polls, timeout=600)
        sf1, hp1 = _calls(pair)
        done = polled() - polls0
        per_poll = ((sf1 - sf0) + (hp1 - hp0)) / done
        default = attrs.fields_dict(engine.flows[flow].settings_class)["poll_interval"].default
        return {
            "flow": flow,
            "polls": done,
            "jobs": stats.batches - batches0,
            "sync_log_rows": len(store.sync_log(limit=100_000)) - rows0,
            "dead_letters": len(dead),
            "dead_retried": sum(
                1 for d in store.dead_letters() if d.attempts != dead.get(d.entity, d.attempts)
            ),
            "calls_per_poll": per_poll,
            "salesforce_per_poll": (sf1 - sf0) / done,
            "hopin_per_poll": (hp1 - hp0) / done,
            "default_interval": default,
            "per_day_default": per_poll * DAY / default,
            "per_day_2s": per_poll * DAY / 2,
        }
    finally:
        engine.close()
        pair.stop()


def main() -> None:
    """Measure and print the idle cost of each flow, without and with latency."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--polls", type=int, default=20, help="idle polls measured per flow")
    parser.add_argument("--latency", type=float, default=0.1, help="added seconds per API answer")
    args = parser.parse_args()
    print(f"idle cost per flow over {args.polls} polls of nothing changing (one run)")
    header = (
        f"{'latency':>8} {'flow':<22} {'jobs':>5} {'log rows':>8} {'dead (retried)':>14} "
        f"{'SF/poll':>8} {'Hopin/poll':>10} {'calls/day at default interval':>30} {'@2s':>10}"
    )
    print(header)
    configure("error")  # the seeded dead letter's warning is expected
    # Real waits (no backoff.disabled()): a report the Hopin plugin waits for is polled at its
    # own interval, as in production.
    for latency in (0.0, args.latency):
        for flow in FLOWS:
            r = measure(flow, args.polls, latency)
            print(
                f"{latency:>7.2f}s {flow:<22} {r['jobs']:>5} {r['sync_log_rows']:>8} "
                f"{r['dead_letters']:>6} ({r['dead_retried']:>3})   "
                f"{r['salesforce_per_poll']:>8.2f} {r['hopin_per_poll']:>10.2f} "
                f"{r['per_day_default']:>22,.0f} @{r['default_interval']:>4.0f}s "
                f"{r['per_day_2s']:>10,.0f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
