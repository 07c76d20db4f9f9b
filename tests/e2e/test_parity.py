"""Parity with RingCentral Events' own Salesforce integration, end to end: UTM parameters and
onsite registrations exported to Lead fields, an onsite check-in written as an attendance
detail, and the API key header form (``auth_header``) against a Hopin that accepts only one.

The tests using ``make_env`` run twice: with SQLite and with PostgreSQL as the state store.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from eventsync.checks import check_org
from eventsync.config import parse_config
from eventsync.models import Filter, PullRequest
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import SandboxPair, sandbox_config_files, start_sandboxes

EVENTSYNC = str(Path(sys.executable).with_name("eventsync"))
OTHER = {"raw": "bearer", "bearer": "raw"}
SHOWN = {"raw": "'Authorization: <key>'", "bearer": "'Authorization: Bearer <key>'"}

#: The custom fields a Salesforce admin adds for tracking and onsite data.
CUSTOM_FIELDS = {
    "custom_fields": {
        "Lead": [
            {"name": "UTM_Source__c", "type": "string", "length": 255},
            {"name": "UTM_Medium__c", "type": "string", "length": 255},
            {"name": "UTM_Campaign__c", "type": "string", "length": 255},
            {"name": "UTM_Term__c", "type": "string", "length": 255},
            {"name": "UTM_Content__c", "type": "string", "length": 255},
            {"name": "Referrer__c", "type": "url", "length": 255},
            {"name": "Registration_Channel__c", "type": "string", "length": 40},
            {"name": "Registered_Onsite__c", "type": "boolean", "default": False},
            {"name": "Checked_In_At__c", "type": "datetime"},
        ],
        "CampaignMember": [{"name": "Checked_In_At__c", "type": "datetime"}],
    }
}

EXPORT = {
    "export_registrations": {
        "target_object": "Lead",
        "match_key": "Email",
        "fields": [
            {"target": "LastName", "source": "lastName"},
            {"target": "Email", "source": "email"},
            {"target": "Company", "constant": "Hopin attendee"},
            {"target": "UTM_Source__c", "source": "utmSource"},
            {"target": "UTM_Medium__c", "source": "utmMedium"},
            {"target": "UTM_Campaign__c", "source": "utmCampaign"},
            {"target": "UTM_Term__c", "source": "utmTerm"},
            {"target": "UTM_Content__c", "source": "utmContent"},
            {"target": "Referrer__c", "source": "referrer"},
            {"target": "Registration_Channel__c", "source": "channel"},
            {"target": "Registered_Onsite__c", "source": "onsite"},
            {"target": "Checked_In_At__c", "source": "checkedInAt"},
        ],
    }
}

LEAD_FIELDS = (
    "Id",
    "Email",
    "UTM_Source__c",
    "UTM_Medium__c",
    "UTM_Campaign__c",
    "UTM_Term__c",
    "UTM_Content__c",
    "Referrer__c",
    "Registration_Channel__c",
    "Registered_Onsite__c",
    "Checked_In_At__c",
)


def _lead(env: Any, email: str) -> Any:
    found = env.sf_query("Lead", LEAD_FIELDS, Filter("Email", "=", email))
    return found[0] if found else None


def test_utm_parameters_and_an_onsite_registration_reach_lead_fields(make_env, wait):
    env = make_env(triggers=True, pollers=False, flows=EXPORT, salesforce_config=CUSTOM_FIELDS)
    query = "utm_source=linkedin&utm_medium=social&utm_campaign=summit&utm_term=crm&utm_content=v2"
    answer = requests.post(
        f"{env.hopin['ticket_registration_url']}&{query}",
        data={"email": "utm@example.com", "firstName": "Uma", "lastName": "Tracked"},
        headers={"Referer": "https://www.linkedin.com/feed/"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text
    env.hopin_admin(
        "POST",
        f"/events/{env.hopin['event_id']}/onsite",
        {
            "ticketId": env.hopin["ticket_id"],
            "email": "door@example.com",
            "firstName": "Dora",
            "lastName": "Walkin",
            "checkedInAt": "2026-06-01T09:00:00Z",
        },
    )
    tracked = wait("the Lead with UTM fields", lambda: _lead(env, "utm@example.com"), timeout=60)
    assert {f: tracked.get(f) for f in LEAD_FIELDS[2:7]} == {
        "UTM_Source__c": "linkedin",
        "UTM_Medium__c": "social",
        "UTM_Campaign__c": "summit",
        "UTM_Term__c": "crm",
        "UTM_Content__c": "v2",
    }
    assert tracked.get("Referrer__c") == "https://www.linkedin.com/feed/"
    assert tracked.get("Registration_Channel__c") == "online"
    assert tracked.get("Registered_Onsite__c") is False
    assert tracked.get("Checked_In_At__c") is None
    onsite = wait(
        "the onsite Lead with its check-in time",
        lambda: (lead := _lead(env, "door@example.com")) and lead.get("Checked_In_At__c") and lead,
        timeout=60,
    )
    assert onsite.get("Registration_Channel__c") == "onsite"
    assert onsite.get("Registered_Onsite__c") is True
    assert onsite.get("Checked_In_At__c") == dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)
    assert onsite.get("UTM_Source__c") is None
    assert env.engine.store.dead_letter_count() == 0, env.engine.store.dead_letters()


ATTENDANCE = {
    "import_registrations": {
        "source_object": "CampaignMember",
        "ticket_code_field": "Campaign.Hopin_Ticket_Code__c",
    },
    "attendance": {
        "target_object": "CampaignMember",
        "status_field": "Status",
        "attended_value": "Attended",
        "fields": [{"target": "Checked_In_At__c", "source": "checkedInAt"}],
    },
}


def test_an_onsite_check_in_without_online_attendance_is_attendance(make_env, wait):
    env = make_env(triggers=True, pollers=False, flows=ATTENDANCE, salesforce_config=CUSTOM_FIELDS)
    campaign = env.campaign()
    [member, online] = env.members(campaign, ["door@example.com", "online@example.com"])
    for email in ("door@example.com", "online@example.com"):
        [link] = wait(f"the invitation of {email}", lambda e=email: env.magic_links(e), timeout=60)
        env.hopin_admin("POST", f"/magicLinks/{link.id}/accept")
    [registration] = [
        r
        for r in env.hooks.pull(env.platform, PullRequest("registration"))
        if r.get("email") == "door@example.com"
    ]
    # Checked in at the venue, never joined online.
    env.hopin_admin(
        "POST",
        f"/registrations/{registration.id}/checkIn",
        {"checkedInAt": "2026-06-01T08:45:00Z", "badgePrinted": True},
    )
    env.hopin_admin("POST", "/attendance", {"email": "online@example.com", "durationSeconds": 600})

    def row(member_id: str) -> Any:
        [found] = env.hooks.pull(
            env.crm,
            PullRequest(
                "CampaignMember", ids=(member_id,), fields=("Id", "Status", "Checked_In_At__c")
            ),
        )
        return found

    attended = wait(
        "the onsite attendee Attended",
        lambda: (r := row(member)).get("Status") == "Attended" and r,
        timeout=60,
    )
    assert attended.get("Checked_In_At__c") == dt.datetime(2026, 6, 1, 8, 45, tzinfo=dt.UTC)
    wait("the online attendee Attended", lambda: row(online).get("Status") == "Attended")
    assert row(online).get("Checked_In_At__c") is None
    assert env.engine.store.dead_letter_count() == 0, env.engine.store.dead_letters()


@pytest.mark.parametrize("form", ["raw", "bearer"])
def test_the_engine_syncs_with_a_hopin_that_accepts_only_one_header_form(make_env, wait, form):
    env = make_env(triggers=True, pollers=False, hopin_options={"auth_header": form})
    assert env.pair.options("hopin").get("auth_header", "bearer") == form
    env.register("strict@example.com")
    wait(
        "the Lead exported through the strict Hopin",
        lambda: [x for x in env.leads() if x.get("Email") == "strict@example.com"],
        timeout=60,
    )
    assert env.engine.store.dead_letter_count() == 0


# --- eventsync check names the accepted form -------------------------------------------


@pytest.fixture(params=["raw", "bearer"])
def strict_pair(request: pytest.FixtureRequest) -> Iterator[SandboxPair]:
    """Both sandboxes, the Hopin one accepting only one header form (the param)."""
    hooks = Hooks(make_plugin_manager(environ={}))
    pair = start_sandboxes(
        hooks, org="parity", triggers=False, options={"hopin": {"auth_header": request.param}}
    )
    try:
        yield pair
    finally:
        pair.stop()


def _org_data(pair: SandboxPair, form: str) -> dict[str, Any]:
    data = pair.org_data()
    data["systems"]["hopin"]["auth_header"] = form
    return data


def test_check_org_names_the_accepted_form_and_the_setting(strict_pair, tmp_path):
    form = strict_pair.platform.info()["auth_header"]
    data = {
        "engine": {"state": str(tmp_path / "state.sqlite")},
        "orgs": {"parity": _org_data(strict_pair, OTHER[form])},
    }
    config = parse_config(data, source="<test>", hooks=strict_pair.hooks)
    result = check_org(config, "parity", strict_pair.hooks, env=strict_pair.secrets())
    [finding] = [f for f in result.findings if f.where.endswith("systems.hopin")]
    assert finding.code == "authentication" and finding.severity == "error"
    assert f"accepted {SHOWN[form]}" in finding.message
    assert finding.fix == f'set auth_header = "{form}" in [orgs.parity.systems.hopin]'
    # With the form it names, the same org checks clean.
    data["orgs"]["parity"] = _org_data(strict_pair, form)
    fixed = parse_config(data, source="<test>", hooks=strict_pair.hooks)
    assert check_org(fixed, "parity", strict_pair.hooks, env=strict_pair.secrets()).ok


def test_the_check_command_names_the_accepted_form(strict_pair, tmp_path):
    form = strict_pair.platform.info()["auth_header"]
    info = strict_pair.info()
    info["hopin"]["settings"]["auth_header"] = OTHER[form]
    config_text, secrets_text = sandbox_config_files(
        info, hooks=strict_pair.hooks, secrets_file="eventsync-sandbox.env"
    )
    (tmp_path / "eventsync.toml").write_text(config_text, encoding="utf-8")
    (tmp_path / "eventsync-sandbox.env").write_text(secrets_text, encoding="utf-8")
    result = subprocess.run(
        [EVENTSYNC, "check", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == 1, result.stdout + result.stderr
    findings = json.loads(result.stdout)["findings"]
    [finding] = [f for f in findings if f["code"] == "authentication"]
    assert f"accepted {SHOWN[form]}" in finding["message"]
    assert f'auth_header = "{form}"' in finding["fix"]
    assert info["hopin"]["api_key"] not in result.stdout, "the key never appears in the output"
