"""Every ``--json`` output has a JSON Schema in docs/schemas/<command>.schema.json, and the
REAL output of each command, run against the sandboxes, validates against it. The scripted
session also shows that ``check`` changes nothing remote, that ``subscribe`` makes the Hopin
subscription and ends the stale one, and that dead-letter ids are never reused.

To add a command with ``--json``: write its schema and add the command lines to ``RUNS`` (each
is run in order in one directory against the same sandboxes; ``{org}``, ``{webhook}`` and
``{entity}``, a dead-lettered registration of ``export_registrations``, are filled in). A
command with a ``--json`` option and no schema or no run fails
``test_every_json_command_has_a_schema_and_a_run``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import click
import jsonschema
import pytest
import requests
import tomli_w
from eventsync.cli import cli
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import sandbox_config_files

ROOT = Path(__file__).resolve().parents[1]
SCHEMAS = ROOT / "docs" / "schemas"
EVENTSYNC = str(Path(sys.executable).with_name("eventsync"))

#: command -> the command lines whose output must validate against its schema, in run order.
#: Between the steps, the session injects a per-record Salesforce fault before the backfill
#: (so status shows dead letters) and changes the webhook URL before the last subscribe.
RUNS: dict[str, list[list[str]]] = {
    "check": [["check", "--json"], ["check", "--json", "--offline"]],
    "subscribe": [["subscribe", "--json"], ["subscribe", "--json", "--org", "acme"]],
    "backfill": [["backfill", "export_registrations", "--json"]],
    "status": [["status", "--json"]],
    "retry": [["retry", "--json"]],
    "plugins": [["plugins", "--json"]],
    "preview": [["preview", "{org}", "export_registrations", "--limit", "5", "--json"]],
    "audit": [["audit", "--org", "{org}", "--json"], ["audit", "--entity", "{entity}", "--json"]],
    # An address nobody has: the erasure of a real one is tests/e2e/test_forget.py's.
    "forget": [["forget", "nobody@example.invalid", "--json"]],
    "trace": [
        ["trace", "acme", "export_registrations", "{entity}", "--json"],
        ["trace", "acme", "export_registrations", "{entity}", "--json", "--values"],
    ],
}


def json_commands() -> set[str]:
    """The eventsync commands that take ``--json``."""
    return {
        name
        for name, command in cli.commands.items()
        if any(isinstance(p, click.Option) and "--json" in p.opts for p in command.params)
    }


def test_every_json_command_has_a_schema_and_a_run() -> None:
    schemas = {p.name.removesuffix(".schema.json") for p in SCHEMAS.glob("*.schema.json")}
    assert json_commands() <= schemas, f"no schema for {json_commands() - schemas}"
    assert schemas <= set(RUNS), f"no run validates {schemas - set(RUNS)}"


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.schema.json")), ids=lambda p: p.name)
def test_schemas_are_valid_json_schema(path: Path) -> None:
    schema = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema.get("description") and schema.get("title")


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [EVENTSYNC, *args], cwd=cwd, capture_output=True, text=True, timeout=300,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


def _subscription_posts(admin_url: str) -> int:
    calls = requests.get(f"{admin_url}/counters", timeout=10).json()["calls"]
    return sum(n for key, n in calls.items() if key.endswith("/dataSubscriptions"))


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory, acme_pair: Any) -> dict[str, Any]:
    """Runs RUNS in order against the sandboxes; returns outputs and what was observed."""
    hooks = Hooks(make_plugin_manager(environ={}))
    pair = acme_pair
    cwd = tmp_path_factory.mktemp("scripted")
    text, secrets = sandbox_config_files(pair.info(), hooks=hooks, secrets_file="secrets.env")
    data = tomllib.loads(text)
    first_url = "http://127.0.0.1:9/hooks/acme/hopin"
    data["orgs"]["acme"]["systems"]["hopin"]["webhook_url"] = first_url
    (cwd / "eventsync.toml").write_text(tomli_w.dumps(data))
    (cwd / "secrets.env").write_text(secrets)
    hopin_admin = pair.platform.info()["admin_url"]
    sf = pair.crm.info()
    observed: dict[str, Any] = {"outputs": {}, "first_url": first_url}

    def step(command: str, argv: list[str]) -> Any:
        result = _run(cwd, *argv)
        assert "Traceback" not in result.stderr, result.stderr
        document = json.loads(result.stdout)
        observed["outputs"].setdefault(command, []).append((argv, document))
        return document

    posts = _subscription_posts(hopin_admin)
    for argv in RUNS["check"]:
        step("check", argv)
    observed["posts_by_check"] = _subscription_posts(hopin_admin) - posts
    observed["subscribed"] = step("subscribe", RUNS["subscribe"][0])
    requests.post(
        f"{sf['admin_url']}/faults",
        json={"endpoint": "collections", "per_record": True, "status": 200,
              "error_code": "REQUIRED_FIELD_MISSING"},
        headers={"X-Admin-Token": sf["admin_token"]}, verify=sf["ca_bundle"], timeout=10,
    ).raise_for_status()  # fmt: skip
    step("backfill", RUNS["backfill"][0])
    observed["dead_before"] = step("status", RUNS["status"][0])["dead_letters"]
    step("retry", RUNS["retry"][0])
    # The retried rows fail again (the fault is still there): new dead letters.
    again = _run(cwd, "backfill", "export_registrations", "--json", "--restart")
    assert again.returncode == 1, again.stdout + again.stderr
    observed["dead_after"] = json.loads(_run(cwd, "status", "--json").stdout)["dead_letters"]
    step("plugins", RUNS["plugins"][0])
    # The fault removed, the records land: later commands (trace, audit) see whole journeys.
    requests.delete(
        f"{sf['admin_url']}/faults",
        headers={"X-Admin-Token": sf["admin_token"]}, verify=sf["ca_bundle"], timeout=10,
    ).raise_for_status()  # fmt: skip
    landed = _run(cwd, "backfill", "export_registrations", "--json", "--restart")
    assert landed.returncode == 0, landed.stdout + landed.stderr
    for command, lines in RUNS.items():
        if command not in ("check", "subscribe", "backfill", "status", "retry", "plugins"):
            # Commands added later: run as given, with {org}, {webhook} and {entity} (a
            # dead-lettered registration) filled in.
            names = {"org": "acme", "webhook": first_url,
                     "entity": observed["dead_after"][0]["entity"]}  # fmt: skip
            for argv in lines:
                step(command, [a.format(**names) for a in argv])
    data["orgs"]["acme"]["systems"]["hopin"]["webhook_url"] = first_url + "/moved"
    (cwd / "eventsync.toml").write_text(tomli_w.dumps(data))
    observed["moved"] = step("subscribe", RUNS["subscribe"][1])
    return observed


@pytest.mark.slow  # the scripted session runs the real commands against the sandboxes
@pytest.mark.parametrize("command", sorted(RUNS))
def test_real_output_validates_against_its_schema(session: dict[str, Any], command: str) -> None:
    schema = json.loads((SCHEMAS / f"{command}.schema.json").read_text())
    outputs = session["outputs"].get(command)
    assert outputs, f"the session ran no {command}"
    for argv, document in outputs:
        errors = list(jsonschema.Draft202012Validator(schema).iter_errors(document))
        assert not errors, f"{' '.join(argv)}: {[e.message for e in errors][:5]}"


@pytest.mark.slow
def test_check_changes_nothing_remote(session: dict[str, Any]) -> None:
    assert session["posts_by_check"] == 0


@pytest.mark.slow
def test_subscribe_makes_the_subscription_and_ends_the_stale_one(session: dict[str, Any]):
    hopin = {s["system"]: s for s in session["subscribed"]["systems"]}["hopin"]
    [active] = hopin["active"]
    assert active["target"] == session["first_url"] and hopin["created"] == [active["id"]]
    moved = {s["system"]: s for s in session["moved"]["systems"]}["hopin"]
    assert [s["target"] for s in moved["removed"]] == [session["first_url"]]
    assert [s["target"] for s in moved["active"]] == [session["first_url"] + "/moved"]
    assert session["moved"]["ok"] is True


@pytest.mark.slow
def test_dead_letter_ids_are_not_reused_after_retry(session: dict[str, Any]) -> None:
    before = {d["id"] for d in session["dead_before"]}
    after = {d["id"] for d in session["dead_after"]}
    assert len(before) == 3 and len(after) == 3
    assert min(after) > max(before), (before, after)


@pytest.mark.slow
def test_audit_and_trace_show_the_writes_that_landed(session: dict[str, Any]) -> None:
    [(_, by_org), (_, by_entity)] = session["outputs"]["audit"]
    assert by_org["entries"] and all(e["org"] == "acme" for e in by_org["entries"])
    [entry] = by_entity["entries"]  # the once-dead registration, written once when it landed
    [(_, trace), _] = session["outputs"]["trace"]
    assert [w["record_id"] for w in trace["writes"]] == [entry["record_id"]]
