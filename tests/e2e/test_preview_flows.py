"""The update-only flows previewed: magic_links and attendance predict, record for record and
field by field (current value -> new value), what a real run then does, on both stores.

Each batch mixes an update, a record whose CRM values are already the new ones though eventsync
never wrote them (unchanged: no write), one an earlier run wrote (unchanged by hash) and, for
attendance, an attendee who was not invited from the CRM. The preview writes nothing: the
sandboxes' write counters, the store and the CRM records are as they were. The real run is
compared through the CRM records and the audit trail (the fields each write changed).
"""

from __future__ import annotations

from typing import Any

import pytest
from eventsync.models import PushItem, PushRequest
from eventsync_salesforce.sandbox.wiring import LINK_FIELD, STATUS_FIELD

IMPORTS = {
    "source_object": "CampaignMember",
    "ticket_code_field": "Campaign.Hopin_Ticket_Code__c",
    "fields": [{"target": "email", "source": "Email"}],
}
MAGIC_LINKS = {"link_field": LINK_FIELD, "status_field": STATUS_FIELD}
# Salesforce endpoint categories that read (the rest write).
_SF_READS = {"token", "query", "describe", "describe_global", "limits", "resources", "other"}


def _writes(env) -> tuple[dict[str, int], dict[str, int]]:
    """The sandboxes' counters of write calls: Salesforce by endpoint, Hopin by route."""
    sf = env.sf_admin("GET", "/counters")["by_endpoint"]
    hopin = env.hopin_admin("GET", "/counters")["calls"]
    return (
        {k: v for k, v in sf.items() if k not in _SF_READS},
        # Asking for a report is a POST that reads (the attendance report is made on request).
        {k: v for k, v in hopin.items() if not k.startswith("GET ") and "/reports/" not in k},
    )


def _state(env, flow: str, entities: list[str], members: list[str]) -> tuple:
    store = env.engine.store
    return (
        _writes(env),
        store.flow_status("e2e", flow).pending,
        sorted(store.get_links("e2e", flow, entities).items()),
        len(store.audit_entries(org="e2e")),
        [sorted(env.member(m).fields.items()) for m in members],
    )


def _set(env, member: str, fields: dict[str, Any]) -> None:
    """A Salesforce user edits a CampaignMember."""
    [result] = env.hooks.push(
        env.crm, PushRequest("CampaignMember", "update", (PushItem("u", fields, id=member),))
    )
    assert result.ok, result.error


def _invited(env, wait, emails: list[str]) -> dict[str, str]:
    """CampaignMembers for ``emails``, invited and their links written back (a real run)."""
    members = dict(zip(emails, env.members(env.campaign(), emails), strict=True))
    assert env.engine.backfill("e2e", "import_registrations").finished
    wait(
        "every link written back",
        lambda: all(env.member(m).get(STATUS_FIELD) == "Invited" for m in members.values()),
    )
    assert env.engine.wait_idle(60)
    return members


def _preview(env, flow: str, entities: dict[str, str], members: list[str]) -> tuple:
    """Preview ``flow`` (what a backfill reads), check it wrote nothing, and return each
    named entity's predicted record, the summary and the audit entries so far."""
    earlier = {a.id for a in env.engine.store.audit_entries(org="e2e")}
    before = _state(env, flow, list(entities.values()), members)
    plan = env.engine.preview("e2e", flow)
    assert _state(env, flow, list(entities.values()), members) == before, "preview wrote"
    return {n: plan.record(e) for n, e in entities.items()}, plan.summary(), earlier


def _run_as_predicted(env, flow: str, got: dict, entities: dict, records: dict, earlier) -> None:
    """A real backfill of ``flow`` makes the writes predicted: each update to the record
    predicted, changing the fields predicted; nothing for a skip."""
    env.engine.start()
    assert env.engine.backfill("e2e", flow).finished
    assert env.engine.wait_idle(60)
    assert env.engine.store.dead_letter_count() == 0
    for name, entity in entities.items():
        entries = env.engine.store.audit_entries(org="e2e", entity=entity)
        writes = [a for a in entries if a.id not in earlier]
        if got[name].action == "skip":
            assert writes == [], name
            continue
        [write] = writes
        assert write.operation == "update" and write.record_id == records[name], name
        assert set(write.fields) == set(got[name].writes[0].changes), name


def test_magic_links_preview_predicts_the_real_run(make_env, wait):
    env = make_env(
        triggers=False,
        pollers=False,
        flows={"import_registrations": IMPORTS, "magic_links": MAGIC_LINKS},
    )
    names = ("accepted", "typed", "retyped", "untouched")
    members = _invited(env, wait, [f"{n}@example.com" for n in names])
    ids = {n: members[f"{n}@example.com"] for n in names}
    links = {n: env.magic_links(f"{n}@example.com")[0] for n in names}
    for name in ("accepted", "typed", "retyped"):
        env.hopin_admin("POST", f"/magicLinks/{links[name].id}/accept")
    # Someone typed the new status already; someone else overwrote the link too.
    _set(env, ids["typed"], {STATUS_FIELD: "Registered"})
    _set(env, ids["retyped"], {LINK_FIELD: "https://typed.example/x"})
    env.engine.stop()

    typed = env.engine.store.get_links("e2e", "magic_links", [ids["typed"]])[ids["typed"]]
    got, summary, earlier = _preview(env, "magic_links", ids, list(ids.values()))
    assert {n: r.action for n, r in got.items()} == {
        "accepted": "update",
        "typed": "skip",
        "retyped": "update",
        "untouched": "skip",
    }
    assert got["typed"].reason == "unchanged" and got["untouched"].reason == "unchanged"
    assert summary == {"create": 0, "update": 2, "skip": 2, "fail": 0}
    [accepted] = got["accepted"].writes
    assert dict(accepted.changes) == {STATUS_FIELD: {"before": "Invited", "after": "Registered"}}
    [retyped] = got["retyped"].writes
    assert dict(retyped.changes) == {
        LINK_FIELD: {
            "before": "https://typed.example/x",
            "after": links["retyped"].get("magicLink"),
        },
        STATUS_FIELD: {"before": "Invited", "after": "Registered"},
    }

    _run_as_predicted(env, "magic_links", got, ids, ids, earlier)
    for name, entity in ids.items():
        row = env.member(entity)
        assert row.get(LINK_FIELD) == links[name].get("magicLink"), name
        assert row.get(STATUS_FIELD) == ("Invited" if name == "untouched" else "Registered")
    # The record found unchanged is linked with its new digest: the next run skips it by hash.
    link = env.engine.store.get_links("e2e", "magic_links", [ids["typed"]])[ids["typed"]]
    assert link.hash != typed.hash


@pytest.mark.parametrize("if_empty", [True, False], ids=["if_empty-read", "read-after"])
def test_attendance_preview_predicts_the_real_run(make_env, wait, if_empty):
    # With an if_empty entry the flow reads before mapping, without one only what it writes.
    kept = [{"target": LINK_FIELD, "source": "email", "policy": "if_empty"}] if if_empty else []
    flows = {
        "import_registrations": IMPORTS,
        "magic_links": MAGIC_LINKS,
        "attendance": {
            "target_object": "CampaignMember",
            "status_field": "Status",
            "attended_value": "Attended",
            "fields": [
                {"target": STATUS_FIELD, "constant": "Registered", "policy": "always"},
                *kept,
            ],
        },
    }
    env = make_env(triggers=False, pollers=False, flows=flows)
    names = ("came", "typed", "earlier")
    members = _invited(env, wait, [f"{n}@example.com" for n in names])
    ids = {n: members[f"{n}@example.com"] for n in names}
    for name in names:  # they register through their magic links, a stranger directly
        env.hopin_admin(
            "POST", f"/magicLinks/{env.magic_links(f'{name}@example.com')[0].id}/accept"
        )
    env.register("stranger@example.com")
    for name in (*names, "stranger"):
        body = {"email": f"{name}@example.com", "durationSeconds": 60}
        env.hopin_admin("POST", "/attendance", body)
    # An earlier run wrote one attendee's attendance; someone typed another's already.
    env.engine.sync_entity("e2e", "attendance", "earlier@example.com")
    wait("the earlier run", lambda: env.member(ids["earlier"]).get("Status") == "Attended")
    assert env.engine.wait_idle(60)
    _set(env, ids["typed"], {"Status": "Attended", STATUS_FIELD: "Registered"})
    env.engine.stop()

    emails = {n: f"{n}@example.com" for n in (*names, "stranger")}
    got, summary, earlier = _preview(env, "attendance", emails, list(ids.values()))
    assert {n: r.action for n, r in got.items()} == {
        "came": "update",
        "typed": "skip",
        "earlier": "skip",
        "stranger": "skip",
    }
    assert got["typed"].reason == "unchanged" and got["earlier"].reason == "unchanged"
    assert got["stranger"].reason == "attendee was not invited from the CRM"
    assert summary == {"create": 0, "update": 1, "skip": 3, "fail": 0}
    [came] = got["came"].writes
    status = env.member(ids["came"]).get("Status")
    assert status != "Attended"
    # Only what changes (an if_empty link is kept: it has a value).
    assert dict(came.changes) == {
        "Status": {"before": status, "after": "Attended"},
        STATUS_FIELD: {"before": "Invited", "after": "Registered"},
    }

    _run_as_predicted(env, "attendance", got, emails, ids, earlier)
    for name in names:
        row = env.member(ids[name])
        assert (row.get("Status"), row.get(STATUS_FIELD)) == ("Attended", "Registered"), name
        assert row.get(LINK_FIELD) == env.magic_links(emails[name])[0].get("magicLink")
