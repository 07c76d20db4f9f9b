"""`eventsync preview` and `eventsync backfill --dry-run`, run as commands against the sandboxes:
their JSON validates against docs/schemas/preview.schema.json, the table has a summary, bad
input is a short error with exit code 2, and nothing is written anywhere; then the real
backfill and `eventsync audit` showing what it wrote."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema

from .conftest import run_cli, write_cli_config

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "schemas" / "preview.schema.json").read_text())
FLOWS = {
    "export_registrations": {
        "target_object": "Lead",
        "match_key": "Email",
        "fields": [
            {"target": "LastName", "source": "lastName"},
            {"target": "Email", "source": "email"},
            {"target": "Company", "constant": "Hopin attendee"},
        ],
    }
}


def test_preview_and_dry_run_commands(make_env, tmp_path):
    env = make_env(triggers=False, pollers=False, start=False, flows=FLOWS)
    write_cli_config(env, tmp_path, FLOWS)
    env.sf_insert("Lead", [{"Email": "old@example.com", "LastName": "Old", "Company": "Kept"}])
    new = env.register("new@example.com", lastName="New")
    env.register("old@example.com", lastName="Renamed")
    leads = sorted((x.id, x.get("LastName"), x.get("Company")) for x in env.leads())

    result = run_cli(tmp_path, "preview", "e2e", "export_registrations", "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    jsonschema.validate(out, SCHEMA)
    assert out["summary"] == {"create": 1, "update": 1, "skip": 0, "fail": 0}
    [update] = [r for r in out["records"] if r["action"] == "update"]
    assert update["writes"][0]["changes"] == {"LastName": {"before": "Old", "after": "Renamed"}}
    assert "Company" in update["writes"][0]["held"]

    result = run_cli(tmp_path, "preview", "e2e", "export_registrations", "--entity", new, "--json")
    assert result.returncode == 0, result.stderr
    assert [r["entity"] for r in json.loads(result.stdout)["records"]] == [new]

    result = run_cli(tmp_path, "preview", "e2e", "export_registrations", "--limit", "1")
    assert result.returncode == 0, result.stderr
    assert "summary" in result.stdout and "create" in result.stdout

    result = run_cli(tmp_path, "backfill", "export_registrations", "--dry-run", "--json")
    assert result.returncode == 0, result.stderr
    dry = json.loads(result.stdout)
    assert dry["dry_run"] is True
    jsonschema.validate(dry["orgs"]["e2e"], SCHEMA)
    assert dry["orgs"]["e2e"]["summary"]["create"] == 1

    assert sorted((x.id, x.get("LastName"), x.get("Company")) for x in env.leads()) == leads
    result = run_cli(tmp_path, "status", "--json")
    assert result.returncode == 0, result.stderr
    assert all(f["pending"] == 0 for f in json.loads(result.stdout)["flows"])

    # The real run, then its audit trail: one entry per record written, field names only.
    result = run_cli(tmp_path, "backfill", "export_registrations", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    result = run_cli(tmp_path, "audit", "--flow", "export_registrations", "--json")
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)["entries"]
    assert sorted((e["operation"], tuple(e["fields"])) for e in entries) == [
        ("insert", ("LastName", "Email", "Company")),
        ("update", ("LastName",)),
    ]
    assert "new@example.com" not in result.stdout  # names, never values
    result = run_cli(tmp_path, "audit", "--entity", new)
    assert result.returncode == 0 and "insert" in result.stdout, result.stderr

    for args, word in (
        (("preview", "nosuch", "export_registrations"), "no organisation 'nosuch'"),
        (("preview", "e2e", "attendance"), "not configured"),
        (("preview", "e2e", "export_registrations", "--limit", "0"), "--limit"),
    ):
        result = run_cli(tmp_path, *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert word in result.stdout + result.stderr
        assert "Traceback" not in result.stderr
