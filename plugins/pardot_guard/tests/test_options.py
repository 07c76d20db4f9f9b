"""Options are structured strictly; every problem names its $.orgs... path."""

from __future__ import annotations

import pytest
from eventsync.errors import ConfigurationError
from eventsync.models import Record
from eventsync_pardot_guard.options import DEFAULT_PERMISSIONS, parse_options

BASE = "$.orgs.acme.plugin_options.pardot_guard"


def problems(make_org, options) -> list[str]:
    with pytest.raises(ConfigurationError) as exc:
        parse_options(make_org(options))
    return list(exc.value.problems)


def test_defaults_check_api_enabled_and_send_email(make_org) -> None:
    options = parse_options(make_org({}))
    assert (
        options.permissions
        == DEFAULT_PERMISSIONS
        == ("PermissionsApiEnabled", "PermissionsEmailSingle")
    )
    assert options.check_opt_out and options.opt_out_field == "HasOptedOutOfEmail"
    assert not options.confirmed_opt_in
    assert options.person_relationships["CampaignMember"] == ("Lead", "Contact")


def test_every_problem_is_reported_with_its_path(make_org) -> None:
    found = problems(
        make_org,
        {
            "automation_users": [
                {"role": "LeanData"},
                {"username": "a@b.example", "permissions": "PermissionsApiEnabled"},
            ],
            "confirmd_opt_in": True,
            "check_opt_out": "yes",
            "consent_values": [1],
        },
    )
    assert f"{BASE}.automation_users[0].username: required field missing" in found
    assert any(
        p.startswith(f"{BASE}.automation_users[1].permissions: expected a list") for p in found
    )
    assert any(p.startswith(f"{BASE}.confirmd_opt_in: unknown option") for p in found)
    assert any(p.startswith(f"{BASE}.check_opt_out: expected true or false") for p in found)
    assert any(p.startswith(f"{BASE}.consent_values: ") for p in found)
    assert len(found) == 5


def test_semantic_problems(make_org) -> None:
    found = problems(
        make_org,
        {
            "confirmed_opt_in": True,
            "gate_flows": ["imports"],
            "permissions": ["Send Email"],
            "automation_users": [{"username": "not-a-username"}],
            "lookup_objects": ["Lead; DELETE"],
        },
    )
    keys = sorted(p.split(":", 1)[0] for p in found)
    assert keys == sorted(
        [
            f"{BASE}.consent_field",
            f"{BASE}.gate_flows[0]",
            f"{BASE}.permissions[0]",
            f"{BASE}.automation_users[0].username",
            f"{BASE}.lookup_objects[0]",
        ]
    )


def test_person_relationships_add_to_the_defaults(make_org) -> None:
    options = parse_options(
        make_org({"person_relationships": {"Registration__c": ["Lead__r", ""]}})
    )
    assert options.person_relationships["Registration__c"] == ("Lead__r", "")
    assert options.person_relationships["CampaignMember"] == ("Lead", "Contact")


def test_bad_options_deny_and_show_in_preflight(guarded, make_org) -> None:
    org = make_org({"gate_flows": "import_registrations"})
    record = Record("salesforce", "CampaignMember", "00v000000000001AAA")
    verdict = guarded.admit_record("import_registrations", record, org, {})
    assert not verdict.allow and verdict.source == "pardot_guard"
    assert f"{BASE}.gate_flows: expected a list" in verdict.reason
    [finding] = guarded.preflight(org, {})
    assert finding.severity == "error" and finding.where == f"{BASE}.gate_flows"
