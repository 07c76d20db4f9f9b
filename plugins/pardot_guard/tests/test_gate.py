"""The runtime gate on real records pulled from the Salesforce sandbox by the Salesforce plugin."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from eventsync.models import PullRequest, Record, Verdict
from eventsync_pardot_guard import plugin

COI = {
    "confirmed_opt_in": True,
    "consent_field": "Confirmed_Opt_In__c",
    "consent_values": ["Confirmed"],
}


@pytest.fixture(scope="module")
def campaign(sandbox) -> str:
    return sandbox.create("Campaign", Name="Gate test")


def email() -> str:
    return f"p{uuid.uuid4().hex[:10]}@example.com"


def lead(sandbox, **fields: Any) -> str:
    return sandbox.create(
        "Lead", LastName="Person", Company="Acme", Email=fields.pop("Email", email()), **fields
    )


def member(sandbox, campaign: str, **person: str) -> str:
    return sandbox.create("CampaignMember", CampaignId=campaign, **person)


def pulled(guarded, sandbox, org, member_id: str) -> Record:
    """The CampaignMember as the import flow pulls it: its own fields plus required_fields."""
    extra = guarded.required_fields("import_registrations", "CampaignMember", org)
    [record] = guarded.pull(
        sandbox.connection,
        PullRequest("CampaignMember", fields=("Id", "Email", *extra), ids=(member_id,)),
    )
    return record


def verdict(guarded, sandbox, org, member_id: str, flow: str = "import_registrations") -> Verdict:
    record = pulled(guarded, sandbox, org, member_id)
    return guarded.admit_record(flow, record, org, sandbox.connections())


def test_required_fields(guarded, make_org) -> None:
    org = make_org(COI)
    assert guarded.required_fields("import_registrations", "CampaignMember", org) == [
        "Lead.Id",
        "Lead.HasOptedOutOfEmail",
        "Lead.Confirmed_Opt_In__c",
        "Contact.Id",
        "Contact.HasOptedOutOfEmail",
        "Contact.Confirmed_Opt_In__c",
    ]
    assert guarded.required_fields("import_registrations", "Lead", make_org({})) == [
        "HasOptedOutOfEmail"
    ]
    assert guarded.required_fields("attendance", "CampaignMember", org) == []
    assert guarded.required_fields("import_registrations", "Event__c", org) == []


def test_opted_out_lead_is_denied(guarded, sandbox, campaign, make_org) -> None:
    result = verdict(
        guarded,
        sandbox,
        make_org({}),
        member(sandbox, campaign, LeadId=lead(sandbox, HasOptedOutOfEmail=True)),
    )
    assert result == Verdict(
        False, "opted out of email (Lead.HasOptedOutOfEmail = true)", "pardot_guard"
    )


def test_opted_out_contact_is_denied(guarded, sandbox, campaign, make_org) -> None:
    contact = sandbox.create("Contact", LastName="C", Email=email(), HasOptedOutOfEmail=True)
    result = verdict(guarded, sandbox, make_org({}), member(sandbox, campaign, ContactId=contact))
    assert (
        not result.allow
        and result.reason == "opted out of email (Contact.HasOptedOutOfEmail = true)"
    )


def test_person_who_did_not_opt_out_is_admitted(guarded, sandbox, campaign, make_org) -> None:
    result = verdict(
        guarded, sandbox, make_org({}), member(sandbox, campaign, LeadId=lead(sandbox))
    )
    assert result.allow


def test_opt_out_check_can_be_turned_off(guarded, sandbox, campaign, make_org) -> None:
    member_id = member(sandbox, campaign, LeadId=lead(sandbox, HasOptedOutOfEmail=True))
    assert guarded.admit_record(
        "import_registrations",
        pulled(guarded, sandbox, make_org({}), member_id),
        make_org({"check_opt_out": False}),
        {},
    ).allow


def test_confirmed_opt_in_pending_is_denied_then_admitted(
    guarded, sandbox, campaign, make_org
) -> None:
    org = make_org(COI)
    person = lead(sandbox, Confirmed_Opt_In__c="Pending")
    member_id = member(sandbox, campaign, LeadId=person)
    denied = verdict(guarded, sandbox, org, member_id)
    assert not denied.allow
    assert denied.reason == (
        "has not confirmed opt-in (Lead.Confirmed_Opt_In__c = 'Pending'; accepted: 'Confirmed')"
    )
    sandbox.update("Lead", person, Confirmed_Opt_In__c="Confirmed")
    assert verdict(guarded, sandbox, org, member_id).allow
    # the facade folds admits into one; the plugin's own verdict says why
    admitted = plugin.admit_record(
        "import_registrations", pulled(guarded, sandbox, org, member_id), org, {}
    )
    assert admitted == Verdict(
        True, "confirmed opt-in (Lead.Confirmed_Opt_In__c = 'Confirmed')", "pardot_guard"
    )


def test_confirmed_opt_in_empty_is_denied(guarded, sandbox, campaign, make_org) -> None:
    result = verdict(
        guarded, sandbox, make_org(COI), member(sandbox, campaign, LeadId=lead(sandbox))
    )
    assert not result.allow and "Lead.Confirmed_Opt_In__c = empty" in result.reason


def test_opt_out_wins_over_confirmed_opt_in(guarded, sandbox, campaign, make_org) -> None:
    member_id = member(
        sandbox,
        campaign,
        LeadId=lead(sandbox, HasOptedOutOfEmail=True, Confirmed_Opt_In__c="Confirmed"),
    )
    result = verdict(guarded, sandbox, make_org(COI), member_id)
    assert not result.allow and result.reason.startswith("opted out of email")


def test_checkbox_consent_field(guarded, sandbox, campaign, make_org) -> None:
    org = make_org(
        {
            "confirmed_opt_in": True,
            "consent_field": "Double_Opt_In__c",
            "lookup_objects": ["Lead"],
            "person_relationships": {"CampaignMember": ["Lead"]},
        }
    )
    yes = verdict(
        guarded,
        sandbox,
        org,
        member(sandbox, campaign, LeadId=lead(sandbox, Double_Opt_In__c=True)),
    )
    no = verdict(guarded, sandbox, org, member(sandbox, campaign, LeadId=lead(sandbox)))
    assert yes.allow
    assert not no.allow and no.reason == (
        "has not confirmed opt-in (Lead.Double_Opt_In__c = false; accepted: true)"
    )


def test_lead_record_itself(guarded, sandbox, make_org) -> None:
    org = make_org(COI)
    person = lead(sandbox, HasOptedOutOfEmail=True)
    extra = guarded.required_fields("import_registrations", "Lead", org)
    [record] = guarded.pull(
        sandbox.connection, PullRequest("Lead", fields=("Id", *extra), ids=(person,))
    )
    result = guarded.admit_record("import_registrations", record, org, {})
    assert result.reason == "opted out of email (Lead.HasOptedOutOfEmail = true)"


def registration(address: str) -> Record:
    return Record("hopin", "registration", "reg-1", {"email": address, "firstName": "R"})


def test_export_looks_the_person_up_by_email(guarded, sandbox, make_org) -> None:
    address = email()
    person = lead(sandbox, Email=address, HasOptedOutOfEmail=True)
    result = guarded.admit_record(
        "export_registrations", registration(address.upper()), make_org({}), sandbox.connections()
    )
    assert not result.allow
    assert result.reason == (
        f"opted out of email (Lead.HasOptedOutOfEmail = true on Lead {person}, "
        f"found by email {address.upper()})"
    )


def test_export_confirmed_opt_in(guarded, sandbox, make_org) -> None:
    address = email()
    sandbox.create("Contact", LastName="C", Email=address, Confirmed_Opt_In__c="Pending")
    org = make_org(COI)
    denied = guarded.admit_record(
        "export_registrations", registration(address), org, sandbox.connections()
    )
    assert not denied.allow and "Contact.Confirmed_Opt_In__c = 'Pending'" in denied.reason
    lead(
        sandbox, Email=address, Confirmed_Opt_In__c="Confirmed"
    )  # a confirmed Lead with the same email
    assert guarded.admit_record(
        "export_registrations", registration(address), org, sandbox.connections()
    ).allow


def test_export_unknown_people(guarded, sandbox, make_org) -> None:
    nobody = registration(email())
    assert guarded.admit_record(
        "export_registrations", nobody, make_org(COI), sandbox.connections()
    ).allow
    strict = make_org({**COI, "admit_unknown_people": False})
    result = guarded.admit_record("export_registrations", nobody, strict, sandbox.connections())
    assert not result.allow and "no Lead or Contact" in result.reason


def test_email_is_escaped(guarded, sandbox, make_org) -> None:
    tricky = registration("x' OR Email != 'y@example.com")
    assert guarded.admit_record(
        "export_registrations", tricky, make_org({}), sandbox.connections()
    ).allow


def test_flows_outside_the_gate_are_not_judged(guarded, sandbox, campaign, make_org) -> None:
    member_id = member(sandbox, campaign, LeadId=lead(sandbox, HasOptedOutOfEmail=True))
    org = make_org({"gate_flows": ["export_registrations"]})
    record = pulled(guarded, sandbox, make_org({}), member_id)
    assert guarded.admit_record("import_registrations", record, org, {}).allow
    assert guarded.admit_record("import_registrations", record, make_org({}), {}).allow is False


def test_org_without_pardot_guard_admits(hooks, sandbox, campaign, make_org) -> None:
    member_id = member(sandbox, campaign, LeadId=lead(sandbox, HasOptedOutOfEmail=True))
    unguarded = hooks.for_plugins(["salesforce", "hopin"])
    record = pulled(
        hooks.for_plugins(["salesforce", "hopin", "pardot_guard"]), sandbox, make_org({}), member_id
    )
    assert unguarded.admit_record(
        "import_registrations", record, make_org({}), sandbox.connections()
    ).allow
