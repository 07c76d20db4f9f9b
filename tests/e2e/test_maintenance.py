"""The engine's maintenance keeps Hopin's dataSubscription alive with no poller running.

Both tests wait for conditions, never for a fixed time: renewals are counted until three are
seen (a deadline of a minute on a loaded machine); the negative case waits for the start's one
subscription, then lets two seconds pass (ten intervals of the renewing case; a slower machine
only makes that window safer) and must still count one.
"""

from __future__ import annotations

import time

import requests
from eventsync.config import parse_config
from eventsync.engine import Engine
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import free_port, start_sandboxes
from eventsync.waiting import wait_until


def subscription_calls(admin_url: str) -> int:
    calls = requests.get(f"{admin_url}/counters", timeout=10).json()["calls"]
    return sum(
        n
        for key, n in calls.items()
        if key.startswith("POST") and key.endswith("/dataSubscriptions")
    )


def run_engine(tmp_path, maintenance_interval: float, until) -> int:
    hooks = Hooks(make_plugin_manager(environ={}))
    pair = start_sandboxes(
        hooks,
        crm="salesforce",
        platform="hopin",
        org="m",
        endpoint=f"http://127.0.0.1:{free_port()}",
    )
    try:
        org = pair.org_data()
        # A subscription that lives 3 s and is renewed in its last 2.5 s.
        org["systems"]["hopin"].update(webhook_ttl=3.0, webhook_renew_before=2.5)
        config = parse_config(
            {
                "engine": {
                    "state": str(tmp_path / f"s{maintenance_interval}.sqlite"),
                    "maintenance_interval": maintenance_interval,
                },
                "orgs": {"m": org},
            }
        )
        admin_url = pair.platform.info()["admin_url"]
        engine = Engine(config, hooks=hooks, env=pair.secrets(), pollers=False).start()
        try:
            return until(lambda: subscription_calls(admin_url))
        finally:
            engine.close()
    finally:
        pair.stop()


def test_maintenance_renews_the_subscription_without_pollers(tmp_path):
    def three_calls(calls):
        return wait_until("three subscription calls", lambda: calls() >= 3 and calls(), 60)

    assert run_engine(tmp_path, maintenance_interval=0.2, until=three_calls) >= 3


def test_without_maintenance_only_the_start_subscribes(tmp_path):
    def first_then_quiet(calls):
        first = wait_until("the start's subscription", calls, 60)
        # A floor, not a race: ten renewing-case intervals pass; a slower machine only waits more.
        time.sleep(2.0)
        return max(first, calls())

    assert run_engine(tmp_path, maintenance_interval=60.0, until=first_then_quiet) == 1
