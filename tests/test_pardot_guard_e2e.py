"""pardot_guard end to end: one deployment, two organisations, only one of them guarded.

Each org has its own Salesforce and Hopin sandboxes (over HTTPS/HTTP, through the real
plugins) and the same data: a confirmed Lead, an opted-out Lead and a Lead whose Confirmed
Opt-In is still pending, each a CampaignMember of a Campaign carrying the Hopin ticket code.
The guarded org invites only the confirmed person and records why the others were denied;
the open org invites everyone. A CampaignMember loaded through the Data Import Wizard path
(no outbound message) and one created by an automation user lacking the permission the
outbound rule needs both sync through the poller, and the guarded org records pardot_guard's
finding naming the likely causes. ``eventsync status`` and ``eventsync plugins`` show it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
import requests
import tomli_w
from eventsync.checks import check_org
from eventsync.config import parse_config
from eventsync.engine import Engine
from eventsync.errors import ConfigurationError
from eventsync.models import Filter, PullRequest, PushItem, PushRequest
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import SandboxPair, free_port, start_sandboxes
from eventsync.server import Server
from eventsync.waiting import wait_until
from eventsync_salesforce.sandbox.wiring import TICKET_CODE_FIELD

GUARDED, OPEN = "guarded", "open"
CONSENT = "Confirmed_Opt_In__c"
PERSON_FIELDS = {
    "Lead": [{"name": CONSENT, "type": "picklist", "values": ["Pending", "Confirmed"]}],
    "Contact": [{"name": CONSENT, "type": "picklist", "values": ["Pending", "Confirmed"]}],
}
GUARD_OPTIONS = {
    "confirmed_opt_in": True,
    "consent_field": CONSENT,
    "consent_values": ["Confirmed"],
    "permissions": ["PermissionsApiEnabled", "PermissionsRunFlow"],
    "automation_users": [
        {"username": "b2bma@acme.example", "role": "Account Engagement connector user"},
        {"username": "integration@sandbox.example", "role": "outbound message user to send as"},
    ],
}
WAIT = 120.0  # generous: a condition that holds returns at once; CI is loaded


def _wait(what: str, probe: Callable[[], Any], timeout: float = WAIT) -> Any:
    return wait_until(what, probe, timeout, interval=0.1)


def _cli(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", "from eventsync.cli import main; main()", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.stdout, done.stderr
    return json.loads(done.stdout)


class Org:
    """One organisation's sandboxes and the engine-side handles used by the test."""

    def __init__(self, name: str, pair: SandboxPair, hooks: Hooks) -> None:
        self.name, self.pair, self.hooks = name, pair, hooks
        sf = pair.crm.info()
        self.sf_admin = requests.Session()
        self.sf_admin.verify = sf["ca_bundle"]
        self.sf_admin.headers["X-Admin-Token"] = sf["admin_token"]
        self.sf_admin_url = sf["admin_url"]
        self.sf_ca = sf["ca_bundle"]
        self.hopin = pair.platform.info()
        self.ids: dict[str, str] = {}

    def bind(self, engine: Engine) -> None:
        self.crm = engine.connection(self.name, "crm")
        self.platform = engine.connection(self.name, "platform")

    def insert(self, obj: str, **fields: Any) -> str:
        [result] = self.hooks.push(self.crm, PushRequest(obj, "insert", (PushItem("k", fields),)))
        assert result.ok, result.error
        return str(result.id)

    def admin_insert(self, path: str, obj: str, as_user: str | None = None, **fields: Any) -> str:
        body: dict[str, Any] = {"object": obj, "records": [fields]}
        if as_user:
            body["as_user"] = as_user
        response = self.sf_admin.post(
            f"{self.sf_admin_url}/{path}", json=body, timeout=10, verify=self.sf_ca
        )
        response.raise_for_status()
        [row] = response.json()
        assert row["success"], row
        return str(row["id"])

    def invited(self) -> set[str]:
        return {
            str(r.get("email")).lower()
            for r in self.hooks.pull(self.platform, PullRequest("magicLink"))
        }

    def lead_first_name(self, email: str) -> Any:
        rows = list(
            self.hooks.pull(
                self.crm,
                PullRequest(
                    "Lead", fields=("Id", "FirstName"), filters=(Filter("Email", "=", email),)
                ),
            )
        )
        return rows[0].get("FirstName") if rows else None


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    hooks = Hooks(make_plugin_manager(environ={}))
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    # The guarded org's outbound rule fires only for changes by a user holding "Run Flows"
    # (the sandbox's model of automation that silently never fires); the integration user
    # holds it, the Account Engagement connector user does not.
    guarded_pair = start_sandboxes(
        hooks,
        crm="salesforce",
        platform="hopin",
        org=GUARDED,
        endpoint=endpoint,
        triggers=False,
        options={
            "salesforce": {
                "config": {
                    "custom_fields": PERSON_FIELDS,
                    "permission_sets": [
                        {
                            "name": "B2BMA",
                            "label": "B2BMA Connector",
                            "permissions": ["PermissionsApiEnabled"],
                        }
                    ],
                    "users": [
                        {
                            "username": "b2bma@acme.example",
                            "last_name": "B2BMA Integration",
                            "permission_sets": ["B2BMA"],
                        }
                    ],
                    "outbound_messages": [
                        {
                            "name": "eventsync_campaign_member",
                            "object": "CampaignMember",
                            "endpoint_url": f"{endpoint}/hooks/{GUARDED}/salesforce",
                            "fields": ["Id", "CampaignId"],
                            "required_permission": "PermissionsRunFlow",
                        }
                    ],
                }
            }
        },
    )
    open_pair = start_sandboxes(
        hooks,
        crm="salesforce",
        platform="hopin",
        org=OPEN,
        endpoint=endpoint,
        options={"salesforce": {"config": {"custom_fields": PERSON_FIELDS}}},
    )
    tmp = tmp_path_factory.mktemp("pardot_guard_e2e")
    flows = {
        "import_registrations": {
            "source_object": "CampaignMember",
            "ticket_code_field": f"Campaign.{TICKET_CODE_FIELD}",
            "poll_interval": 0.5,
            "trigger_window": 1.0,
            "fields": [
                {"target": "email", "source": "Email"},
                {"target": "firstName", "source": "FirstName"},
                {"target": "lastName", "source": "LastName"},
            ],
        },
        "export_registrations": {
            "target_object": "Lead",
            "match_key": "Email",
            "poll_interval": 0.5,
            "fields": [
                {"target": "FirstName", "source": "firstName"},
                {"target": "LastName", "source": "lastName"},
                {"target": "Email", "source": "email"},
                {"target": "Company", "constant": "Hopin attendee"},
            ],
        },
    }
    guarded_data = _org_data(guarded_pair, flows, ("salesforce", "hopin", "pardot_guard"))
    guarded_data["systems"]["hopin"]["webhook_url"] = f"{endpoint}/hooks/{GUARDED}/hopin"
    guarded_data["plugin_options"] = {"pardot_guard": GUARD_OPTIONS}
    open_data = _org_data(open_pair, flows, ("salesforce", "hopin"))
    # Both Hopin sandboxes name their secrets alike; the open org reads its own variables.
    env = dict(guarded_pair.secrets())
    for key in ("api_key_env", "webhook_secret_env"):
        original = open_data["systems"]["hopin"][key]
        open_data["systems"]["hopin"][key] = f"OPEN_{original}"
        env[f"OPEN_{original}"] = open_pair.secrets()[original]
    data = {
        "engine": {"state": str(tmp / "state.sqlite"), "listen": f"127.0.0.1:{port}"},
        "orgs": {GUARDED: guarded_data, OPEN: open_data},
    }
    config_file = tmp / "eventsync.toml"
    config_file.write_text(tomli_w.dumps(data), encoding="utf-8")
    config = parse_config(data, source=str(config_file))
    engine = Engine(config, hooks=hooks, env=env)
    server = Server(engine, port=port).start()
    orgs = {GUARDED: Org(GUARDED, guarded_pair, hooks), OPEN: Org(OPEN, open_pair, hooks)}
    for org in orgs.values():
        org.bind(engine)
    engine.start()
    time.sleep(1.0)  # changes are watched for missed triggers from the engine's start on
    try:
        yield {
            "engine": engine,
            "orgs": orgs,
            "config_file": config_file,
            "config": config,
            "hooks": hooks,
            "env": env,
        }
    finally:
        server.stop()
        engine.close()
        guarded_pair.stop()
        open_pair.stop()


def _org_data(pair: SandboxPair, flows: dict[str, Any], plugins: tuple[str, ...]) -> dict[str, Any]:
    """The ``[orgs.NAME]`` table of one sandbox pair."""
    return {
        "plan": "enterprise",
        "plugins": list(plugins),
        "crm": "salesforce",
        "event_platform": "hopin",
        "systems": {s: pair.options(s) for s in ("salesforce", "hopin")},
        "flows": flows,
    }


def _people(org: Org) -> dict[str, str]:
    """Campaign with the ticket code, three Leads and their CampaignMembers (fires triggers)."""
    [ticket] = [
        t for t in org.hooks.pull(org.platform, PullRequest("ticket")) if t.get("integrationCode")
    ][:1]
    campaign = org.insert(
        "Campaign", Name="Guarded event", **{TICKET_CODE_FIELD: ticket.get("integrationCode")}
    )
    org.ids.update(campaign=campaign, ticket=ticket.id)
    people = {
        "ok": org.insert(
            "Lead", LastName="Ok", Company="A", Email="ok@example.com", **{CONSENT: "Confirmed"}
        ),
        "optout": org.insert(
            "Lead",
            LastName="Out",
            Company="A",
            Email="optout@example.com",
            HasOptedOutOfEmail=True,
            **{CONSENT: "Confirmed"},
        ),
        "pending": org.insert(
            "Lead",
            LastName="Pending",
            Company="A",
            Email="pending@example.com",
            **{CONSENT: "Pending"},
        ),
    }
    members = {}
    for key, lead in people.items():
        members[key] = org.insert("CampaignMember", CampaignId=campaign, LeadId=lead)
    org.ids.update({f"lead_{k}": v for k, v in people.items()})
    org.ids.update({f"member_{k}": v for k, v in members.items()})
    return members


def _log(engine: Engine, org: str, outcome: str) -> dict[str, str]:
    return {e.entity: e.message for e in engine.store.sync_log(org, outcome=outcome, limit=500)}


def test_guarded_and_open_orgs_behave_differently(world: dict[str, Any]) -> None:
    engine: Engine = world["engine"]
    guarded, open_ = world["orgs"][GUARDED], world["orgs"][OPEN]
    members = {name: _people(org) for name, org in ((GUARDED, guarded), (OPEN, open_))}

    everyone = {"ok@example.com", "optout@example.com", "pending@example.com"}
    _wait("every invitation in the open org", lambda: open_.invited() >= everyone)
    _wait(
        "the confirmed invitation in the guarded org", lambda: "ok@example.com" in guarded.invited()
    )
    denied = _wait(
        "both denials in the guarded org",
        lambda: (
            d
            if {members[GUARDED]["optout"], members[GUARDED]["pending"]}
            <= set(d := _log(engine, GUARDED, "denied"))
            else None
        ),
    )
    assert guarded.invited() == {"ok@example.com"}
    assert (
        denied[members[GUARDED]["optout"]]
        == "pardot_guard: opted out of email (Lead.HasOptedOutOfEmail = true)"
    )
    assert denied[members[GUARDED]["pending"]] == (
        f"pardot_guard: has not confirmed opt-in (Lead.{CONSENT} = 'Pending'; accepted: 'Confirmed')"
    )
    assert _log(engine, OPEN, "denied") == {}

    # The pending person confirms on their Lead; the poller sees the Lead change and the
    # CampaignMember is judged again (nothing touches the CampaignMember itself).
    [result] = guarded.hooks.push(
        guarded.crm,
        PushRequest(
            "Lead",
            "update",
            (PushItem("k", {CONSENT: "Confirmed"}, id=guarded.ids["lead_pending"]),),
        ),
    )
    assert result.ok
    _wait(
        "the confirmed pending person's invitation",
        lambda: "pending@example.com" in guarded.invited(),
    )
    assert "optout@example.com" not in guarded.invited()

    # Export: a Hopin registration of the opted-out person is denied in the guarded org only.
    for org in (guarded, open_):
        requests.post(
            f"{org.hopin['admin_url']}/events/{org.hopin['event_id']}/registrations",
            json={
                "ticketId": org.ids["ticket"],
                "email": "optout@example.com",
                "firstName": "Renamed",
                "lastName": "Out",
            },
            timeout=10,
        ).raise_for_status()
    _wait("the open org's export", lambda: open_.lead_first_name("optout@example.com") == "Renamed")
    exported = _wait(
        "the guarded org's export denial",
        lambda: [
            m
            for m in _log(engine, GUARDED, "denied").values()
            if "found by email optout@example.com" in m
        ],
    )
    assert exported[0].startswith(
        f"pardot_guard: opted out of email (Lead.HasOptedOutOfEmail = true on Lead {guarded.ids['lead_optout']}"
    )
    assert guarded.lead_first_name("optout@example.com") is None  # unchanged (no FirstName given)

    # status shows the denials with their reasons.
    status = _cli("status", "--config", str(world["config_file"]))
    reasons = {(d["org"], d["entity"]): d["reason"] for d in status["denials"]}
    assert reasons[(GUARDED, members[GUARDED]["optout"])].startswith(
        "pardot_guard: opted out of email"
    )
    assert not [d for d in status["denials"] if d["org"] == OPEN]


def test_suppressed_triggers_are_reported_in_the_guarded_org_only(world: dict[str, Any]) -> None:
    engine: Engine = world["engine"]
    guarded, open_ = world["orgs"][GUARDED], world["orgs"][OPEN]
    for org in (guarded, open_):
        if "campaign" not in org.ids:
            _people(org)
    stamp = uuid.uuid4().hex[:6]
    imported: dict[str, str] = {}
    for name, org in ((GUARDED, guarded), (OPEN, open_)):
        lead = org.insert(
            "Lead",
            LastName="Imported",
            Company="A",
            Email=f"imp{stamp}@example.com",
            **{CONSENT: "Confirmed"},
        )
        # The Data Import Wizard path without "Trigger workflow rules and processes".
        imported[name] = org.admin_insert(
            "import", "CampaignMember", CampaignId=org.ids["campaign"], LeadId=lead
        )
    # A change by the Account Engagement connector user, which lacks "Run Flows".
    by_connector_lead = guarded.insert(
        "Lead",
        LastName="Synced",
        Company="A",
        Email=f"b2b{stamp}@example.com",
        **{CONSENT: "Confirmed"},
    )
    by_connector = guarded.admin_insert(
        "seed",
        "CampaignMember",
        as_user="b2bma@acme.example",
        CampaignId=guarded.ids["campaign"],
        LeadId=by_connector_lead,
    )

    # Still synced (by the poller) in both orgs.
    _wait(
        "the imported invitations",
        lambda: (
            f"imp{stamp}@example.com" in guarded.invited()
            and f"imp{stamp}@example.com" in open_.invited()
            and f"b2b{stamp}@example.com" in guarded.invited()
        ),
    )
    findings = _wait(
        "pardot_guard's findings",
        lambda: (
            f
            if {imported[GUARDED], by_connector} <= set(f := _log(engine, GUARDED, "finding"))
            else None
        ),
    )
    for entity in (imported[GUARDED], by_connector):
        message = findings[entity]
        assert message.startswith(f"pardot_guard: CampaignMember {entity} changed")
        assert "Data Import Wizard without 'Trigger workflow rules and processes" in message
        assert "Account Engagement connector user b2bma@acme.example" in message
        assert "Fix: re-run imports" in message
    # The open org notices the missing trigger (core) but has no pardot_guard to explain it.
    _wait(
        "the open org's missed trigger",
        lambda: imported[OPEN] in _log(engine, OPEN, "trigger_missed"),
    )
    assert _log(engine, OPEN, "finding") == {}

    status = _cli("status", "--config", str(world["config_file"]))
    assert {f["entity"] for f in status["findings"] if f["org"] == GUARDED} >= {
        imported[GUARDED],
        by_connector,
    }
    assert not [f for f in status["findings"] if f["org"] == OPEN]


def test_check_reports_the_automation_user_in_the_guarded_org(world: dict[str, Any]) -> None:
    config, hooks, env = world["config"], world["hooks"], world["env"]
    guarded = check_org(config, GUARDED, hooks, env=env)
    mine = [f for f in guarded.findings if f.source == "pardot_guard"]
    assert [(f.code, f.message.split(":")[0]) for f in mine] == [
        (
            "pardot_guard.permission_missing",
            "Account Engagement connector user b2bma@acme.example lacks 'Run Flows' (PermissionsRunFlow)",
        )
    ]
    opened = check_org(config, OPEN, hooks, env=env)
    assert not [f for f in opened.findings if f.source == "pardot_guard"]


def test_plugins_command_shows_which_org_enables_pardot_guard(world: dict[str, Any]) -> None:
    listed = _cli("plugins", "--config", str(world["config_file"]))
    rows = listed if isinstance(listed, list) else listed.get("plugins", listed)
    [row] = [r for r in rows if r["name"] == "pardot_guard"]
    assert row["orgs"] == [GUARDED]
    assert row["distribution"] == "eventsync-pardot-guard"
    assert set(row["hooks"]) == {
        "options_schemas",
        "preflight",
        "admit_record",
        "required_fields",
        "trigger_missed",
    }
    [salesforce] = [r for r in rows if r["name"] == "salesforce"]
    assert salesforce["orgs"] == [GUARDED, OPEN]


def test_config_file_rejects_bad_options_by_path(world: dict[str, Any], tmp_path: Path) -> None:
    data = json.loads(json.dumps(parse_and_dump(world["config_file"])))
    data["orgs"][GUARDED]["plugin_options"]["pardot_guard"]["automation_users"][0]["usrname"] = "x"
    # Offline, when the file is read: the options schema pardot_guard declares.
    with pytest.raises(ConfigurationError) as exc:
        parse_config(data, source="bad.toml")
    assert (
        "$.orgs.guarded.plugin_options.pardot_guard.automation_users[0].usrname: unknown setting"
        in exc.value.problems
    )
    # Online, its own preflight says the same in its words.
    good = parse_config(parse_and_dump(world["config_file"]))
    org = attrs.evolve(good.org(GUARDED), plugin_options=data["orgs"][GUARDED]["plugin_options"])
    findings = world["hooks"].for_plugins(org.plugins).preflight(org, {})
    assert (
        "$.orgs.guarded.plugin_options.pardot_guard.automation_users[0].usrname: unknown option "
        "(check the spelling in docs/pardot_guard.md)"
    ) in [f.message for f in findings]


def parse_and_dump(path: Path) -> dict[str, Any]:
    import tomllib

    return tomllib.loads(path.read_text(encoding="utf-8"))
