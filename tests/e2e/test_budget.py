"""The API budget guard end to end: warn at 80% (a finding `eventsync status` shows), pollers
skip their runs past 90%, backfills pause at their share, real time keeps going."""

from __future__ import annotations

import re

import requests


def _metric(env, name: str, **labels: str) -> float | None:
    """One sample of the runner's /metrics (None when absent)."""
    text = requests.get(f"{env.server.url}/metrics", timeout=10).text
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))) == labels:
            return float(match.group(2))
    return None


def set_usage(env, share: float) -> int:
    limit = env.sf_admin("GET", "/counters")["daily_limit"]
    env.sf_admin("POST", "/counters/reset", {"api_usage": int(limit * share), "daily_limit": limit})
    return limit


def test_real_time_goes_on_while_polls_and_backfills_wait_for_the_allowance(make_env, wait):
    env = make_env(
        engine_options={"backfill_budget_share": 0.5},
        hopin_options={"seed_registrations": 600},  # more than one backfill chunk (500)
    )
    limit = set_usage(env, 0.95)
    # A real-time registration still lands (and its response shows the usage).
    env.register("first@example.com")
    wait("the first registration to land", lambda: env.leads(), timeout=60)
    [budget] = [b for b in env.engine.budgets() if b.system == "salesforce"]
    assert budget.used >= int(limit * 0.95) and budget.state == "backfills and polls paused"
    assert budget.allows("realtime") and not budget.allows("poll")
    assert not budget.allows("backfill")
    # /metrics shows the same figures and what the guard holds back.
    sf = {"org": "e2e", "system": "salesforce"}
    assert _metric(env, "eventsync_api_calls_used", **sf) >= int(limit * 0.95)
    assert _metric(env, "eventsync_api_calls_limit", **sf) == limit
    assert _metric(env, "eventsync_api_budget_paused", **sf, spender="backfill") == 1
    assert _metric(env, "eventsync_api_budget_paused", **sf, spender="poll") == 1
    # The warning is a finding of the organisation's flows, which `eventsync status` lists.
    findings = env.engine.store.sync_log(outcome="finding", limit=10)
    assert any("salesforce API budget" in f.message and "95%" in f.message for f in findings)
    # Pollers skip their runs; a backfill pauses at its first chunk boundary.
    env.register("polled@example.com")
    assert env.engine.poll_once("e2e", "export_registrations") == 0
    paused = env.engine.backfill("e2e", "export_registrations")
    assert not paused.finished and "paused" in paused.reason
    # Once the allowance frees, both go on.
    set_usage(env, 0.1)
    env.register("later@example.com")
    wait("a registration after the reset", lambda: len(env.leads()) >= 2, timeout=60)
    [budget] = [b for b in env.engine.budgets() if b.system == "salesforce"]
    assert budget.state == "ok"
    assert _metric(env, "eventsync_api_budget_paused", **sf, spender="backfill") == 0
    assert env.engine.backfill("e2e", "export_registrations").finished
    assert env.engine.wait_idle(120)
    assert len(env.leads()) == 603
