"""Exactly once when an answer is lost: the write took effect, the engine never heard of it.

Each sandbox handles the request (the Lead or the magic link is created) and then answers with
a 503, as a proxy or a dropped connection would; the engine must adopt what it made instead of
making it twice.
"""

from __future__ import annotations

from eventsync.models import Filter


def test_a_lead_whose_create_answer_was_lost_is_created_once(make_env, wait):
    env = make_env(triggers=True, pollers=False)
    env.sf_admin(
        "POST",
        "/faults",
        {"endpoint": "collections", "method": "POST", "status": 503, "times": 1, "when": "after"},
    )
    env.register("lost@example.com")
    wait("the Lead", lambda: [x for x in env.leads() if x.get("Email") == "lost@example.com"])
    assert env.engine.wait_idle(30)
    assert [x.get("Email") for x in env.leads()].count("lost@example.com") == 1
    assert env.engine.store.dead_letter_count() == 0, env.engine.store.dead_letters()
    assert env.sf_admin("GET", "/faults") == []  # the answer was lost


def test_a_magic_link_whose_create_answer_was_lost_is_created_once(make_env, wait):
    env = make_env(triggers=True, pollers=False)
    env.hopin_admin(
        "POST",
        "/faults",
        {"path": "/v1/tickets/*/magicLinks", "method": "POST", "status": 503, "count": 1,
         "when": "after"},
    )  # fmt: skip
    campaign = env.campaign()
    [member] = env.members(campaign, ["invitee@example.com"])
    wait("the magic link written back", lambda: env.member(member).get("Hopin_Magic_Link__c"))
    assert env.engine.wait_idle(30)
    assert len(env.magic_links("invitee@example.com")) == 1
    assert env.engine.store.dead_letter_count() == 0, env.engine.store.dead_letters()
    rows = env.sf_query("CampaignMember", ("Id",), Filter("Id", "=", member))
    assert [r.id for r in rows] == [member]


def test_an_invitation_whose_follow_on_mark_failed_still_gets_its_link_written_back(make_env, wait):
    # The invitation is made and linked, then marking its write-back fails (as a database
    # deadlock did under chaos): the retry finds the invitation unchanged and must still mark it.
    env = make_env(triggers=True, pollers=False)
    store = env.engine.store
    real_mark_many = store.mark_many
    failed: list[str] = []

    def mark_many(org, flow, entities, **kwargs):
        if flow == "magic_links" and not failed:
            failed.append(flow)
            raise RuntimeError("deadlock detected (injected)")
        return real_mark_many(org, flow, entities, **kwargs)

    store.mark_many = mark_many
    # Hopin's own webhook about the new magic link would mark the write-back too: lose it.
    env.hopin_admin("POST", "/deliveries/drop", {"count": 5})
    campaign = env.campaign()
    [member] = env.members(campaign, ["follow-on@example.com"])
    wait("the magic link written back", lambda: env.member(member).get("Hopin_Magic_Link__c"))
    assert failed, "the injected failure never happened"
    assert env.engine.wait_idle(30)
    assert len(env.magic_links("follow-on@example.com")) == 1
    assert store.dead_letter_count() == 0, store.dead_letters()


def test_check_recommends_the_external_id_a_target_offers(make_env):
    from eventsync.checks import check_org

    env = make_env(triggers=False, pollers=False, start=False)
    result = check_org(env.engine.config, "e2e", env.hooks, env=env.engine.env)
    [advice] = [f for f in result.findings if f.code == "external_id"]
    assert advice.severity == "info" and result.ok
    assert "Hopin_Registration_Id__c" in advice.message and "Email" in advice.message
    assert advice.where == "$.orgs.e2e.flows.export_registrations.match_key"
