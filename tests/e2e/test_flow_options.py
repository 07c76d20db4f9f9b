"""Flow options end to end: match cascade, update-only, refunds, integration codes, retries, budget."""

from __future__ import annotations

import pytest
from eventsync.models import Filter
from eventsync.polling import MARK_CHUNK

EXPORT_FIELDS = [
    {"target": "LastName", "source": "lastName"},
    {"target": "Email", "source": "email"},
    {
        "target": "Company",
        "source": "headline",
        "transforms": [{"name": "default", "value": "Hopin"}],
    },
]


def export_only(**options):
    return {
        "export_registrations": {
            "target_object": "Lead",
            "match_key": "Email",
            "fields": EXPORT_FIELDS,
            **options,
        }
    }


def test_match_cascade_updates_a_contact_else_a_lead_else_creates_a_lead(make_env, wait):
    flows = export_only(
        match_cascade=[
            {"object": "Contact", "match_key": "Email"},
            {"object": "Lead", "match_key": "Email"},
        ]
    )
    env = make_env(triggers=False, pollers=False, start=False, flows=flows)
    [contact] = env.sf_insert("Contact", [{"LastName": "Old", "Email": "contact@example.com"}])
    [lead] = env.sf_insert(
        "Lead", [{"LastName": "Old", "Company": "Acme", "Email": "lead@example.com"}]
    )
    for email in ("contact@example.com", "lead@example.com", "new@example.com"):
        env.register(email, lastName="Fresh")
    env.engine.backfill("e2e", "export_registrations")
    env.engine.start()
    assert env.engine.wait_idle(30)
    assert env.engine.store.dead_letter_count() == 0, env.engine.store.dead_letters()
    [c] = env.sf_query("Contact", ("Id", "LastName"), Filter("Email", "=", "contact@example.com"))
    assert (c.id, c.get("LastName")) == (contact, "Fresh")
    leads = {x.get("Email"): x for x in env.leads()}
    assert (
        leads["lead@example.com"].id == lead
        and leads["lead@example.com"].get("LastName") == "Fresh"
    )
    assert leads["new@example.com"].get("LastName") == "Fresh"
    assert "contact@example.com" not in leads  # matched the Contact, no Lead created


def test_update_only_never_creates(make_env, wait):
    env = make_env(triggers=False, pollers=False, start=False, flows=export_only(update_only=True))
    env.sf_insert("Lead", [{"LastName": "Old", "Company": "Acme", "Email": "known@example.com"}])
    env.register("known@example.com", lastName="Updated")
    env.register("stranger@example.com", lastName="Nobody")
    env.engine.backfill("e2e", "export_registrations")
    env.engine.start()
    assert env.engine.wait_idle(30)
    leads = {x.get("Email"): x for x in env.leads()}
    assert set(leads) == {"known@example.com"}
    assert leads["known@example.com"].get("LastName") == "Updated"
    log = {
        e.entity: e.message
        for e in env.engine.store.sync_log(flow="export_registrations", outcome="done")
    }
    assert "update-only: no existing record matched" in log.values()


def test_refunded_registrations_are_skipped_when_configured(make_env, wait):
    env = make_env(triggers=False, pollers=False, start=False, flows=export_only(refunded="skip"))
    env.register("paid@example.com")
    refunded = env.register("refunded@example.com")
    env.hopin_admin("POST", f"/registrations/{refunded}/refund")
    env.engine.backfill("e2e", "export_registrations")
    env.engine.start()
    assert env.engine.wait_idle(30)
    assert [x.get("Email") for x in env.leads()] == ["paid@example.com"]
    messages = [e.message for e in env.engine.store.sync_log(entity=refunded)]
    assert "refunded: skipped" in messages


def test_an_integration_code_matching_no_ticket_is_a_record_error(make_env, wait):
    env = make_env(triggers=True, pollers=False)
    good = env.campaign("Real event")
    [bad_campaign] = env.sf_insert(
        "Campaign", [{"Name": "Typo", "Hopin_Ticket_Code__c": "NO-SUCH-CODE"}]
    )
    [ok_member] = env.members(good, ["ok@example.com"])
    [bad_member] = env.members(bad_campaign, ["typo@example.com"])
    wait("the good invitation", lambda: env.magic_links("ok@example.com"))
    dead = wait(
        "the dead letter", lambda: env.engine.store.dead_letters(flow="import_registrations")
    )
    assert dead[0].entity == bad_member
    assert dead[0].code == "UNKNOWN_INTEGRATION_CODE"
    assert (
        "'NO-SUCH-CODE'" in dead[0].message
        and env.hopin["ticket_integration_code"] in dead[0].message
    )
    assert not env.magic_links("typo@example.com")
    assert ok_member


def test_retry_sends_a_fixed_dead_letter_again(make_env, wait):
    rule = {
        "object": "Lead",
        "name": "No_Spam",
        "condition": "Company = 'Spam Inc'",
        "message": "Spam companies may not register",
        "field": "Company",
    }
    env = make_env(triggers=True, pollers=False, salesforce_config={"validation_rules": [rule]})
    registration = env.register("spam@example.com", headline="Spam Inc")
    [dead] = wait("the dead letter", lambda: env.engine.store.dead_letters())
    assert dead.entity == registration
    env.hopin_admin("PATCH", f"/registrations/{registration}", {"headline": "Honest Ltd"})
    # The change itself is delivered too; retrying the dead letter must not create a second Lead.
    assert env.engine.store.retry_dead_letters() in (0, 1)
    wait(
        "the Lead after the fix",
        lambda: [x for x in env.leads() if x.get("Company") == "Honest Ltd"],
    )
    env.engine.wait_idle(10)
    assert [x.get("Email") for x in env.leads()] == ["spam@example.com"]
    assert env.engine.store.dead_letter_count() == 0


@pytest.mark.parametrize(
    ("batch_size", "registrations"),
    [(200, 1200), (1000, 2500)],
    ids=["small-batches", "full-backfill-batches"],
)
def test_backfill_pauses_at_the_api_budget_and_resumes(make_env, wait, batch_size, registrations):
    """The pause comes at the first chunk boundary: before judging the budget, the backfill
    waits for an answer to the work it queued (the usage read before is stale), also when a
    chunk is a whole 1,000-row batch that the scan marks faster than the CRM answers."""
    env = make_env(
        triggers=False,
        pollers=False,
        start=False,
        hopin_options={"seed_registrations": registrations},
        flows=export_only(),
        engine_options={"batch_size": batch_size, "batch_linger": 0.0},
    )
    env.engine.start()
    env.engine.connection("e2e", "crm")
    limit = env.sf_admin("GET", "/counters")["daily_limit"]
    env.sf_admin("POST", "/counters/reset", {"api_usage": int(limit * 0.6), "daily_limit": limit})
    chunk = max(MARK_CHUNK, batch_size)
    paused = env.engine.backfill("e2e", "export_registrations", budget_share=0.5)
    assert not paused.finished and "paused" in paused.reason, paused
    assert paused.marked == chunk, paused
    env.sf_admin("POST", "/counters/reset", {"api_usage": 0, "daily_limit": limit})
    resumed = env.engine.backfill("e2e", "export_registrations", budget_share=0.5)
    # Resuming re-reads from the saved (timestamp, id) position; re-marking is harmless.
    assert resumed.finished and paused.marked + resumed.marked >= registrations
    assert env.engine.wait_idle(120)
    assert len({x.get("Email") for x in env.leads()}) == registrations


def test_a_source_filter_decides_which_records_are_invitations(make_env, wait):
    """Records outside the filter are never invited and never dead-lettered, whether an
    outbound message or the poller names them."""
    flows = {
        "import_registrations": {
            "source_object": "CampaignMember",
            "ticket_code_field": "Campaign.Hopin_Ticket_Code__c",
            "source_filter": [{"field": "Campaign.Hopin_Ticket_Code__c", "op": "not_empty"}],
            "poll_interval": 0.3,
        }
    }
    env = make_env(triggers=True, pollers=True, flows=flows)
    coded = env.campaign("Event campaign")
    [newsletter] = env.sf_insert("Campaign", [{"Name": "Newsletter"}])
    [outside] = env.members(newsletter, ["reader@example.com"])
    [inside] = env.members(coded, ["guest@example.com"])
    wait("the invitation inside the filter", lambda: env.magic_links("guest@example.com"))
    # The member outside the filter was announced by its outbound message too; its job ran.
    wait(
        "the outside member's job",
        lambda: any(
            "does not match the source filter" in row.message
            for row in env.engine.store.sync_log("e2e", "import_registrations", entity=outside)
        ),
    )
    assert env.engine.wait_idle(30)
    assert env.engine.store.dead_letter_count() == 0, env.engine.store.dead_letters()
    assert not env.magic_links("reader@example.com")
    assert inside
