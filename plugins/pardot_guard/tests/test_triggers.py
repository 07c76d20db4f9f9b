"""trigger_missed: a CRM change no Outbound Message announced gets a finding naming the causes."""

from __future__ import annotations

from eventsync.models import PullRequest, Record


def imported_member(sandbox) -> Record:
    """A CampaignMember loaded the Data Import Wizard way (no workflow, no outbound message)."""
    campaign = sandbox.create("Campaign", Name="Imported")
    lead = sandbox.create("Lead", LastName="Imported", Company="Acme", Email="imported@example.com")
    [row] = sandbox.admin(
        "import",
        {"object": "CampaignMember", "records": [{"CampaignId": campaign, "LeadId": lead}]},
    )
    assert row["success"], row
    [record] = sandbox.hooks.pull(
        sandbox.connection, PullRequest("CampaignMember", fields=("Id",), ids=(row["id"],))
    )
    return record


def test_finding_names_the_likely_causes_and_where_to_look(guarded, sandbox, make_org) -> None:
    record = imported_member(sandbox)
    org = make_org(
        {
            "automation_users": [
                {"username": "b2bma@acme.example", "role": "Account Engagement connector user"}
            ]
        }
    )
    [finding] = guarded.trigger_missed("import_registrations", record, org, 93.4)
    assert finding.source == "pardot_guard" and finding.code == "pardot_guard.trigger_missed"
    assert finding.severity == "warning"
    assert finding.message.startswith(
        f"CampaignMember {record.id} changed 93s ago but no Outbound Message"
    )
    assert (
        "Data Import Wizard without 'Trigger workflow rules and processes for new and updated records'"
        in finding.message
    )
    assert (
        "Account Engagement connector user b2bma@acme.example ('API Enabled' (PermissionsApiEnabled), "
        "'Send Email' (PermissionsEmailSingle))"
    ) in finding.message
    assert "Setup > Outbound Messages" in finding.where and "Data Import Wizard" in finding.where
    assert "eventsync check" in finding.fix


def test_event_platform_records_are_not_its_concern(guarded, make_org) -> None:
    record = Record("hopin", "registration", "r1")
    assert guarded.trigger_missed("export_registrations", record, make_org({}), 60.0) == []


def test_org_without_pardot_guard(hooks, make_org) -> None:
    record = Record("salesforce", "CampaignMember", "00v000000000001AAA")
    assert (
        hooks.for_plugins(["salesforce", "hopin"]).trigger_missed(
            "import_registrations", record, make_org({}), 60.0
        )
        == []
    )
