"""Each cancellation policy of the export flow, on both stores: a refunded, cancelled or removed
registration keeps, marks or deletes the Lead it was exported to, or removes the
CampaignMember the person was invited from (their Lead stays)."""

from __future__ import annotations

import pytest
from eventsync.models import Filter, PullRequest, PushItem, PushRequest
from eventsync_salesforce.sandbox.wiring import LINK_FIELD, STATUS_FIELD

FIELDS = [
    {"target": "LastName", "source": "lastName"},
    {"target": "Email", "source": "email"},
    {"target": "Company", "constant": "Hopin attendee"},
]
MARK = {"cancel_field": "Status", "cancel_value": "Closed - Not Converted"}


def flows(on_cancel: str, **extra) -> dict:
    return {
        "export_registrations": {
            "target_object": "Lead",
            "match_key": "Email",
            "fields": FIELDS,
            "on_cancel": on_cancel,
            **extra,
        },
        "import_registrations": {
            "source_object": "CampaignMember",
            "ticket_code_field": "Campaign.Hopin_Ticket_Code__c",
            "fields": [{"target": "email", "source": "Email"}],
        },
    }


def _sync(env, flow: str, entity: str) -> None:
    env.engine.sync_entity("e2e", flow, entity)
    assert env.engine.wait_idle(60)
    assert env.engine.store.dead_letter_count() == 0, env.engine.store.dead_letters()


def _lead(env, email: str):
    found = env.sf_query("Lead", ("Id", "Status", "LastName"), Filter("Email", "=", email))
    return found[0] if found else None


def _exported(env, on_cancel: str, email: str, **extra):
    env_ = env(triggers=False, pollers=False, flows=flows(on_cancel, **extra))
    registration = env_.register(email, lastName="Lamarr")
    _sync(env_, "export_registrations", registration)
    lead = _lead(env_, email)
    assert lead is not None and lead.get("LastName") == "Lamarr"
    return env_, registration, lead


@pytest.mark.parametrize("how", ["refund", "cancel", "remove"])
def test_keep_leaves_the_lead(make_env, how):
    env, registration, lead = _exported(make_env, "keep", "keep@example.com")
    _end(env, registration, how)
    _sync(env, "export_registrations", registration)
    after = _lead(env, "keep@example.com")
    assert after is not None and after.id == lead.id and after.get("Status") == lead.get("Status")


@pytest.mark.parametrize("how", ["refund", "cancel", "remove"])
def test_mark_sets_the_cancel_field(make_env, how):
    env, registration, lead = _exported(make_env, "mark", "mark@example.com", **MARK)
    _end(env, registration, how)
    _sync(env, "export_registrations", registration)
    assert _lead(env, "mark@example.com").get("Status") == MARK["cancel_value"]
    [entry] = [
        e
        for e in env.engine.store.audit_entries(org="e2e", entity=registration)
        if e.fields == ("Status",)
    ]
    assert entry.record_id == lead.id


@pytest.mark.parametrize("how", ["refund", "cancel", "remove"])
def test_delete_deletes_the_lead_and_forgets_the_link(make_env, how):
    env, registration, _ = _exported(make_env, "delete", "delete@example.com")
    _end(env, registration, how)
    _sync(env, "export_registrations", registration)
    assert _lead(env, "delete@example.com") is None
    assert env.engine.store.get_links("e2e", "export_registrations", [registration]) == {}
    _sync(env, "export_registrations", registration)  # again: nothing left to undo, no error


def test_remove_deletes_the_campaign_membership_only(make_env):
    env = make_env(triggers=False, pollers=False, flows=flows("remove"))
    [member] = env.members(env.campaign(), ["ada@example.com"])
    _sync(env, "import_registrations", member)
    [link] = env.magic_links("ada@example.com")
    accepted = env.hopin_admin("POST", f"/magicLinks/{link.id}/accept")
    registration = accepted["data"]["attributes"]["hopinRegistrationId"]
    _sync(env, "export_registrations", registration)
    lead = _lead(env, "ada@example.com")
    env.hopin_admin("POST", f"/registrations/{registration}/refund")
    _sync(env, "export_registrations", registration)
    assert list(env.hooks.pull(env.crm, PullRequest("CampaignMember", ids=(member,)))) == []
    assert _lead(env, "ada@example.com").id == lead.id  # the person's own record stays
    log = env.engine.store.sync_log(flow="export_registrations", entity=registration)
    assert log[0].message == f"cancelled: removed CampaignMember {member}"


def test_an_invitation_deleted_in_salesforce_revokes_its_magic_link_via_the_poller(make_env, wait):
    crm_flows = {"import_registrations": {**flows("keep")["import_registrations"]}}
    crm_flows["import_registrations"].update(on_delete="delete", poll_interval=0.2)
    env = make_env(triggers=False, pollers=True, poll_interval=0.2, flows=crm_flows)
    kept, deleted = env.members(env.campaign(), ["stay@example.com", "gone@example.com"])
    wait("both invitations", lambda: len(env.magic_links()) == 2)
    [result] = env.hooks.push(
        env.crm, PushRequest("CampaignMember", "delete", (PushItem("x", {}, id=deleted),))
    )
    assert result.ok, result.error
    # No notification: the poller finds the deletion (queryAll, IsDeleted) and revokes the link.
    # The link is forgotten just after the magic link is deleted remotely: wait for both.
    wait(
        "the magic link revoked and its link forgotten",
        lambda: (
            env.magic_links("gone@example.com") == []
            and env.engine.store.get_links("e2e", "import_registrations", [deleted]) == {}
        ),
    )
    assert len(env.magic_links("stay@example.com")) == 1
    assert env.engine.store.dead_letter_count() == 0


def test_an_invitation_undeleted_in_salesforce_is_invited_again_once(make_env, wait):
    crm_flows = {
        "import_registrations": {
            **flows("keep")["import_registrations"],
            "on_delete": "delete",
            "poll_interval": 0.2,
        },
        "magic_links": {"link_field": LINK_FIELD, "poll_interval": 0.2},
    }
    env = make_env(triggers=False, pollers=True, poll_interval=0.2, flows=crm_flows)
    [member] = env.members(env.campaign(), ["back@example.com"])
    wait("the link written back", lambda: env.member(member).get(LINK_FIELD) is not None)
    [first] = env.magic_links("back@example.com")
    [result] = env.hooks.push(
        env.crm, PushRequest("CampaignMember", "delete", (PushItem("x", {}, id=member),))
    )
    assert result.ok, result.error
    wait("the magic link revoked", lambda: env.magic_links("back@example.com") == [])
    # Restored from the recycle bin (same id): the poller sees it changed and invites again.
    [restored] = env.sf_admin("POST", "/undelete", {"ids": [member]})
    assert restored == {"id": member, "success": True, "errors": []}
    wait("invited again", lambda: len(env.magic_links("back@example.com")) == 1)
    [second] = env.magic_links("back@example.com")
    assert second.id != first.id
    wait(
        "the new link written back",
        lambda: env.member(member).get(LINK_FIELD) == second.get("magicLink"),
    )
    assert env.engine.wait_idle(60)
    [link] = env.engine.store.get_links("e2e", "import_registrations", [member]).values()
    assert link.target_id == second.id
    assert [e.record_id for e in _link_inserts(env, member)] == [first.id, second.id]
    assert len(env.magic_links("back@example.com")) == 1
    assert env.engine.store.dead_letter_count() == 0


def test_an_undelete_before_the_deletion_was_synced_keeps_the_one_invitation(make_env):
    crm_flows = {
        "import_registrations": {**flows("keep")["import_registrations"], "on_delete": "delete"}
    }
    env = make_env(triggers=False, pollers=False, flows=crm_flows)
    [member] = env.members(env.campaign(), ["blip@example.com"])
    _sync(env, "import_registrations", member)
    [link] = env.magic_links("blip@example.com")
    [result] = env.hooks.push(
        env.crm, PushRequest("CampaignMember", "delete", (PushItem("x", {}, id=member),))
    )
    assert result.ok, result.error
    [restored] = env.sf_admin("POST", "/undelete", {"ids": [member]})
    assert restored["success"], restored
    _sync(env, "import_registrations", member)
    assert [m.id for m in env.magic_links("blip@example.com")] == [link.id]
    assert [e.record_id for e in _link_inserts(env, member)] == [link.id]


def _link_inserts(env, member: str) -> list:
    entries = env.engine.store.audit_entries(org="e2e", entity=member)
    found = [e for e in entries if e.object == "magicLink" and e.operation == "insert"]
    return sorted(found, key=lambda e: e.id)


@pytest.mark.parametrize("on_revoke", ["mark", "clear"])
def test_a_revoked_magic_link_is_marked_or_cleared_on_the_crm_record(make_env, on_revoke):
    crm_flows = {
        "import_registrations": flows("keep")["import_registrations"],
        "magic_links": {
            "link_field": LINK_FIELD,
            "status_field": STATUS_FIELD,
            "on_revoke": on_revoke,
        },
    }
    env = make_env(triggers=False, pollers=False, flows=crm_flows)
    [member] = env.members(env.campaign(), ["rev@example.com"])
    _sync(env, "import_registrations", member)
    _sync(env, "magic_links", member)
    [link] = env.magic_links("rev@example.com")
    assert env.member(member).get(LINK_FIELD) == link.get("magicLink")
    [revoked] = env.hooks.push(
        env.platform, PushRequest("magicLink", "delete", (PushItem("r", {}, id=link.id),))
    )
    assert revoked.ok, revoked.error
    _sync(env, "magic_links", member)
    row = env.member(member)
    assert row.get(LINK_FIELD) is None
    assert row.get(STATUS_FIELD) == ("Revoked" if on_revoke == "mark" else None)


def test_mark_without_its_field_is_a_configuration_error(make_env):
    from eventsync.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as caught:
        make_env(triggers=False, pollers=False, flows=flows("mark"), start=False)
    assert "cancel_field" in str(caught.value) and "cancel_value" in str(caught.value)


def _end(env, registration: str, how: str) -> None:
    if how == "refund":
        env.hopin_admin("POST", f"/registrations/{registration}/refund")
    elif how == "cancel":
        env.hopin_admin("PATCH", f"/registrations/{registration}", {"status": "cancelled"})
    else:
        env.hopin_admin("DELETE", f"/registrations/{registration}")
