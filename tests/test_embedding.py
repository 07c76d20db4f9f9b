"""docs/examples/embedded_host.py: eventsync inside a host application's own web process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import attrs
import pytest
import requests
from eventsync.config import Config, EngineConfig, FlowsConfig, OrgConfig
from eventsync.engine import Engine
from eventsync.errors import ConfigurationError
from eventsync.models import PullRequest, PushItem, PushRequest
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import free_port, sandbox_config_files, start_sandboxes
from eventsync.waiting import wait_until
from eventsync_salesforce.sandbox.wiring import LINK_FIELD, TICKET_CODE_FIELD

EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "examples" / "embedded_host.py"


def test_the_example_host_application_syncs_in_its_own_process(tmp_path):
    hooks = Hooks(make_plugin_manager(environ={}))
    port = free_port()
    host = f"http://127.0.0.1:{port}"
    pair = start_sandboxes(
        hooks, crm="salesforce", platform="hopin", org="acme", endpoint=None, triggers=False
    )
    try:
        # The host's own routes receive the notifications.
        sf = pair.crm.info()
        requests.post(
            f"{sf['admin_url']}/outbound/rules",
            verify=sf["ca_bundle"],
            timeout=10,
            headers={"X-Admin-Token": sf["admin_token"]},
            json={
                "name": "host",
                "object": "CampaignMember",
                "endpoint_url": f"{host}/integrations/acme/salesforce",
                "fields": ["Id"],
            },
        ).raise_for_status()
        info = pair.info()
        info["hopin"]["settings"]["webhook_url"] = f"{host}/integrations/acme/hopin"
        toml_text, secrets = sandbox_config_files(info, hooks=hooks, secrets_file="secrets.env")
        (tmp_path / "eventsync.toml").write_text(toml_text)
        (tmp_path / "secrets.env").write_text(secrets)

        proc = subprocess.Popen(
            [sys.executable, str(EXAMPLE), "--config", "eventsync.toml", "--port", str(port)],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ},
        )
        try:
            assert "host listening" in proc.stdout.readline()
            crm = hooks.authenticate(pair.crm.settings("acme"))

            def insert(obj, fields):
                [r] = hooks.push(crm, PushRequest(obj, "insert", (PushItem("x", fields),)))
                assert r.ok, r.error
                return r.id

            campaign = insert(
                "Campaign",
                {"Name": "Host", TICKET_CODE_FIELD: info["hopin"]["ticket_integration_code"]},
            )
            lead = insert(
                "Lead", {"LastName": "Hopper", "Company": "Navy", "Email": "grace@example.com"}
            )
            member = insert("CampaignMember", {"CampaignId": campaign, "LeadId": lead})

            def link():
                [row] = hooks.pull(
                    crm, PullRequest("CampaignMember", fields=("Id", LINK_FIELD), ids=(member,))
                )
                return row.get(LINK_FIELD)

            wait_until("the link written back through the host's route", link)
            resync = requests.post(
                f"{host}/admin/resync/acme/import_registrations/{member}", timeout=5
            )
            assert resync.status_code == 202
            status = requests.get(f"{host}/admin/status", timeout=5).json()
            assert {f["flow"] for f in status["flows"]} >= {"import_registrations", "magic_links"}
            bad = requests.post(f"{host}/integrations/acme/hopin", data=b"{}", timeout=5)
            assert bad.status_code == 401  # unsigned delivery refused, nothing stored
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
    finally:
        pair.stop()


def test_config_objects_made_in_code_are_validated(tmp_path):
    org = OrgConfig(
        plan="free",
        plugins=("salesforce", "hopin"),
        systems={"salesforce": {}, "hopin": {}},
        flows=FlowsConfig(export_registrations={"target_object": "Lead"}),
    )
    with pytest.raises(ConfigurationError, match=r"\$\.orgs\.acme\.plan: unknown plan 'free'"):
        Engine(Config(orgs={"acme": org}))
    engine = Engine(
        Config(
            orgs={"acme": attrs.evolve(org, plan="business")},
            engine=EngineConfig(state=str(tmp_path / "s.sqlite")),
        )
    )
    resolved = engine.config.org("acme")
    assert resolved.name == "acme"
    # A flow table given in code is structured with the CRM plugin's defaults, like a file's.
    export = resolved.flows["export_registrations"]
    assert export.match_key == "Email"
    assert [(f.target, f.source) for f in export.fields] == [
        ("FirstName", "firstName"),
        ("LastName", "lastName"),
        ("Email", "email"),
    ]
    assert (resolved.crm, resolved.event_platform) == ("salesforce", "hopin")
    engine.close()
