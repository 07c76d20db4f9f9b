"""Operating `eventsync run` as a process: its structured logs (no secret in them), `trace` of a
registration whose write was refused twice by the sandbox and then landed (validated against
docs/schemas/trace.schema.json), `status` showing a retrying record's last error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import requests
from eventsync.sandbox_env import free_port
from eventsync.waiting import wait_until

EVENTSYNC = str(Path(sys.executable).with_name("eventsync"))
ROOT = Path(__file__).resolve().parents[1]
TRACE_SCHEMA = json.loads((ROOT / "docs" / "schemas" / "trace.schema.json").read_text())


def _cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [EVENTSYNC, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def _spawn(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [EVENTSYNC, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


@pytest.fixture
def sandbox_dir(tmp_path):
    """`eventsync sandbox` and `init --sandbox` in tmp_path; yields (info, port)."""
    port = free_port()
    proc = _spawn(tmp_path, "sandbox", "--endpoint", f"http://127.0.0.1:{port}")
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    assert _cli(tmp_path, "init", "--sandbox").returncode == 0
    config = tmp_path / "eventsync.toml"
    # Quick retries by the engine, none inside the plugin: each refused call is an attempt.
    text = config.read_text().replace("[engine]\n", "[engine]\nbackoff_base = 0.2\n", 1)
    table = "[orgs.sandbox.systems.salesforce]\n"
    assert table in text
    config.write_text(text.replace(table, f"{table}max_retries = 0\n", 1))
    yield json.loads(line), port
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0


def _secrets(info: dict, env_file: Path) -> set[str]:
    """Every secret value the sandboxes and the secrets file hold."""
    sf, hp = info["salesforce"], info["hopin"]
    values = {sf.get(k) for k in ("client_secret", "password", "security_token", "refresh_token")}
    values |= {sf.get("admin_token"), hp.get("api_key"), hp.get("webhook_secret")}
    values |= {hp.get("oauth_client_secret"), *sf["secrets"].values(), *hp["secrets"].values()}
    for line in env_file.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            values.add(line.partition("=")[2].strip().strip('"'))
    return {v for v in values if isinstance(v, str) and len(v) >= 6}


def _sf_admin(info: dict, method: str, path: str, body: dict | None = None) -> object:
    sf = info["salesforce"]
    response = requests.request(
        method, f"{sf['admin_url']}{path}", json=body, timeout=10, verify=sf["ca_bundle"],
        headers={"X-Admin-Token": sf["admin_token"]},
    )  # fmt: skip
    response.raise_for_status()
    return response.json()


def test_a_write_refused_twice_then_landed_in_logs_and_trace(sandbox_dir, tmp_path):
    info, port = sandbox_dir
    hp = info["hopin"]
    # The next two sObject Collections calls refuse the record (a lock, retryable); the third
    # lands. With max_retries = 0 the plugin retries nothing in place: each is an attempt.
    _sf_admin(
        info,
        "POST",
        "/faults",
        {"endpoint": "collections", "status": 200, "error_code": "UNABLE_TO_LOCK_ROW",
         "per_record": True, "times": 2},
    )  # fmt: skip
    runner = _spawn(tmp_path, "run", "--log-format", "json", "--log-level", "debug")
    try:
        wait_until(
            "the runner's liveness endpoint",
            lambda: _ok(f"http://127.0.0.1:{port}/livez"),
        )
        registration = requests.post(
            f"{hp['admin_url']}/events/{hp['event_id']}/registrations",
            json={"ticketId": hp["ticket_id"], "email": "grace@example.com",
                  "firstName": "Grace", "lastName": "Hopper"},
            timeout=10,
        ).json()["data"]["id"]  # fmt: skip

        def landed() -> dict | None:
            result = _cli(tmp_path, "trace", "sandbox", "export_registrations", registration,
                          "--json")  # fmt: skip
            trace = json.loads(result.stdout)
            return trace if trace["links"] and not trace["now"] else None

        trace = wait_until("the registration written after two refusals", landed, timeout=90)
    finally:
        runner.send_signal(signal.SIGTERM)
        _, log = runner.communicate(timeout=60)
    jsonschema.validate(trace, TRACE_SCHEMA)
    kinds = [e["kind"] for e in trace["events"]]
    # The webhook marks it, unless the runner's poller read the registration first (a loaded
    # machine delays the delivery): either way the trace names what marked it.
    assert kinds[0] == "marked" and trace["events"][0]["trigger"] in ("notification", "poll")
    retries = [e for e in trace["events"] if e["kind"] == "retry"]
    assert [e["attempt"] for e in retries] == [1, 2], kinds
    # Both may mark it: a mark that comes while the batch writes requeues the row (its next run
    # finds the record unchanged) instead of ending it.
    after_write = kinds[kinds.index("wrote") + 1]
    assert kinds.count("wrote") == 1 and kinds[-1] == "done", kinds
    assert after_write == "done" or (after_write == "requeued" and kinds.count("marked") == 2), (
        kinds
    )
    assert kinds.index("retry") < kinds.index("wrote")
    wrote = trace["events"][kinds.index("wrote")]
    assert wrote["object"] == "Lead" and wrote["target"] == trace["links"][0]["target_id"]
    assert "Email" in wrote["fields"] and "values" not in wrote
    # The audit trail's section: the one write, to the linked Lead, with field names only.
    [write] = trace["writes"]
    assert write["record_id"] == trace["links"][0]["target_id"] and "Email" in write["fields"]
    # Values only on request; the text form names the steps.
    shown = _cli(tmp_path, "trace", "sandbox", "export_registrations", registration, "--values")
    assert shown.returncode == 0, shown.stderr
    print(shown.stdout)  # the closing note shows it: pytest -s tests/test_observe_cli.py
    assert "grace@example.com" in shown.stdout and "attempt 2" in shown.stdout
    assert "grace@example.com" not in json.dumps(trace)

    # The log: JSON lines with the context as fields, a line per batch and per refusal.
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    batches = [r for r in lines if r["message"].startswith("batch of sandbox/export_registrations")]
    assert batches and all(r["org"] == "sandbox" and r["level"] == "INFO" for r in batches)
    assert any("1 retry" in r["message"] for r in batches)
    assert any(r.get("entity") == registration and r.get("outcome") == "retry" for r in lines)
    for secret in _secrets(info, tmp_path / "eventsync-sandbox.env"):
        assert secret not in log, "a secret value appears in the log"


def test_trace_of_unknown_things(sandbox_dir, tmp_path):
    from eventsync.store import StateStore

    # No state store yet: trace refuses to create one (exit 2) and says how one comes about.
    result = _cli(tmp_path, "trace", "sandbox", "export_registrations", "no-such-id")
    assert result.returncode == 2 and "eventsync run" in result.stderr, result.stderr
    assert not (tmp_path / "eventsync-sandbox.sqlite").exists()
    StateStore.open(path=str(tmp_path / "eventsync-sandbox.sqlite")).close()
    result = _cli(tmp_path, "trace", "sandbox", "export_registrations", "no-such-id")
    assert result.returncode == 1 and "nothing recorded for 'no-such-id'" in result.stderr
    result = _cli(tmp_path, "trace", "nowhere", "export_registrations", "x")
    assert result.returncode == 2 and "no organisation 'nowhere'" in result.stderr
    result = _cli(tmp_path, "trace", "sandbox", "exprot_registrations", "x")
    assert result.returncode == 2 and "no flow 'exprot_registrations'" in result.stderr
    assert "Traceback" not in result.stderr


def _ok(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


def test_status_shows_each_retrying_records_last_error(tmp_path):
    from eventsync.models import RemoteFailure
    from eventsync.store import Failed, StateStore

    assert _cli(tmp_path, "init").returncode == 0
    store = StateStore.open(path=str(tmp_path / "eventsync.sqlite"))
    store.mark("acme", "export_registrations", "reg-7", hint="notification")
    [item] = store.lease("test-worker")
    failure = RemoteFailure(
        "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access", retryable=True
    )
    assert store.fail_many([Failed(item, failure)]) == ["retry"]
    store.close()
    status = json.loads(_cli(tmp_path, "status", "--json").stdout)
    [row] = status["retrying"]
    assert (row["entity"], row["attempts"], row["code"]) == ("reg-7", 1, "UNABLE_TO_LOCK_ROW")
    table = _cli(tmp_path, "status").stdout
    assert "retrying records" in table and "UNABLE_TO_LOCK_ROW: unable to obtain" in table
    trace = _cli(tmp_path, "trace", "acme", "export_registrations", "reg-7")
    assert trace.returncode == 0 and "retrying" in trace.stdout and "notification" in trace.stdout


def test_log_options_and_settings_are_checked(tmp_path):
    assert _cli(tmp_path, "init").returncode == 0
    result = _cli(tmp_path, "run", "--log-level", "loud")
    assert result.returncode == 2 and "'loud' is not one of" in result.stderr
    result = _cli(tmp_path, "backfill", "export_registrations", "--log-format", "xml")
    assert result.returncode == 2 and "'xml' is not one of" in result.stderr
    config = tmp_path / "eventsync.toml"
    config.write_text(config.read_text().replace('log_format = "text"', 'log_format = "yaml"'))
    result = _cli(tmp_path, "status")
    assert result.returncode == 2 and "$.engine.log_format: must be text or json" in result.stderr
    assert "Traceback" not in result.stderr
