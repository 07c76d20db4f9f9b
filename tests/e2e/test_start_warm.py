"""``Engine.start`` describes the CRM objects the flows write (``warm_schemas``) before any
webhook arrives, so the first burst neither waits for nor pays the describes; a describe that
fails at start does not stop the start (the first push describes again)."""

from __future__ import annotations

import logging

DESCRIBES = ("describe", "describe_global")


def _describes(env) -> dict[str, int]:
    by = env.sf_admin("GET", "/counters")["by_endpoint"]
    return {e: by.get(e, 0) for e in DESCRIBES}


def test_the_start_describes_so_the_first_webhook_does_not(make_env, wait) -> None:
    env = make_env()
    started = _describes(env)
    assert started["describe_global"] >= 1 and started["describe"] >= 1, started
    env.sf_admin("POST", "/counters/reset", {"api_usage": None})
    env.register("warm@start.example")
    wait(
        "the registration's Lead",
        lambda: any(lead.fields.get("Email") == "warm@start.example" for lead in env.leads()),
    )
    assert _describes(env) == {"describe": 0, "describe_global": 0}


def test_a_describe_failing_at_start_is_logged_and_the_push_describes(
    make_env, wait, caplog
) -> None:
    env = make_env(start=False)
    assert _describes(env) == {"describe": 0, "describe_global": 0}
    # Salesforce refuses every describe while the engine starts (retries in place included).
    env.sf_admin("POST", "/faults", {"endpoint": "describe_global", "status": 503})
    with caplog.at_level(logging.WARNING, logger="eventsync"):
        env.engine.start()
    assert any("cannot describe" in r.getMessage() for r in caplog.records)
    env.sf_admin("DELETE", "/faults")
    env.register("late@start.example")
    wait(
        "the registration's Lead",
        lambda: any(lead.fields.get("Email") == "late@start.example" for lead in env.leads()),
    )
