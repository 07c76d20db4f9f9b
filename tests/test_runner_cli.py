"""The operator's path, by running the real commands: sandbox -> init --sandbox -> check -> run
-> status; and a backfill killed with SIGKILL and restarted (every record exactly once)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import requests
from eventsync.models import PullRequest, PushItem, PushRequest, SystemSettings
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import free_port
from eventsync.waiting import wait_until
from eventsync_salesforce.sandbox.wiring import LINK_FIELD, TICKET_CODE_FIELD

EVENTSYNC = str(Path(sys.executable).with_name("eventsync"))


def run(cwd: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [EVENTSYNC, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


def _default_sigint() -> None:
    # A suite started in the background by a shell inherits SIGINT ignored, and so would the
    # command: Ctrl-C's tests need it to arrive as it does at a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(cwd: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [EVENTSYNC, *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        preexec_fn=_default_sigint,
    )


@pytest.fixture
def sandboxes(tmp_path, request):
    """`eventsync sandbox` running in tmp_path; yields (info, endpoint port)."""
    port = free_port()
    extra = getattr(request, "param", [])
    proc = start(tmp_path, "sandbox", "--endpoint", f"http://127.0.0.1:{port}", *extra)
    line = proc.stdout.readline()
    assert line, proc.stderr.read()
    info = json.loads(line)
    yield info, port
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0


def salesforce(info) -> tuple[Hooks, object]:
    """A Salesforce connection for acting as a user in the tests."""
    hooks = Hooks(make_plugin_manager(environ={}))
    sf = info["salesforce"]
    conn = hooks.authenticate(
        SystemSettings("salesforce", "test", sf["settings"], env=sf["secrets"])
    )
    return hooks, conn


def insert(hooks, conn, obj, fields) -> str:
    [result] = hooks.push(conn, PushRequest(obj, "insert", (PushItem("x", fields),)))
    assert result.ok, result.error
    return result.id


def test_sandbox_init_check_run_status(sandboxes, tmp_path):
    info, port = sandboxes
    assert {"salesforce", "hopin"} <= set(info)
    assert info["hopin"]["ticket_integration_code"]

    result = run(tmp_path, "init", "--sandbox")
    assert result.returncode == 0, result.stderr
    config_text = (tmp_path / "eventsync.toml").read_text()
    secrets_text = (tmp_path / "eventsync-sandbox.env").read_text()
    assert info["hopin"]["api_key"] not in config_text and info["hopin"]["api_key"] in secrets_text

    result = run(tmp_path, "check")
    assert result.returncode == 0, result.stdout + result.stderr

    # A campaign carrying the ticket code but no "Attended" member status is a finding.
    hooks, conn = salesforce(info)
    campaign = insert(
        hooks,
        conn,
        "Campaign",
        {"Name": "Launch", TICKET_CODE_FIELD: info["hopin"]["ticket_integration_code"]},
    )
    result = run(tmp_path, "check", "--json")
    assert result.returncode == 1
    findings = json.loads(result.stdout)["findings"]
    errors = [f for f in findings if f["severity"] == "error"]
    assert [f["code"] for f in errors] == ["campaign_status"]
    assert "'Attended'" in errors[0]["message"]
    # The sandbox Lead has an external-id field: matching on Email gets advice, not an error.
    assert [f["code"] for f in findings if f["severity"] == "info"] == ["external_id"]
    assert info["hopin"]["api_key"] not in result.stdout
    insert(hooks, conn, "CampaignMemberStatus", {"CampaignId": campaign, "Label": "Attended"})
    assert run(tmp_path, "check").returncode == 0

    runner = start(tmp_path, "run")
    try:
        wait_until("the runner's health endpoint", lambda: _get(f"http://127.0.0.1:{port}/healthz"))
        lead = insert(
            hooks,
            conn,
            "Lead",
            {"LastName": "Lovelace", "Company": "AE", "Email": "ada@example.com"},
        )
        member = insert(hooks, conn, "CampaignMember", {"CampaignId": campaign, "LeadId": lead})

        def link():
            [row] = hooks.pull(
                conn, PullRequest("CampaignMember", fields=("Id", LINK_FIELD), ids=(member,))
            )
            return row.get(LINK_FIELD)

        wait_until("the magic link written back by `eventsync run`", link)
        metrics = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'eventsync_outbox_pending{flow="import_registrations",org="sandbox"}' in metrics
        assert (
            'eventsync_notifications_total{org="sandbox",result="accepted",status="200",'
            'system="salesforce"}' in metrics
        )
        # init --sandbox configured the token the sandbox's rule posts with: the plain route,
        # which Outbound Messages used to be trusted on, is closed.
        token = info["salesforce"]["secrets"]["SF_OUTBOUND_TOKEN"]
        assert f"SF_OUTBOUND_TOKEN={token}" in secrets_text and token not in config_text
        plain = requests.post(
            f"http://127.0.0.1:{port}/hooks/sandbox/salesforce",
            data=b"<not-xml",
            headers={"Content-Type": "text/xml"},
            timeout=5,
        )
        assert plain.status_code == 403 and "token" in plain.text
        bad = requests.post(
            f"http://127.0.0.1:{port}/hooks/sandbox/salesforce/{token}",
            data=b"<not-xml",
            headers={"Content-Type": "text/xml"},
            timeout=5,
        )
        assert bad.status_code == 400 and bad.headers["Content-Type"].startswith("text/plain")
        # SIGHUP (a closed terminal, a supervisor's reload) does not stop the runner.
        runner.send_signal(signal.SIGHUP)
        wait_until(
            "the runner still healthy after SIGHUP",
            lambda: _get(f"http://127.0.0.1:{port}/healthz"),
        )
        assert runner.poll() is None
    finally:
        runner.send_signal(signal.SIGTERM)
        out, err = runner.communicate(timeout=30)
    assert runner.returncode == 0, err
    assert "SIGHUP ignored" in " ".join(err.split())

    status = run(tmp_path, "status", "--json")
    assert status.returncode == 0, status.stderr
    flows = {f["flow"]: f for f in json.loads(status.stdout)["flows"]}
    assert (
        flows["import_registrations"]["last_success_at"] and flows["magic_links"]["last_success_at"]
    )
    table = run(tmp_path, "status")
    assert "import_registrations" in table.stdout and "dead letters" in table.stdout


def _get(url):
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.parametrize(
    "sandboxes", [["--no-triggers", "--seed-registrations", "600"]], indirect=True
)
def test_backfill_killed_with_sigkill_resumes_and_lands_everything_once(sandboxes, tmp_path):
    info, _ = sandboxes
    assert run(tmp_path, "init", "--sandbox").returncode == 0
    # Short leases: the killed process's leases expire quickly and are taken over.
    config = tmp_path / "eventsync.toml"
    config.write_text(
        config.read_text().replace("[engine]\n", "[engine]\nlease_seconds = 3.0\n", 1)
    )
    hooks, conn = salesforce(info)

    def leads():
        return [
            r.get("Email") for r in hooks.pull(conn, PullRequest("Lead", fields=("Id", "Email")))
        ]

    first = start(tmp_path, "backfill", "export_registrations")
    wait_until("some Leads from the first backfill", lambda: len(leads()) >= 30, timeout=60)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    landed_before = len(leads())
    assert landed_before < 600, "the backfill finished before it could be killed"

    second = run(tmp_path, "backfill", "export_registrations", "--json", timeout=300)
    assert second.returncode == 0, second.stdout + second.stderr
    hopin = Hooks(make_plugin_manager(environ={}))
    hp = info["hopin"]
    platform = hopin.authenticate(
        SystemSettings("hopin", "test", hp["settings"], env=hp["secrets"])
    )
    emails = sorted(
        str(r.get("email")).lower() for r in hopin.pull(platform, PullRequest("registration"))
    )
    assert len(emails) == 600
    counted = Counter(str(e).lower() for e in leads())
    assert sorted(counted) == emails
    assert set(counted.values()) == {1}, [e for e, n in counted.items() if n > 1]
    status = json.loads(run(tmp_path, "status", "--json").stdout)
    assert status["dead_letters"] == []


@pytest.mark.parametrize(
    "sandboxes", [["--no-triggers", "--seed-registrations", "300"]], indirect=True
)
def test_backfill_interrupted_with_ctrl_c_exits_130_and_says_how_to_resume(sandboxes, tmp_path):
    info, _ = sandboxes
    assert run(tmp_path, "init", "--sandbox").returncode == 0
    hooks, conn = salesforce(info)

    def leads() -> int:
        return len(list(hooks.pull(conn, PullRequest("Lead", fields=("Email",)))))

    # Small batches, each write slowed down: the backfill is still running when Ctrl-C comes
    # (30 batches, 2 s a write, two workers: about 30 s, while a loaded machine may take
    # several seconds to see the first Leads and send the signal).
    config = tmp_path / "eventsync.toml"
    config.write_text(config.read_text().replace("[engine]\n", "[engine]\nbatch_size = 10\n", 1))
    sf = info["salesforce"]
    requests.post(
        f"{sf['admin_url']}/faults",
        json={"endpoint": "collections", "status": 0, "latency": 2.0},
        headers={"X-Admin-Token": sf["admin_token"]},
        verify=sf["ca_bundle"],
        timeout=10,
    ).raise_for_status()
    first = start(tmp_path, "backfill", "export_registrations")
    wait_until("some Leads from the backfill", lambda: leads() >= 10, timeout=60)
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 130, err
    assert "interrupted" in err and "eventsync backfill export_registrations" in err
    assert "Traceback" not in err
    requests.delete(
        f"{sf['admin_url']}/faults",
        headers={"X-Admin-Token": sf["admin_token"]},
        verify=sf["ca_bundle"],
        timeout=10,
    ).raise_for_status()
    again = run(tmp_path, "backfill", "export_registrations", "--json", timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert leads() == 300
