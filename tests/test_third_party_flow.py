"""A flow from another distribution is configured, checked and runs like a built-in one.

The example flow of docs/example-flow is installed with pip into its own directory and found
through its entry point by real ``eventsync`` processes, against both sandboxes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from eventsync.models import Filter, PullRequest
from eventsync.plugins import Hooks, make_plugin_manager

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "docs" / "example-flow"
EVENTSYNC = str(Path(sys.executable).with_name("eventsync"))
CODE_FIELD = "Ticket_Code__c"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> str:
    """The example flow installed into a directory of its own."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-deps",
         "--no-build-isolation", "--target", str(target), str(EXAMPLE)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return str(target)


@pytest.fixture(scope="module")
def sandboxes() -> Iterator[dict[str, Any]]:
    """Both sandboxes; the Salesforce one has a code field on Campaign."""
    hooks = Hooks(make_plugin_manager(environ={}))
    field = {"name": CODE_FIELD, "type": "string", "length": 80, "label": "Ticket code"}
    crm = hooks.start_sandbox("salesforce", {"config": {"custom_fields": {"Campaign": [field]}}})
    platform = hooks.start_sandbox("hopin", {})
    try:
        yield {"hooks": hooks, "salesforce": crm, "hopin": platform}
    finally:
        platform.stop()
        crm.stop()


def write_config(tmp_path: Path, sandboxes: dict[str, Any], **flow: Any) -> Path:
    """A config enabling only the third-party flow, and its secrets file."""
    settings = {s: sandboxes[s].settings("acme") for s in ("salesforce", "hopin")}
    table = {
        "target_object": "Campaign",
        "name_field": "Name",
        "code_field": CODE_FIELD,
        "poll_interval": 1.0,
        **flow,
    }
    data = {
        "engine": {"state": "state.sqlite", "secrets_file": "secrets.env"},
        "orgs": {
            "acme": {
                "plan": "business",
                "plugins": ["salesforce", "hopin", "ticket_campaigns"],
                "systems": {s: dict(v.options) for s, v in settings.items()},
                "flows": {"ticket_campaigns": table},
            }
        },
    }
    (tmp_path / "secrets.env").write_text(
        "".join(f"{k}={v}\n" for s in settings.values() for k, v in (s.env or {}).items())
    )
    path = tmp_path / "eventsync.toml"
    path.write_text(tomli_w.dumps(data))
    return path


def run(site: str | None, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": site} if site else dict(os.environ)
    env.pop("EVENTSYNC_PLUGINS", None)
    return subprocess.run(
        [EVENTSYNC, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=180
    )


def test_a_third_party_flow_is_configured_checked_and_runs(site, sandboxes, tmp_path):
    config = write_config(tmp_path, sandboxes)
    checked = run(site, "check", "--config", str(config), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    done = run(site, "backfill", "ticket_campaigns", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    code = sandboxes["hopin"].info()["ticket_integration_code"]
    crm = sandboxes["hooks"].authenticate(sandboxes["salesforce"].settings("acme"))
    request = PullRequest(
        "Campaign", fields=("Name", CODE_FIELD), filters=(Filter(CODE_FIELD, "=", code),)
    )
    [campaign] = sandboxes["hooks"].pull(crm, request)
    assert campaign.get("Name")
    # Run again: the ticket is unchanged, nothing new is created.
    again = run(
        site, "backfill", "ticket_campaigns", "--restart", "--config", str(config), cwd=tmp_path
    )
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(list(sandboxes["hooks"].pull(crm, request))) == 1


def test_its_settings_are_checked_by_its_own_schema(site, sandboxes, tmp_path):
    config = write_config(tmp_path, sandboxes, colour="red", poll_interval="often")
    result = run(site, "check", "--offline", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "$.orgs.acme.flows.ticket_campaigns.colour: unknown setting" in result.stderr
    assert "$.orgs.acme.flows.ticket_campaigns.poll_interval: expected a number" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_check_finds_a_field_the_crm_does_not_have(site, sandboxes, tmp_path):
    config = write_config(tmp_path, sandboxes, code_field="No_Such_Field__c")
    result = run(site, "check", "--json", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "$.orgs.acme.flows.ticket_campaigns.code_field" in result.stdout


def test_without_its_plugin_the_flow_is_a_configuration_problem(sandboxes, tmp_path):
    config = write_config(tmp_path, sandboxes)
    result = run(None, "check", "--offline", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "no installed plugin provides the flow 'ticket_campaigns'" in result.stderr


def test_built_in_flows_refuse_to_be_blocked(sandboxes, tmp_path):
    config = write_config(tmp_path, sandboxes)
    env = {**os.environ, "EVENTSYNC_DISABLE_PLUGINS": "builtin_flows"}
    result = subprocess.run(
        [EVENTSYNC, "check", "--offline", "--config", str(config)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert "the built-in plugin 'builtin_flows' cannot be blocked" in result.stderr
    assert "Traceback" not in result.stderr
