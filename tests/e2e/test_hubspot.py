"""All four flows with HubSpot as the CRM and Hopin as the event platform: both sandboxes over
real sockets, the embedded engine and its HTTP endpoint, on SQLite and PostgreSQL
(``store_url``). The flows' configuration is the one ``eventsync init --sandbox`` writes for
these two systems (the plugins' ``sandbox_flows``): nothing in it is HubSpot-specific code.

Besides the happy paths (driven by HubSpot's signed webhooks and Hopin's deliveries, or by
the pollers alone), HubSpot's webhooks come twice and out of order and are replayed, one bad
record is refused inside a batch of good ones, and a fifth of HubSpot's answers are 429s and
5xx: every record lands once. The SIGKILL of a backfill is in ``test_hubspot_backfill_kill``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

import attrs
import pytest
from eventsync.checks import check_org
from eventsync.engine import Engine
from eventsync.models import PullRequest, PushItem, PushRequest, Record
from eventsync.plugins import Hooks
from eventsync.sandbox_env import SandboxPair, merge_flows
from eventsync_hopin.sandbox.wiring import FLOWS as HOPIN_FLOWS
from eventsync_hubspot.sandbox.wiring import (
    ATTENDANCE_FIELD,
    LINK_FIELD,
    STATUS_FIELD,
    TICKET_CODE_FIELD,
)
from eventsync_hubspot.sandbox.wiring import FLOWS as HUBSPOT_FLOWS
from eventsync_hubspot.webhooks import signed_request

ORG = "e2e"  # the harness's organisation
pytestmark = pytest.mark.slow


@attrs.define
class HubSpotEnv:
    """The harness's environment (``make_env``) with helpers acting as a HubSpot user."""

    base: Any  # the harness's Env: pair, engine, hooks, hopin_admin, register ...

    @property
    def engine(self) -> Engine:
        """The embedded engine."""
        return self.base.engine

    @property
    def hooks(self) -> Hooks:
        """The plugins."""
        return self.base.hooks

    @property
    def pair(self) -> SandboxPair:
        """The HubSpot and Hopin sandboxes."""
        return self.base.pair

    @property
    def crm(self) -> Any:
        """The engine's HubSpot connection."""
        return self.engine.connection(ORG, "crm")

    @property
    def hopin(self) -> dict[str, Any]:
        """The Hopin sandbox's info (event, ticket, admin URL)."""
        return self.base.hopin

    def hopin_admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the Hopin sandbox's admin API."""
        return self.base.hopin_admin(method, path, body)

    def register(self, email: str, **fields: Any) -> str:
        """Someone registers on the Hopin ticket directly."""
        return self.base.register(email, **fields)

    def hubspot_admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the HubSpot sandbox's admin API."""
        url = f"{self.pair.crm.admin_url}{path}"
        response = self.base.http.request(method, url, json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def invitees(self, emails: list[str]) -> list[str]:
        """Contacts carrying the ticket code, created as a HubSpot user would."""
        code = self.hopin["ticket_integration_code"]
        items = tuple(
            PushItem(
                e,
                {
                    "email": e,
                    "firstname": e.split("@")[0].title(),
                    "lastname": "Invitee",
                    TICKET_CODE_FIELD: code,
                },
            )
            for e in emails
        )
        results = self.hooks.push(self.crm, PushRequest("contacts", "insert", items))
        assert all(r.ok for r in results), [r.error for r in results if not r.ok]
        return [str(r.id) for r in results]

    def contact(self, contact_id: str) -> Record:
        """One contact with the properties the flows write."""
        fields = (
            "email",
            "firstname",
            "lastname",
            "company",
            LINK_FIELD,
            STATUS_FIELD,
            ATTENDANCE_FIELD,
        )
        [row] = self.hooks.pull(self.crm, PullRequest("contacts", ids=(contact_id,), fields=fields))
        return row

    def contacts(self) -> list[dict[str, Any]]:
        """Every contact in the sandbox, as stored."""
        return self.hubspot_admin("GET", "/objects/contacts")["results"]

    def magic_links(self) -> list[Record]:
        """Every magic link on the Hopin event."""
        return self.base.magic_links()

    def metrics(self) -> str:
        """The engine's /metrics."""
        return self.base.http.get(f"{self.base.server.url}/metrics", timeout=10).text


def flows_with(**more_fields: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The sandbox organisation's flows for HubSpot and Hopin, with more field mappings."""
    flows = merge_flows(HUBSPOT_FLOWS, HOPIN_FLOWS, poll_interval=0.3)
    for flow, entries in more_fields.items():
        flows[flow]["fields"] = [*flows[flow]["fields"], *entries]
    return flows


@pytest.fixture
def make_hubspot(make_env: Callable[..., Any]) -> Callable[..., HubSpotEnv]:
    """The harness's ``make_env`` with HubSpot as the CRM."""

    def make(
        *, hubspot: dict[str, Any] | None = None, hopin: dict[str, Any] | None = None, **more: Any
    ) -> HubSpotEnv:
        base = make_env(
            crm="hubspot",
            crm_options={"seed": 13, **(hubspot or {})},
            hopin_options={"report_ready_after": 0.0, **(hopin or {})},
            **more,
        )
        return HubSpotEnv(base)

    return make


@pytest.mark.parametrize("triggers", [True, False], ids=["webhooks", "pollers"])
def test_all_four_flows_run_on_hubspot(make_hubspot, wait, triggers):
    env = make_hubspot(triggers=triggers, pollers=not triggers)
    check = check_org(env.engine.config, ORG, env.hooks, env=env.pair.secrets())
    assert check.ok, check.findings

    # export_registrations: a Hopin registration updates the contact with the same email.
    [existing] = env.hooks.push(
        env.crm,
        PushRequest(
            "contacts", "insert", (PushItem("g", {"email": "grace@example.com", "lastname": "H."}),)
        ),
    )
    env.register("Grace@Example.com", firstName="Grace", lastName="Hopper", headline="Navy")
    contact = wait(
        "the registration exported onto the contact",
        lambda: (c := env.contact(str(existing.id))).get("company") == "Navy" and c,
    )
    assert (contact.get("firstname"), contact.get("lastname")) == ("Grace", "Hopper")

    # import_registrations: a contact carrying the ticket code becomes a Hopin magic link.
    [invitee] = env.invitees(["ada@example.com"])
    [link] = wait(
        "the magic link in Hopin",
        lambda: [m for m in env.magic_links() if m.get("email") == "ada@example.com"],
    )
    assert link.get("registrationId") == invitee
    assert link.get("ticketId") == env.hopin["ticket_id"]

    # magic_links: the link and its status are written back to the contact.
    written = wait(
        "the magic link on the contact", lambda: (r := env.contact(invitee)).get(LINK_FIELD) and r
    )
    assert written.get(LINK_FIELD) == link.get("magicLink")
    assert written.get(STATUS_FIELD) == "Invited"
    env.hopin_admin("POST", f"/magicLinks/{link.id}/accept")
    wait(
        "Registered on the contact", lambda: env.contact(invitee).get(STATUS_FIELD) == "Registered"
    )

    # attendance: who attended lands on the contact.
    env.hopin_admin("POST", "/attendance", {"email": "ada@example.com", "durationSeconds": 1800})
    wait(
        "Attended on the contact",
        lambda: env.contact(invitee).get(ATTENDANCE_FIELD) == "Attended",
        timeout=60,
    )

    assert env.engine.wait_idle(30)
    assert env.engine.store.dead_letter_count() == 0, env.engine.store.dead_letters()
    emails = Counter(c["properties"]["email"] for c in env.contacts())
    assert emails["grace@example.com"] == 1 and emails["ada@example.com"] == 1
    assert len([m for m in env.magic_links() if m.get("email") == "ada@example.com"]) == 1


def _replay(env: HubSpotEnv, deliveries: list[dict[str, Any]]) -> list[int]:
    """Post captured deliveries again, newest first, freshly signed (as HubSpot's retries
    are): same event ids."""
    secret, statuses = env.pair.crm.info()["client_secret"], []
    for delivery in reversed(deliveries):
        body, headers = signed_request(secret, delivery["url"], delivery["events"])
        statuses.append(
            env.base.http.post(delivery["url"], data=body, headers=headers, timeout=30).status_code
        )
    return statuses


def test_duplicate_and_out_of_order_webhooks_make_one_invitation_each(make_hubspot, wait):
    env = make_hubspot()
    env.hubspot_admin("POST", "/webhooks", {"duplicate": 1.0, "reorder": True})
    emails = [f"guest{i}@example.com" for i in range(24)]
    contacts = []
    for start in range(0, len(emails), 8):
        contacts += env.invitees(emails[start : start + 8])
    wait(
        "every link on its contact",
        lambda: all(env.contact(c).get(LINK_FIELD) for c in contacts),
        timeout=60,
    )
    deliveries = [
        d for d in env.hubspot_admin("GET", "/deliveries")["deliveries"] if 200 <= d["status"] < 300
    ]
    assert len(deliveries) >= 2 * 3, "each delivery was sent twice"
    assert set(_replay(env, deliveries)) == {200}
    assert env.engine.wait_idle(60)
    duplicates = re.findall(
        r'eventsync_notifications_total\{[^}]*result="duplicate"[^}]*system="hubspot"[^}]*\} (\d+)',
        env.metrics(),
    )
    duplicates += re.findall(
        r'eventsync_notifications_total\{[^}]*system="hubspot"[^}]*result="duplicate"[^}]*\} (\d+)',
        env.metrics(),
    )
    assert sum(float(n) for n in duplicates) >= len(deliveries) / 2, env.metrics()
    links = Counter(str(m.get("email")) for m in env.magic_links())
    assert {e: links[e] for e in emails} == dict.fromkeys(emails, 1)
    assert env.engine.store.dead_letter_count() == 0


def test_a_bad_record_is_isolated_from_its_batch(make_hubspot):
    """HubSpot refuses a whole batch (409) when one input takes a unique value another contact
    holds: the plugin splits the batch until that record stands alone, and the rest lands."""
    badge = {"name": "badge_code", "type": "string", "hasUniqueValue": True}
    env = make_hubspot(
        triggers=False,
        start=False,
        hubspot={"properties": {"contacts": [badge]}},
        flows=flows_with(export_registrations=[{"target": "badge_code", "source": "headline"}]),
    )
    [holder] = env.hooks.push(
        env.crm,
        PushRequest(
            "contacts",
            "insert",
            (PushItem("h", {"email": "holder@example.com", "badge_code": "B-7"}),),
        ),
    )
    good = [f"good{i}@example.com" for i in range(20)]
    for number, email in enumerate(good):
        env.register(email, headline=f"B-{100 + number}")
    env.register("bad@example.com", headline="B-7")
    result = env.engine.backfill(ORG, "export_registrations")
    assert result.finished and result.marked == 21
    env.engine.start()
    assert env.engine.wait_idle(60)
    [dead] = env.engine.store.dead_letters()
    assert dead.code == "CONFLICT" and f"Existing ID: {holder.id}" in dead.message
    stored = {c["properties"]["email"]: c["properties"]["badge_code"] for c in env.contacts()}
    assert stored == {
        "holder@example.com": "B-7",
        **{e: f"B-{100 + n}" for n, e in enumerate(good)},
    }
    calls = env.hubspot_admin("GET", "/counters")["calls"]
    # Found by halving the batch, not one record at a time (an upsert, or with update policies
    # in the mapping, a search then create and update calls).
    writes = sum(calls.get(op, 0) for op in ("upsert", "create", "update"))
    assert 0 < writes < 21, calls


def test_a_fifth_of_hubspots_answers_429_or_5xx_and_every_record_lands_once(make_hubspot, wait):
    # Small batches: many calls, so the faults certainly fire. HubSpot's webhooks and the
    # backfill drive the flows (pollers would re-mark the tail of their overlap each poll).
    env = make_hubspot(
        start=False, hopin={"seed_registrations": 60}, engine_options={"batch_size": 2}
    )
    invitees = [f"vip{i}@example.com" for i in range(15)]
    env.invitees(invitees)
    for fault in (
        {"endpoint": "*", "status": 429, "probability": 0.1, "retry_after": 0},
        {"endpoint": "*", "status": 503, "probability": 0.1},
        {"endpoint": "upsert", "status": 502, "probability": 0.05, "when": "after"},
    ):
        env.hubspot_admin("POST", "/faults", fault)
    result = env.engine.backfill(ORG, "export_registrations")
    assert result.finished and result.marked == 60
    env.engine.start()

    def linked() -> bool:
        stored = {c["properties"]["email"]: c["properties"] for c in env.contacts()}
        return all(stored.get(e, {}).get(LINK_FIELD) for e in invitees) and len(stored) >= 75

    wait("every registration exported and every link on its contact", linked, timeout=120)
    counters = env.hubspot_admin("GET", "/counters")
    assert sum(counters["injected"].values()) >= 1, counters  # about a fifth of the calls
    env.hubspot_admin("DELETE", "/faults")  # the faults stop; what is in flight drains
    assert env.engine.wait_idle(120), [s for s in env.engine.status() if s.pending or s.leased]
    assert env.engine.store.dead_letter_count() == 0, env.engine.store.dead_letters()
    emails = Counter(c["properties"]["email"] for c in env.contacts())
    registrations = env.hooks.pull(
        env.engine.connection(ORG, "platform"), PullRequest("registration")
    )
    registered = {str(r.get("email")).lower() for r in registrations}
    assert registered | set(invitees) == set(emails) and max(emails.values()) == 1, emails
    links = Counter(str(m.get("email")) for m in env.magic_links())
    assert all(links[e] == 1 for e in invitees), links
