"""All four flows on the example CRM (docs/example-plugin) as the organisation's CRM, with the
Hopin sandbox as its event platform: real sockets, the embedded engine and its endpoint.

Once driven by real triggers (ExampleCRM's signed webhooks and Hopin's deliveries) and once by
the pollers alone (watermark pulls on both sides). The organisation's configuration is written
out in full, so it does not depend on any default. Every test runs against SQLite and
PostgreSQL (``store_url``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from types import ModuleType
from typing import Any

import attrs
import pytest
import requests
from eventsync import backoff
from eventsync.checks import check_org
from eventsync.config import parse_config
from eventsync.engine import Engine
from eventsync.models import Filter, PullRequest, PushItem, PushRequest, Record
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import free_port
from eventsync.server import Server
from eventsync.store import StateStore

ORG = "acme"
FLOWS = ["export_registrations", "import_registrations", "magic_links", "attendance"]


def org_config(crm: Mapping[str, Any], hopin: Mapping[str, Any], poll: float) -> dict[str, Any]:
    """The organisation, every setting and mapping spelt out."""
    return {
        "plan": "enterprise",
        "plugins": ["examplecrm", "hopin"],
        "crm": "examplecrm",
        "event_platform": "hopin",
        "systems": {"examplecrm": dict(crm), "hopin": dict(hopin)},
        "plugin_options": {},
        "flows": {
            "export_registrations": {
                "target_object": "contact",
                "match_key": "email",
                "match_cascade": [],
                "update_only": False,
                "refunded": "sync",
                "fields": [
                    {"target": "email", "source": "email", "transforms": ["strip", "lower"]},
                    {"target": "firstname", "source": "firstName", "transforms": []},
                    {"target": "lastname", "source": "lastName", "transforms": []},
                    {"target": "company", "source": "headline", "transforms": []},
                ],
                "poll_interval": poll,
                "trigger_window": None,
                "enabled": True,
            },
            "import_registrations": {
                "source_object": "invitation",
                "ticket_code_field": "ticket_code",
                "fields": [
                    {"target": "email", "source": "email", "transforms": []},
                    {"target": "firstName", "source": "firstname", "transforms": []},
                    {"target": "lastName", "source": "lastname", "transforms": []},
                ],
                "poll_interval": poll,
                "trigger_window": None,
                "enabled": True,
            },
            "magic_links": {
                "link_field": "magic_link",
                "status_field": "link_status",
                "invited_value": "Invited",
                "registered_value": "Registered",
                "poll_interval": poll,
                "enabled": True,
            },
            "attendance": {
                "target_object": "invitation",
                "status_field": "attendance_status",
                "attended_value": "Attended",
                "no_show_value": None,
                "no_show_after": 3600.0,
                "fields": [
                    {"target": "attended_seconds", "source": "durationSeconds", "transforms": []}
                ],
                "poll_interval": poll,
                "enabled": True,
            },
        },
    }


@attrs.define
class CrmEnv:
    """The running pair of sandboxes, the engine, and helpers acting as CRM user and Hopin."""

    engine: Engine
    hooks: Hooks
    crm_sandbox: Any
    hopin: dict[str, Any]
    env: dict[str, str]
    http: requests.Session = attrs.field(factory=requests.Session)

    @property
    def crm(self) -> Any:
        """The engine's live ExampleCRM connection."""
        return self.engine.connection(ORG, "crm")

    def insert(self, obj: str, fields: dict[str, Any]) -> str:
        """Create one CRM record, as a CRM user would."""
        [result] = self.hooks.push(self.crm, PushRequest(obj, "insert", (PushItem("k", fields),)))
        assert result.ok, result.error
        return str(result.id)

    def record(self, obj: str, record_id: str) -> Record:
        """One CRM record, read through the plugin."""
        [found] = self.hooks.pull(self.crm, PullRequest(obj, ids=(record_id,)))
        return found

    def contacts(self, email: str) -> list[Record]:
        """Every contact with this email."""
        request = PullRequest("contact", filters=(Filter("email", "=", email),))
        return list(self.hooks.pull(self.crm, request))

    def magic_links(self, email: str) -> list[Record]:
        """The Hopin invitations for this email."""
        request = PullRequest("magicLink", filters=(Filter("email", "=", email),))
        return list(self.hooks.pull(self.engine.connection(ORG, "platform"), request))

    def hopin_admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the Hopin sandbox admin API (registrations, accepting links, attendance)."""
        response = self.http.request(method, f"{self.hopin['admin_url']}{path}", json=body)
        response.raise_for_status()
        return response.json() if response.content else None


@pytest.fixture
def make_crm_env(
    store_url: dict[str, Any], tmp_path: Any, example_plugin: ModuleType
) -> Iterator[Callable[..., CrmEnv]]:
    """Build environments; everything started is stopped at teardown."""
    started: list[tuple[Engine, Server, StateStore, list[Any]]] = []

    def make(*, triggers: bool, pollers: bool) -> CrmEnv:
        hooks = Hooks(
            make_plugin_manager(
                allow=["hopin"], extra_plugins={"examplecrm": example_plugin}, environ={}
            )
        )
        crm_sandbox = hooks.start_sandbox("examplecrm")
        hopin_sandbox = hooks.start_sandbox("hopin", {"report_ready_after": 0.0})
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}/hooks/{ORG}"
        crm = {
            **crm_sandbox.settings(ORG).options,
            "page_size": 100,
            "timeout": 10.0,
            "webhook_tolerance": 300.0,
        }
        hopin = dict(hopin_sandbox.settings(ORG).options)
        if triggers:
            hopin["webhook_url"] = f"{endpoint}/hopin"
        config = parse_config(
            {
                "engine": {
                    "state": store_url["path"] or store_url["url"],
                    "listen": f"127.0.0.1:{port}",
                    "workers": 2,
                    "batch_size": 200,
                    "batch_linger": 0.05,
                    "max_attempts": 12,
                    "backoff_base": 0.05,
                    "backoff_cap": 0.5,
                    "lease_seconds": 30.0,
                    "maintenance_interval": 300.0,
                    "backfill_budget_share": 0.5,
                    "plugins_block": [],
                },
                "entitlements": {"enterprise": FLOWS},
                "orgs": {ORG: org_config(crm, hopin, poll=0.2)},
            },
            source="<example crm e2e>",
            hooks=hooks,
        )
        env = {**crm_sandbox.settings(ORG).env, **hopin_sandbox.settings(ORG).env}
        store = StateStore.open(
            store_url["url"],
            path=store_url["path"],
            schema=store_url["schema"],
            max_attempts=config.engine.max_attempts,
            backoff_base=0.05,
            backoff_cap=0.5,
        )
        engine = Engine(config, hooks=hooks, env=env, store=store, pollers=pollers)
        server = Server(engine, port=port).start()
        started.append((engine, server, store, [crm_sandbox, hopin_sandbox]))
        if triggers:  # ExampleCRM delivers its signed change events to the engine
            response = requests.post(
                f"{crm_sandbox.admin_url}/webhooks", json={"url": f"{endpoint}/examplecrm"}
            )
            response.raise_for_status()
        engine.start()
        return CrmEnv(engine, hooks, crm_sandbox, hopin_sandbox.info(), env)

    with backoff.disabled():
        yield make
    for engine, server, store, sandboxes in started:
        engine.stop()
        for sandbox in sandboxes:  # first, so no delivery keeps a connection to the server
            sandbox.stop()
        server.stop()
        store.close()


@pytest.mark.parametrize("triggers", [True, False], ids=["triggers", "pollers"])
def test_all_four_flows_run_on_the_example_crm(make_crm_env, wait, triggers):
    env = make_crm_env(triggers=triggers, pollers=not triggers)
    check = check_org(env.engine.config, ORG, env.hooks, env=env.env)
    assert check.ok, check.findings

    # export_registrations: a Hopin registration updates the contact with the same email.
    existing = env.insert("contact", {"email": "grace@example.com", "lastname": "H."})
    env.hopin_admin(
        "POST",
        f"/events/{env.hopin['event_id']}/registrations",
        {
            "ticketId": env.hopin["ticket_id"],
            "email": "Grace@Example.com",
            "firstName": "Grace",
            "lastName": "Hopper",
            "headline": "Navy",
        },
    )
    [contact] = wait(
        "the registration exported onto the contact",
        lambda: [c for c in env.contacts("grace@example.com") if c.get("company") == "Navy"],
    )
    assert contact.id == existing  # matched on email, not created again
    assert (contact.get("firstname"), contact.get("lastname")) == ("Grace", "Hopper")

    # import_registrations: an invitation with the ticket code becomes a Hopin magic link.
    invitation = env.insert(
        "invitation",
        {
            "email": "ada@example.com",
            "firstname": "Ada",
            "lastname": "Lovelace",
            "ticket_code": env.hopin["ticket_integration_code"],
        },
    )
    [link] = wait("the magic link in Hopin", lambda: env.magic_links("ada@example.com"))
    assert link.get("registrationId") == invitation
    assert link.get("ticketId") == env.hopin["ticket_id"]

    # magic_links: the link and its status are written back into the invitation.
    written = wait(
        "the magic link on the invitation",
        lambda: (r := env.record("invitation", invitation)).get("magic_link") and r,
    )
    assert written.get("magic_link") == link.get("magicLink")
    assert written.get("link_status") == "Invited"
    env.hopin_admin("POST", f"/magicLinks/{link.id}/accept")
    wait(
        "Registered on the invitation",
        lambda: env.record("invitation", invitation).get("link_status") == "Registered",
    )

    # attendance: who attended, and for how long, lands on the invitation.
    env.hopin_admin("POST", "/attendance", {"email": "ada@example.com", "durationSeconds": 1800})
    attended = wait(
        "attendance on the invitation",
        lambda: (
            (r := env.record("invitation", invitation)).get("attendance_status") == "Attended" and r
        ),
        timeout=60,
    )
    assert attended.get("attended_seconds") == 1800
    assert env.engine.wait_idle(30)
    assert env.engine.store.dead_letter_count() == 0
    assert len(env.contacts("grace@example.com")) == 1
    assert len(env.magic_links("ada@example.com")) == 1
