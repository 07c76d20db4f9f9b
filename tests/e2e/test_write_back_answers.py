"""The write-back takes a magic link from the import that just created it, not from a read.

The import flow marks ``magic_links`` with the link as Hopin answered the create; while that
mark is the row's only one, the write-back uses it instead of reading the link back. A row
marked again since (the link may have changed) reads it. Every test runs with SQLite and
PostgreSQL as the state store (``store_url``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid

from eventsync.flows.magic_links import answered_link
from eventsync.models import HttpRequest, PushItem, PushRequest, PushResult, Reception
from eventsync_salesforce.sandbox.wiring import LINK_FIELD, STATUS_FIELD

BY_ID = "GET /v1/magicLinks/<link_id>"
LIST = "GET /v1/tickets/<ticket_id>/magicLinks"
CREATE = "POST /v1/tickets/<ticket_id>/magicLinks"


def _calls(env):
    return env.hopin_admin("GET", "/counters")["calls"]


def test_a_created_link_is_written_back_without_reading_it_again(make_env, wait):
    env = make_env(triggers=True, pollers=False)
    campaign = env.campaign()
    env.hopin_admin("DELETE", "/counters")
    [member] = env.members(campaign, ["ada@example.com"])
    row = wait(
        "the magic link on the CampaignMember",
        lambda: (m := env.member(member)).get(LINK_FIELD) and m,
    )
    calls = _calls(env)
    # The import's look-before-create and its create; the write-back read nothing.
    assert (calls.get(LIST), calls.get(CREATE), calls.get(BY_ID, 0)) == (1, 1, 0)
    [link] = env.magic_links("ada@example.com")
    assert row.get(LINK_FIELD) == link.get("magicLink") and row.get(STATUS_FIELD) == "Invited"


def test_a_link_marked_again_since_its_creation_is_read_back(make_env, wait):
    env = make_env(triggers=True, pollers=False)
    campaign = env.campaign()
    [member] = env.members(campaign, ["ada@example.com"])
    wait("the magic link on the CampaignMember", lambda: env.member(member).get(LINK_FIELD))
    [link] = env.magic_links("ada@example.com")
    env.hopin_admin("POST", f"/magicLinks/{link.id}/accept")
    wait("Registered", lambda: env.member(member).get(STATUS_FIELD) == "Registered")
    assert env.engine.wait_idle(120)
    env.engine.stop()
    # A mark carrying the link as it was at its creation, then another mark: the row no
    # longer proves the carried link current.
    stale = answered_link(
        "hopin",
        link.id,
        PushResult(
            key=member,
            ok=True,
            id=link.id,
            returned={"magicLink": link.get("magicLink"), "status": "pending"},
        ),
    )
    env.engine.mark(env.org, "magic_links", {member: stale})
    env.engine.mark(env.org, "magic_links", [member])
    env.hopin_admin("DELETE", "/counters")
    env.engine.start()
    assert env.engine.wait_idle(120)
    assert env.member(member).get(STATUS_FIELD) == "Registered"
    assert _calls(env).get(BY_ID) == 1


def _redeliver(env, payload: dict) -> Reception:
    """``payload`` delivered again as a new delivery (new id, signed now) to the engine."""
    body = json.dumps(
        {**payload, "id": uuid.uuid4().hex, "occurredAt": dt.datetime.now(dt.UTC).isoformat()}
    ).encode()
    settings = env.engine.config.org(env.org).settings("hopin", env.engine.env)
    secret = settings.secret("webhook_secret")
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return env.engine.receive(
        env.org, "hopin", HttpRequest("POST", "/", {"X-Hopin-Signature": signature}, body)
    )


def test_a_link_creation_delivery_marks_no_write_back_but_an_acceptance_does(make_env, wait):
    env = make_env(triggers=True, pollers=False)
    campaign = env.campaign()
    [member] = env.members(campaign, ["ada@example.com"])
    wait("the magic link on the CampaignMember", lambda: env.member(member).get(LINK_FIELD))
    [link] = env.magic_links("ada@example.com")
    env.hopin_admin("POST", f"/magicLinks/{link.id}/accept")
    wait("Registered", lambda: env.member(member).get(STATUS_FIELD) == "Registered")
    deliveries = [d["payload"] for d in env.hopin_admin("GET", "/deliveries")["deliveries"]]
    [created] = [p for p in deliveries if p["signal"] == "magicLinkCreated"]
    [accepted] = [p for p in deliveries if p["signal"] == "magicLinkAccepted"]
    again = _redeliver(env, created)
    assert (again.result, again.entities) == ("accepted", 0)
    assert _redeliver(env, accepted).entities >= 1


def _crm_reads(env) -> float:
    """How many reads the engine's flows made of Salesforce (its call metrics)."""
    labels = {"org": env.org, "system": "salesforce", "call": "pull"}
    name = "eventsync_remote_call_duration_seconds_count"
    return env.engine.metrics.registry().get_sample_value(name, labels) or 0.0


def test_a_link_created_just_now_is_written_without_reading_the_crm_record(make_env, wait):
    env = make_env(triggers=True, pollers=False)
    campaign = env.campaign()
    before = _crm_reads(env)
    [member] = env.members(campaign, ["ada@example.com"])
    wait("the magic link on the CampaignMember", lambda: env.member(member).get(LINK_FIELD))

    def delivered() -> bool:
        messages = env.sf_admin("GET", "/outbound")["messages"]
        return sum(m["record_id"] == member and m["delivered"] for m in messages) == 2

    # The member's creation and the write-back's update were both announced and synced.
    wait("both outbound messages delivered", delivered)
    assert env.engine.wait_idle(120)
    # One read of the member, by the import for the creation's message; none by the
    # write-back, and none for the write-back's own message (its echo runs no import).
    assert _crm_reads(env) - before == 1


def _messages(env, member: str) -> list[dict]:
    return [m for m in env.sf_admin("GET", "/outbound")["messages"] if m["record_id"] == member]


def _import_marks(env, member: str) -> int:
    log = env.engine.store.entity_log(env.org, "import_registrations", member)
    return sum(1 for entry in log if entry.outcome == "marked")


def test_the_outbound_message_of_the_write_back_does_not_re_run_the_import(make_env, wait):
    env = make_env(triggers=True, pollers=False)
    campaign = env.campaign()
    [member] = env.members(campaign, ["ada@example.com"])
    wait("the magic link on the CampaignMember", lambda: env.member(member).get(LINK_FIELD))
    # The creation's message and the write-back's own, both delivered and acknowledged.
    wait(
        "both Outbound Messages delivered",
        lambda: len(ms := _messages(env, member)) == 2 and all(m["delivered"] for m in ms),
    )
    assert env.engine.wait_idle(120)
    # The echo carried the link and status just written: the import was marked only once.
    assert _import_marks(env, member) == 1
    # A person's change afterwards is announced by a message of its own, which is no echo.
    env.hooks.push(
        env.crm,
        PushRequest(
            "CampaignMember", "update", (PushItem(member, {"Status": "Attended"}, id=member),)
        ),
    )
    wait("the import marked again", lambda: _import_marks(env, member) == 2)
    assert env.engine.wait_idle(120)
    [link] = env.magic_links("ada@example.com")
    assert env.member(member).get(LINK_FIELD) == link.get("magicLink")
