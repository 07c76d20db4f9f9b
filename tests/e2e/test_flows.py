"""The four flows end to end: real triggers, pollers alone, duplicates, bad records, faults.

Every test runs twice: with SQLite and with PostgreSQL as the state store (``store_url``).
"""

from __future__ import annotations

from collections import Counter

from eventsync.models import PullRequest
from eventsync_salesforce.sandbox.wiring import LINK_FIELD, STATUS_FIELD


def test_import_and_write_back_through_outbound_messages(make_env, wait):
    env = make_env(triggers=True, pollers=False)
    campaign = env.campaign()
    [member] = env.members(campaign, ["ada@example.com"])
    links = wait("the invitation in Hopin", lambda: env.magic_links("ada@example.com"))
    assert len(links) == 1
    assert links[0].get("registrationId") == member
    assert links[0].get("ticketId") == env.hopin["ticket_id"]
    row = wait(
        "the magic link on the CampaignMember",
        lambda: (m := env.member(member)).get(LINK_FIELD) and m,
    )
    assert row.get(LINK_FIELD) == links[0].get("magicLink")
    assert row.get(STATUS_FIELD) == "Invited"


def test_export_through_hopin_deliveries(make_env, wait):
    env = make_env(triggers=True, pollers=False)
    env.register("grace@example.com", headline="Rear Admiral", website="https://example.com/grace")
    lead = wait(
        "the exported Lead",
        lambda: [x for x in env.leads() if x.get("Email") == "grace@example.com"],
    )
    assert len(lead) == 1
    assert lead[0].get("Company") == "Rear Admiral"
    assert lead[0].get("FirstName") == "Grace"


def test_acceptance_and_attendance_through_deliveries(make_env, wait):
    env = make_env(triggers=True, pollers=False)
    [member] = env.members(env.campaign(), ["ada@example.com"])
    [link] = wait("the invitation", lambda: env.magic_links("ada@example.com"))
    wait("Invited", lambda: env.member(member).get(STATUS_FIELD) == "Invited")
    env.hopin_admin("POST", f"/magicLinks/{link.id}/accept")
    wait("Registered", lambda: env.member(member).get(STATUS_FIELD) == "Registered")
    env.hopin_admin("POST", "/attendance", {"email": "ada@example.com", "durationSeconds": 1800})
    wait("Attended", lambda: env.member(member).get("Status") == "Attended")


def test_every_flow_through_the_pollers_alone(make_env, wait):
    env = make_env(triggers=False, pollers=True, poll_interval=0.2)
    assert env.sf_admin("GET", "/outbound")["rules"] == []  # no outbound messages at all
    [member] = env.members(env.campaign(), ["ada@example.com"])
    [link] = wait("the invitation (poller)", lambda: env.magic_links("ada@example.com"))
    wait(
        "the link written back (poller)",
        lambda: env.member(member).get(LINK_FIELD) == link.get("magicLink"),
    )
    env.register("grace@example.com", headline="Navy")
    wait(
        "the exported Lead (poller)",
        lambda: [x for x in env.leads() if x.get("Email") == "grace@example.com"],
    )
    env.hopin_admin("POST", f"/magicLinks/{link.id}/accept")
    wait("Registered (poller)", lambda: env.member(member).get(STATUS_FIELD) == "Registered")
    env.hopin_admin("POST", "/attendance", {"email": "ada@example.com", "durationSeconds": 60})
    wait("Attended (poller)", lambda: env.member(member).get("Status") == "Attended", timeout=40)
    assert env.engine.store.dead_letter_count() == 0


def test_duplicate_and_out_of_order_deliveries_create_nothing_twice(make_env, wait):
    env = make_env(triggers=True, pollers=False)
    env.sf_admin("POST", "/outbound/mode", {"duplicate": True, "reorder": True})
    emails = [f"person{i}@example.com" for i in range(6)]
    members = env.members(env.campaign(), emails)
    wait("every link written back", lambda: all(env.member(m).get(LINK_FIELD) for m in members))
    for i in range(3):
        env.register(f"direct{i}@example.com")
    wait(
        "three exported Leads",
        lambda: len([x for x in env.leads() if str(x.get("Email")).startswith("direct")]) == 3,
    )
    # Replay every Hopin delivery once more, out of order, straight into the endpoint.
    deliveries = env.hopin_admin("GET", "/deliveries")["deliveries"]
    assert deliveries, "the Hopin sandbox delivered nothing"
    env.engine.wait_idle(20)
    links = env.magic_links()
    assert Counter(x.get("email") for x in links) == Counter(emails)
    assert sorted(x.get("registrationId") for x in links) == sorted(members)
    assert Counter(
        x.get("Email") for x in env.leads() if str(x.get("Email")).startswith("direct")
    ) == {f"direct{i}@example.com": 1 for i in range(3)}
    assert env.engine.store.dead_letter_count() == 0


def test_a_record_failing_a_validation_rule_is_dead_lettered_and_the_rest_land(make_env, wait):
    rule = {
        "object": "Lead",
        "name": "No_Spam",
        "condition": "Company = 'Spam Inc'",
        "message": "Spam companies may not register",
        "field": "Company",
    }
    env = make_env(
        triggers=False, pollers=False, start=False, salesforce_config={"validation_rules": [rule]}
    )
    good = [f"good{i}@example.com" for i in range(5)]
    for email in good:
        env.register(email, headline="Fine Co")
    env.register("spam@example.com", headline="Spam Inc")
    result = env.engine.backfill("e2e", "export_registrations")
    assert result.finished and result.marked == 6
    env.engine.start()
    assert env.engine.wait_idle(30)
    [dead] = env.engine.store.dead_letters()
    assert dead.code == "FIELD_CUSTOM_VALIDATION_EXCEPTION"
    assert dead.message == "Spam companies may not register"
    assert sorted(x.get("Email") for x in env.leads()) == sorted(good)


def test_injected_503_and_unable_to_lock_row_everything_lands_once(make_env, wait):
    # Small batches: many calls, so the 20% faults certainly fire.
    env = make_env(
        triggers=False,
        pollers=False,
        start=False,
        hopin_options={"seed_registrations": 80},
        engine_options={"batch_size": 5},
    )
    env.sf_admin(
        "POST",
        "/faults",
        {
            "endpoint": "collections",
            "status": 200,
            "error_code": "UNABLE_TO_LOCK_ROW",
            "per_record": True,
            "probability": 0.2,
        },
    )
    env.sf_admin("POST", "/faults", {"endpoint": "collections", "status": 503, "probability": 0.2})
    env.sf_admin("POST", "/faults", {"endpoint": "query", "status": 503, "probability": 0.2})
    env.hopin_admin("POST", "/faults", {"path": "/v1/*", "status": 503, "probability": 0.2})
    registrations = env.hooks.pull(env.platform, PullRequest("registration"))
    emails = sorted(str(r.get("email")).lower() for r in registrations)
    assert len(emails) == 80
    result = env.engine.backfill("e2e", "export_registrations")
    assert result.finished
    env.engine.start()
    assert env.engine.wait_idle(90), env.engine.status()
    fired = sum(f["fired"] for f in env.sf_admin("GET", "/faults"))
    assert fired > 0, "no fault was injected"
    env.sf_admin("DELETE", "/faults")
    assert env.engine.store.dead_letter_count() == 0, env.engine.store.dead_letters()
    assert sorted(str(x.get("Email")).lower() for x in env.leads()) == emails


def test_after_the_event_invitees_who_did_not_attend_become_no_shows(make_env, wait):
    flows = {
        "import_registrations": {
            "source_object": "CampaignMember",
            "ticket_code_field": "Campaign.Hopin_Ticket_Code__c",
            "fields": [{"target": "email", "source": "Email"}],
            "poll_interval": 0.2,
        },
        "attendance": {
            "target_object": "CampaignMember",
            "status_field": "Status",
            "attended_value": "Attended",
            "no_show_value": "No Show",
            "no_show_after": 0,
            "poll_interval": 0.2,
        },
    }
    env = make_env(triggers=True, pollers=True, flows=flows)
    campaign = env.campaign()
    env.sf_insert("CampaignMemberStatus", [{"CampaignId": campaign, "Label": "No Show"}])
    came, stayed_home = env.members(campaign, ["came@example.com", "home@example.com"])
    wait("both invitations", lambda: len(env.magic_links()) == 2)
    [link] = env.magic_links("came@example.com")
    env.hopin_admin("POST", f"/magicLinks/{link.id}/accept")
    env.hopin_admin("POST", "/attendance", {"email": "came@example.com", "durationSeconds": 600})
    wait("Attended", lambda: env.member(came).get("Status") == "Attended", timeout=30)
    wait("No Show", lambda: env.member(stayed_home).get("Status") == "No Show", timeout=30)
    env.engine.wait_idle(10)
    assert env.member(came).get("Status") == "Attended"
