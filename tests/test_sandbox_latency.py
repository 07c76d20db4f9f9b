"""Latency profiles in both sandboxes, over real sockets (`start_sandboxes(latency=...)`;
`eventsync sandbox --latency` is in test_sandbox_cli.py). Only lower bounds are asserted (a sleep lasts at least its
delay, however loaded the machine), so no assertion depends on machine speed."""

from __future__ import annotations

import time

import requests
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import start_sandboxes


def elapsed(call) -> float:
    started = time.monotonic()
    response = call()
    assert response.status_code < 500, response.text
    return time.monotonic() - started


def test_both_sandboxes_answer_after_the_profile_delay_and_admin_calls_do_not_wait():
    pair = start_sandboxes(
        Hooks(make_plugin_manager(environ={})),
        endpoint=None,
        triggers=False,
        latency={"default": {"median": 0.4}},
    )
    try:
        info = pair.info()
        sf, hp = info["salesforce"], info["hopin"]
        assert sf["latency"] == hp["latency"] == "none+custom"
        # An API call waits the delay (a Salesforce REST path and a Hopin /v1 path).
        versions = f"{sf['url']}/services/data"
        assert elapsed(lambda: requests.get(versions, verify=sf["ca_bundle"], timeout=30)) >= 0.4
        event = f"{hp['api_url']}/events/{hp['event_id']}"
        auth = {"Authorization": f"Bearer {hp['api_key']}"}
        assert elapsed(lambda: requests.get(event, headers=auth, timeout=30)) >= 0.4
        # Each sandbox still counts the calls it served.
        counted = requests.get(f"{hp['admin_url']}/counters", timeout=10).json()
        assert counted["total"] >= 1
    finally:
        pair.stop()


def test_a_collections_write_costs_more_per_record():
    pair = start_sandboxes(
        Hooks(make_plugin_manager(environ={})),
        endpoint=None,
        triggers=False,
        options={
            "salesforce": {
                "latency": {"endpoints": {"collections": {"median": 0.0, "per_item": 0.01}}}
            }
        },
    )
    try:
        handle = pair.crm
        latency = handle.org.latency
        assert latency is not None
        assert latency.sample("collections", items=200) >= 1.99
        assert latency.sample("query") == 0.0
        assert pair.platform.info()["latency"] == "none"
    finally:
        pair.stop()
