"""`eventsync sandbox`, `init --sandbox` and `demo` choose their systems among the installed
plugins (real processes, as a user runs them)."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
import requests
from eventsync.sandbox_env import free_port

EVENTSYNC = str(Path(sys.executable).with_name("eventsync"))
ACME_PLUGIN = """
from eventsync import hookimpl
from eventsync.sandbox_env import SandboxSystem


@hookimpl
def sandbox_systems():
    return [SandboxSystem("acmecrm", "crm", "Acme CRM")]
"""


def run(cwd: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 120):
    return subprocess.run(
        [EVENTSYNC, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def second_crm(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """An environment where a second CRM plugin (from its own distribution) wires a sandbox."""
    site = tmp_path_factory.mktemp("site")
    dist = site / "acme_crm-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-crm\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[eventsync]\nacmecrm_sandbox = acme_crm_sandbox\n")
    (site / "acme_crm_sandbox.py").write_text(ACME_PLUGIN)
    return {"PYTHONPATH": str(site)}


def start_sandbox_command(cwd: Path, *args: str) -> tuple[subprocess.Popen[str], dict]:
    """`eventsync sandbox ARGS` running, and the JSON line it printed."""
    proc = subprocess.Popen(
        [EVENTSYNC, "sandbox", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = proc.stdout.readline() if proc.stdout else ""
    if not line:
        proc.kill()
        raise AssertionError(proc.stderr.read() if proc.stderr else "no output")
    return proc, json.loads(line)


def test_sandbox_with_named_systems_writes_its_files_for_the_owner_only(tmp_path):
    proc, info = start_sandbox_command(
        tmp_path,
        "--crm",
        "salesforce",
        "--platform",
        "hopin",
        "--endpoint",
        f"http://127.0.0.1:{free_port()}",
        "--info-file",
        "sandboxes.json",
    )
    try:
        assert (info["crm"], info["event_platform"]) == ("salesforce", "hopin")
        written = tmp_path / "sandboxes.json"
        assert json.loads(written.read_text()) == info
        assert mode(written) == 0o600  # it holds every sandbox credential

        result = run(tmp_path, "init", "--sandbox", "--sandbox-info", "sandboxes.json")
        assert result.returncode == 0, result.stderr
        org = tomllib.loads((tmp_path / "eventsync.toml").read_text())["orgs"]["sandbox"]
        assert (org["crm"], org["event_platform"]) == ("salesforce", "hopin")
        assert set(org["flows"]) == {
            "export_registrations",
            "import_registrations",
            "magic_links",
            "attendance",
        }
        assert org["systems"]["hopin"]["webhook_url"].endswith("/hooks/sandbox/hopin")
        assert mode(tmp_path / "eventsync-sandbox.env") == 0o600
        # The Outbound Message token: named in the config, its value in the secrets file only.
        token = info["salesforce"]["secrets"]["SF_OUTBOUND_TOKEN"]
        assert org["systems"]["salesforce"]["outbound_token_env"] == "SF_OUTBOUND_TOKEN"
        assert token not in (tmp_path / "eventsync.toml").read_text()
        assert f"SF_OUTBOUND_TOKEN={token}\n" in (tmp_path / "eventsync-sandbox.env").read_text()
        # The connected app's private key the sandbox generated is a credential too.
        assert mode(Path(info["salesforce"]["private_key_file"])) == 0o600
        # The summary names the External Client App and user the setup console signs in with.
        oauth = info["salesforce"]["oauth"]
        assert oauth["console_app"]["client_id"] == "3MVG9sandboxEventsyncConsole"
        assert oauth["username"] == "integration@sandbox.example" and oauth["password"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["sandbox", "--crm", "nope"],
            "error: no CRM named 'nope' is installed; installed CRMs: hubspot, salesforce",
        ),
        (
            ["sandbox", "--latency", "fast"],
            "error: unknown latency profile 'fast'; use one of none, realistic",
        ),
        (
            ["demo", "--crm", "nope"],
            "error: no CRM named 'nope' is installed; installed CRMs: hubspot, salesforce",
        ),
        (
            ["demo", "--platform", "salesforce"],
            "error: 'salesforce' is not an event platform but a CRM; installed event "
            "platforms: hopin",
        ),
    ],
)
def test_an_unknown_system_exits_2_listing_the_installed_ones(tmp_path, args, message):
    result = run(tmp_path, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / ".eventsync-sandbox.json").exists()


def test_with_several_crms_installed_the_default_one_runs_and_the_note_names_the_others(
    tmp_path, second_crm
):
    """Salesforce's plugin declares its sandbox the CRMs' default: with HubSpot and a third CRM
    installed, ``eventsync demo`` (``make demo``) still runs Salesforce, saying how to choose."""
    result = run(tmp_path, "demo", env=second_crm, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "against Salesforce and Hopin (RingCentral Events) sandboxes" in result.stdout
    assert "all 8 steps happened" in result.stdout
    assert (
        "note: several CRMs offer a sandbox; using salesforce (the default); --crm NAME chooses "
        "another (acmecrm, hubspot)"
    ) in result.stderr
    assert "Traceback" not in result.stderr

    result = run(tmp_path, "demo", "--crm", "hubspot", env=second_crm, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "against HubSpot and Hopin (RingCentral Events) sandboxes" in result.stdout
    assert "all 7 steps happened" in result.stdout
    assert "note:" not in result.stderr


def test_sandbox_latency_realistic_makes_both_sandboxes_answer_with_delays(tmp_path):
    proc, info = start_sandbox_command(
        tmp_path, "--latency", "realistic", "--latency-seed", "3", "--no-triggers"
    )
    try:
        assert info["salesforce"]["latency"] == info["hopin"]["latency"] == "realistic"
        sf = info["salesforce"]
        started = time.monotonic()
        requests.get(f"{sf['url']}/services/data", verify=sf["ca_bundle"], timeout=30)
        # About 150 ms (the median; seeded, so the same draw every run); only a lower bound
        # is asserted, which no machine load can break.
        assert time.monotonic() - started >= 0.02
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
