"""Update-policy benchmark: what per-field policies and a preview cost in Salesforce API calls.

The same backfill of N Hopin registrations, half of whose emails already have a Lead, runs
with the plain Email mapping (the plugin's upsert: one match query and one Collections call
per batch and kind of write) and with the same mapping under update policies (``if_empty``,
``never_clear``, a constant and a default applied on create only; the flow's own match query
reads the current values). Before each run, a preview of the whole flow: reads only.

Printed per configuration and phase: Salesforce calls by endpoint category (from the
sandbox's counters), calls per 1,000 records, and the ratio of the policies run to the plain
one, all from one run.

    .venv/bin/python bench/policies.py [--records 2000]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import requests
from _flows import EMAIL, FIELDS
from eventsync.engine import Engine
from eventsync.models import PullRequest, PushItem, PushRequest
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import config_for, start_sandboxes
from eventsync.store import StateStore

POLICIES = {
    **EMAIL,
    "fields": [
        {**FIELDS[0], "policy": "if_empty"},
        {**FIELDS[1], "policy": "never_clear"},
        *FIELDS[2:],  # Email; Company from headline with a default: the default is create-only
        {"target": "LeadSource", "constant": "Other"},
    ],
}
CONFIGS = {"plain": EMAIL, "policies": POLICIES}


def _counters(sf: dict, reset: bool = False) -> dict[str, int]:
    tls = {
        "verify": sf["ca_bundle"],
        "timeout": 30,
        "headers": {"X-Admin-Token": sf["admin_token"]},
    }
    if reset:
        requests.post(f"{sf['admin_url']}/counters/reset", json={}, **tls).raise_for_status()
        return {}
    return requests.get(f"{sf['admin_url']}/counters", **tls).json()["by_endpoint"]


def run(name: str, flow: dict, records: int) -> dict:
    hooks = Hooks(make_plugin_manager(environ={}))
    pair = start_sandboxes(
        hooks,
        crm="salesforce",
        platform="hopin",
        org="bench",
        endpoint=None,
        triggers=False,
        registrations=records,
        options={"hopin": {"max_page_size": 100}, "salesforce": {"daily_api_limit": 10_000_000}},
    )
    state = Path(tempfile.mkdtemp(prefix="eventsync-policies-")) / "state.sqlite"
    try:
        config = config_for(
            pair,
            state=str(state),
            flows={"export_registrations": flow},
            engine={"workers": 2, "batch_linger": 0.0},
        )
        store = StateStore.open(path=str(state))
        engine = Engine(config, hooks=hooks, env=pair.secrets(), store=store, pollers=False)
        platform, crm = engine.connection("bench", "platform"), engine.connection("bench", "crm")
        registrations = list(hooks.pull(platform, PullRequest("registration")))
        existing = [
            PushItem(
                str(i), {"LastName": "Existing", "Company": "Kept Inc", "Email": r.get("email")}
            )
            for i, r in enumerate(registrations[::2])
        ]
        for start in range(0, len(existing), 200):
            hooks.push(crm, PushRequest("Lead", "insert", tuple(existing[start : start + 200])))
        sf = pair.crm.info()
        _counters(sf, reset=True)
        plan = engine.preview("bench", "export_registrations")
        preview_calls = _counters(sf)
        _counters(sf, reset=True)
        engine.start()
        assert engine.backfill("bench", "export_registrations").finished
        assert engine.wait_idle(600)
        run_calls = _counters(sf)
        dead = store.dead_letter_count()
        engine.stop()
        store.close()
        return {
            "name": name,
            "records": len(registrations),
            "summary": plan.summary(),
            "preview": preview_calls,
            "run": run_calls,
            "dead": dead,
        }
    finally:
        pair.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=2000)
    args = parser.parse_args()
    results = [run(name, flow, args.records) for name, flow in CONFIGS.items()]
    print(f"export_registrations, {args.records} registrations, half matching an existing Lead")
    print(
        f"{'mapping':>9} {'phase':>8} {'query':>6} {'collections':>12} {'other':>6} {'calls/1k':>9}"
    )
    totals: dict[tuple[str, str], int] = {}
    for r in results:
        for phase in ("preview", "run"):
            calls = r[phase]
            query, collections = calls.get("query", 0), calls.get("collections", 0)
            other = sum(calls.values()) - query - collections
            totals[(r["name"], phase)] = sum(calls.values())
            print(
                f"{r['name']:>9} {phase:>8} {query:>6} {collections:>12} {other:>6} "
                f"{sum(calls.values()) * 1000 / r['records']:>9.1f}"
            )
        print(
            f"{r['name']:>9} preview summary {r['summary']}; dead letters after the run: {r['dead']}"
        )
    ratio = totals[("policies", "run")] / max(1, totals[("plain", "run")])
    print(f"calls of the run with policies / without: {ratio:.2f} (1.00 = no extra calls)")


if __name__ == "__main__":
    main()
