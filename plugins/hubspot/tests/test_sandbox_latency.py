"""The HubSpot sandbox's latency profiles, over real sockets. Only lower bounds on elapsed time
are asserted (a sleep lasts at least its delay, however loaded the machine)."""

from __future__ import annotations

import time

import pytest
import requests
from eventsync.latency import Delay
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import start_sandboxes
from eventsync_hubspot.sandbox.server import HubSpotSandbox


def _elapsed(call) -> float:
    started = time.monotonic()
    response = call()
    assert response.status_code < 500, response.text
    return time.monotonic() - started


def test_api_calls_wait_the_delay_and_batches_pay_per_record():
    sandbox = HubSpotSandbox(
        {
            "latency": {
                "default": {"median": 0.3},
                "endpoints": {"POST batch/*": {"median": 0.0, "per_item": 0.01}},
            }
        }
    )
    try:
        info = sandbox.info()
        assert info["latency"] == "none+custom"
        auth = {"Authorization": f"Bearer {info['access_token']}"}
        account = f"{info['url']}/account-info/v3/details"
        assert _elapsed(lambda: requests.get(account, headers=auth, timeout=30)) >= 0.3
        inputs = [{"properties": {"email": f"p{i}@example.com"}} for i in range(51)]
        create = f"{info['url']}/crm/v3/objects/contacts/batch/create"
        took = _elapsed(
            lambda: requests.post(create, headers=auth, json={"inputs": inputs}, timeout=30)
        )
        assert took >= 0.5  # 50 records beyond the first, 10 ms each
        # Admin calls never wait.
        assert requests.get(f"{info['admin_url']}/counters", timeout=10).ok
    finally:
        sandbox.stop()


def test_realistic_profile_by_name_and_through_start_sandboxes():
    pair = start_sandboxes(
        Hooks(make_plugin_manager(environ={})),
        crm="hubspot",
        endpoint=None,
        triggers=False,
        latency="realistic",
        latency_seed=5,
    )
    try:
        assert pair.crm.info()["latency"] == "realistic"
        profile = pair.crm.latency.profile
        assert profile.delay_for("POST batch/upsert") == Delay(0.3, 1.2, per_item=0.002)
        assert profile.delay_for("GET object") == Delay(0.15, 0.6)
    finally:
        pair.stop()


def test_a_bad_latency_option_says_what_is_allowed():
    with pytest.raises(
        ValueError, match="unknown latency profile 'slow'; use one of none, realistic"
    ):
        HubSpotSandbox({"latency": "slow"})
