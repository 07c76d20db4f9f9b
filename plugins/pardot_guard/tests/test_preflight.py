"""preflight against the Salesforce sandbox: users, activity, permission sets, fields."""

from __future__ import annotations

from typing import Any

from eventsync.models import Finding

ROLES = {
    "b2bma@acme.example": "Account Engagement connector user",
    "leandata@acme.example": "LeanData",
    "split@acme.example": "outbound message user to send as",
}


def run(guarded, sandbox, make_org, **options: Any) -> list[Finding]:
    return guarded.preflight(make_org(options), sandbox.connections())


def by_code(findings: list[Finding]) -> dict[str, list[Finding]]:
    out: dict[str, list[Finding]] = {}
    for f in findings:
        out.setdefault(f.code, []).append(f)
    return out


def users(*names: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"username": n, "role": ROLES.get(n, "automation user"), **extra} for n in names]


def test_users_holding_every_permission_pass(guarded, sandbox, make_org) -> None:
    found = run(
        guarded,
        sandbox,
        make_org,
        automation_users=users("leandata@acme.example", "split@acme.example"),
    )
    assert [f.code for f in found] == ["pardot_guard.automation_users_ok"]
    assert "'API Enabled' (PermissionsApiEnabled)" in found[0].message
    assert "'Send Email' (PermissionsEmailSingle)" in found[0].message


def test_permission_missing_names_user_role_permission_and_setup(
    guarded, sandbox, make_org
) -> None:
    found = run(
        guarded,
        sandbox,
        make_org,
        automation_users=users("b2bma@acme.example", "leandata@acme.example"),
    )
    [missing] = by_code(found)["pardot_guard.permission_missing"]
    assert missing.severity == "error" and missing.source == "pardot_guard"
    assert missing.message.startswith(
        "Account Engagement connector user b2bma@acme.example lacks "
        "'Send Email' (PermissionsEmailSingle)"
    )
    assert "B2BMA Connector" in missing.message  # the sets it does have
    assert "Permission Sets" in missing.where and "Profiles" in missing.where
    assert "Permission Set Assignments" in missing.fix
    assert "pardot_guard.automation_users_ok" not in by_code(found)


def test_user_with_no_permission_sets_lacks_both(guarded, sandbox, make_org) -> None:
    found = run(guarded, sandbox, make_org, automation_users=users("bare@acme.example"))
    missing = by_code(found)["pardot_guard.permission_missing"]
    assert sorted(f.message.split(" lacks ")[1].split(":")[0] for f in missing) == [
        "'API Enabled' (PermissionsApiEnabled)",
        "'Send Email' (PermissionsEmailSingle)",
    ]
    assert all("none assigned" in f.message for f in missing)


def test_permissions_from_several_sets_add_up(guarded, sandbox, make_org) -> None:
    found = run(guarded, sandbox, make_org, automation_users=users("split@acme.example"))
    assert "pardot_guard.permission_missing" not in by_code(found)


def test_inactive_user(guarded, sandbox, make_org) -> None:
    found = run(guarded, sandbox, make_org, automation_users=users("retired@acme.example"))
    [inactive] = by_code(found)["pardot_guard.user_inactive"]
    assert inactive.message.startswith("automation user retired@acme.example is inactive")
    assert inactive.where == "Setup > Users > Users > retired@acme.example"
    assert "tick Active" in inactive.fix
    assert "pardot_guard.permission_missing" not in by_code(found)  # its set grants both


def test_unknown_user(guarded, sandbox, make_org) -> None:
    found = run(guarded, sandbox, make_org, automation_users=users("ghost@acme.example"))
    [missing] = by_code(found)["pardot_guard.user_missing"]
    assert "ghost@acme.example does not exist" in missing.message
    assert "$.orgs.acme.plugin_options.pardot_guard.automation_users[0].username" in missing.fix


def test_permissions_are_configurable_per_org_and_per_user(guarded, sandbox, make_org) -> None:
    found = run(
        guarded,
        sandbox,
        make_org,
        permissions=["PermissionsApiEnabled"],
        automation_users=users("b2bma@acme.example")
        + users("leandata@acme.example", permissions=["PermissionsModifyAllData"]),
    )
    [missing] = by_code(found)["pardot_guard.permission_missing"]
    assert missing.message.startswith("LeanData leandata@acme.example lacks 'Modify All Data'")


def test_no_invented_outbound_message_permission(guarded, sandbox, make_org) -> None:
    found = run(
        guarded,
        sandbox,
        make_org,
        permissions=["PermissionsSendOutboundMessages", "PermissionsApiEnabled"],
        automation_users=users("b2bma@acme.example"),
    )
    codes = by_code(found)
    [unknown] = codes["pardot_guard.unknown_permission"]
    assert "PermissionSet has no field PermissionsSendOutboundMessages" in unknown.message
    assert "no 'Send Outbound Messages' permission" in unknown.message
    assert "pardot_guard.permission_missing" not in codes  # the real permission is held


def test_consent_field_must_exist_on_lookup_objects(guarded, sandbox, make_org) -> None:
    found = run(guarded, sandbox, make_org, confirmed_opt_in=True, consent_field="Double_Opt_In__c")
    [missing] = by_code(found)["pardot_guard.field_missing"]
    assert missing.message.startswith("Contact.Double_Opt_In__c does not exist")  # only Lead has it
    assert missing.where == "Setup > Object Manager > Contact > Fields & Relationships"
    clean = run(
        guarded,
        sandbox,
        make_org,
        confirmed_opt_in=True,
        consent_field="Confirmed_Opt_In__c",
        consent_values=["Confirmed"],
    )
    assert "pardot_guard.field_missing" not in by_code(clean)
    assert [f.code for f in clean] == ["pardot_guard.no_automation_users"]


def test_org_without_pardot_guard_gets_no_findings(hooks, sandbox, make_org) -> None:
    org = make_org({"automation_users": users("bare@acme.example")})
    unguarded = hooks.for_plugins(["salesforce", "hopin"])
    assert unguarded.preflight(org, sandbox.connections()) == []
    assert hooks.for_plugins(["salesforce", "hopin", "pardot_guard"]).preflight(
        org, sandbox.connections()
    )


def test_without_a_salesforce_connection(guarded, make_org) -> None:
    [warning] = guarded.preflight(make_org({"automation_users": users("b2bma@acme.example")}), {})
    assert warning.code == "pardot_guard.no_salesforce" and warning.severity == "warning"
