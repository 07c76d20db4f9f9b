"""Operating the embedded engine over both sandboxes: idle means idle (no job, no log line at
INFO, no sync-log row, dead letters left alone until their source changes), readiness and the
metrics, sync-log retention."""

from __future__ import annotations

import io
import json
import logging
import re

import requests
from eventsync.logs import configure

VALIDATION = {
    "object": "Lead",
    "name": "No_Spam",
    "condition": "Company = 'Spam Inc'",
    "message": "Spam companies may not register",
    "field": "Company",
}


def _polls(env, flow: str = "export_registrations") -> int:
    return env.engine.scanner.polls.get((env.org, flow), 0)


def _log_rows(env) -> int:
    return len(env.engine.store.sync_log(limit=100_000))


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text (0 when absent)."""
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))) == labels:
            return float(match.group(2))
    return 0.0


def test_an_idle_engine_runs_no_job_and_leaves_dead_letters_alone(make_env, wait):
    env = make_env(
        triggers=False,
        pollers=True,
        poll_interval=0.1,
        start=False,
        salesforce_config={"validation_rules": [VALIDATION]},
    )
    for email in ("ada@example.com", "alan@example.com"):
        env.register(email, headline="Fine Co")
    spam = env.register("spam@example.com", headline="Spam Inc")
    stream = io.StringIO()
    root = logging.getLogger()
    levels = root.level, logging.getLogger("eventsync").level
    handler = configure("info", "json", stream=stream)
    try:
        env.engine.start()
        wait("the dead letter", lambda: env.engine.store.dead_letter_count() == 1)
        wait("two Leads", lambda: len(env.leads()) == 2)
        assert env.engine.wait_idle(30)
        # Settled once the pollers went past the overlap of every change (5 s of re-reads).
        wait("a poll that marks nothing", lambda: _quiet_poll(env), timeout=60)
        batches, rows, polls = env.engine.executor.stats.batches, _log_rows(env), _polls(env)
        [dead] = env.engine.store.dead_letters()
        stream.truncate(0)
        stream.seek(0)
        wait("ten more polls", lambda: _polls(env) >= polls + 10, timeout=60)
        assert env.engine.executor.stats.batches == batches, "an idle poll ran a job"
        assert _log_rows(env) == rows, "an idle poll wrote to the sync log"
        [still] = env.engine.store.dead_letters()
        assert (still.attempts, still.last_failure_at) == (dead.attempts, dead.last_failure_at)
        idle_lines = [json.loads(line) for line in stream.getvalue().splitlines()]
        assert [r for r in idle_lines if r["level"] != "DEBUG"] == []

        # The source of the dead letter changes: the poller retries it, and it lands.
        env.hopin_admin("PATCH", f"/registrations/{spam}", {"headline": "Honest Co"})
        wait("the fixed registration's Lead", lambda: len(env.leads()) == 3, timeout=60)
        wait("the dead letter cleared", lambda: env.engine.store.dead_letter_count() == 0)

        def lines() -> list[dict]:
            return [json.loads(line) for line in stream.getvalue().splitlines()]

        def batch_lines() -> list[dict]:
            return [r for r in lines() if r["message"].startswith("batch of e2e/export_registra")]

        [batch] = wait("the batch's log line", batch_lines)
        assert (batch["level"], batch["org"], batch["flow"], batch["count"]) == (
            "INFO", "e2e", "export_registrations", 1
        )  # fmt: skip
        found = [r for r in lines() if r["message"].startswith("poll of e2e/export_registrations")]
        assert found and found[0]["org"] == "e2e" and found[0]["count"] >= 1
    finally:
        root.removeHandler(handler)
        root.setLevel(levels[0])
        logging.getLogger("eventsync").setLevel(levels[1])


def _quiet_poll(env) -> bool:
    """True once a whole poll ran after the last batch and marked nothing."""
    batches, polls = env.engine.executor.stats.batches, _polls(env)
    rows = _log_rows(env)
    target = polls + 2  # one poll may have started before this probe
    while _polls(env) < target:
        if env.engine.executor.stats.batches != batches:
            return False
        env.engine.stopping.wait(0.05)
    settling = sum(env.engine.scanner.settling("e2e", flow) for flow in env.engine.flows)
    return env.engine.executor.stats.batches == batches and _log_rows(env) == rows and not settling


def test_readiness_follows_writes_and_metrics_count_records(make_env, wait):
    env = make_env(triggers=True, salesforce_config={}, engine_options={"max_attempts": 50})
    # Calls answer 503 (no retry inside the plugin): writes fail, the org is not ready.
    env.crm.max_retries = 0
    env.sf_admin("POST", "/faults", {"endpoint": "collections", "status": 503})
    url = env.server.url
    assert requests.get(f"{url}/readyz", timeout=10).status_code == 200
    env.register("grace@example.com")

    def not_ready():
        answer = requests.get(f"{url}/readyz", timeout=10)
        return answer.json() if answer.status_code == 503 else None

    body = wait("/readyz to say the writes fail", not_ready, timeout=60)
    [reason] = body["orgs"]["e2e"]["reasons"]
    assert "writes failing" in reason, reason
    assert requests.get(f"{url}/livez", timeout=10).json() == {"alive": True, "running": True}
    env.sf_admin("DELETE", "/faults")
    wait("the org ready again", lambda: requests.get(f"{url}/readyz", timeout=10).ok, timeout=60)
    assert env.engine.wait_idle(30)

    labels = {"org": "e2e", "flow": "export_registrations"}

    def counted_done():
        # A batch's outcomes are counted just after its rows are recorded, so the outbox can be
        # idle a moment before the counter moves.
        text = requests.get(f"{url}/metrics", timeout=10).text
        done = _sample(
            text, "eventsync_records_total", **labels, outcome="done", error_class="none"
        )
        return text if done >= 1 else None

    text = wait("the done record counted in /metrics", counted_done, timeout=30)
    retried = _sample(
        text, "eventsync_records_total", **labels, outcome="retry", error_class="retryable"
    )
    assert retried >= 1
    assert _sample(text, "eventsync_remote_call_duration_seconds_count", org="e2e",
                   system="salesforce", call="push") >= 2  # fmt: skip
    assert _sample(text, "eventsync_remote_call_duration_seconds_count", org="e2e",
                   system="hopin", call="pull") >= 1  # fmt: skip
    assert _sample(text, "eventsync_api_calls_limit", org="e2e", system="salesforce") > 0
    assert _sample(text, "eventsync_outbox_depth", **labels) == 0
    assert _sample(text, "eventsync_org_ready", org="e2e") == 1


def test_readiness_reports_lag_over_the_threshold(make_env, wait):
    env = make_env(triggers=False, start=False, engine_options={"ready_lag": 0.5})
    env.engine.mark(env.org, "export_registrations", ["waiting-1"], hint="manual")

    def lagging():
        return [r for r in env.engine.readiness()[env.org] if "lags" in r]

    [reason] = wait("the lag above the threshold", lagging, timeout=30)
    assert reason.startswith("export_registrations lags")
    answer = requests.get(f"{env.server.url}/readyz", timeout=10)
    assert answer.status_code == 503
    assert "the engine is not running" in answer.json()["orgs"]["e2e"]["reasons"]


def test_the_sync_log_is_pruned_to_its_retention(make_env, wait):
    env = make_env(triggers=False, start=False, engine_options={"log_retention": 1 / 86400})
    store = env.engine.store
    store.log(env.org, "export_registrations", "old-1", "done", "long ago")
    wait("the line older than a second", lambda: env.engine.prune_log() == 1, timeout=30)
    assert store.entity_log(env.org, "export_registrations", "old-1") == []


def test_readiness_names_a_system_that_refused_the_credentials(make_env):
    from eventsync.engine import Engine
    from eventsync.sandbox_env import free_port
    from eventsync.server import Server

    env = make_env(triggers=False, start=False)
    secrets = {**env.pair.secrets(), "EVENTSYNC_HOPIN_SANDBOX_API_KEY": "not-the-key"}
    engine = Engine(env.engine.config, hooks=env.hooks, env=secrets, store=env.engine.store)
    server = Server(engine, port=free_port()).start()
    try:
        assert set(engine.connect_all()) == {("e2e", "hopin")}
        [reason] = engine.readiness()["e2e"]
        assert reason.startswith("cannot connect hopin: ")
        assert "not-the-key" not in reason
        answer = requests.get(f"{server.url}/readyz", timeout=10)
        assert answer.status_code == 503 and answer.json()["ready"] is False
    finally:
        server.stop()
        engine.stop()
