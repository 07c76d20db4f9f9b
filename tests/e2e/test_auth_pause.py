"""Refused credentials pause the organisation (docs/errors.md): the engine against the Salesforce
sandbox with a wrong password, seen through ``/healthz``; nothing is dead-lettered however long
it lasts, and the work lands once the credentials are right again."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
from eventsync.engine import Engine
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import SandboxPair, config_for, free_port, start_sandboxes
from eventsync.server import Server
from eventsync.store import StateStore
from eventsync.waiting import wait_until

ORG = "e2e"


class Running:
    """The engine with a mutable secrets environment, its HTTP server and the sandboxes."""

    def __init__(self, pair: SandboxPair, engine: Engine, server: Server, env: dict[str, str]):
        self.pair, self.engine, self.server, self.env = pair, engine, server, env
        self.hopin = pair.platform.info()
        self.sf = pair.crm.info()

    def health(self) -> tuple[int, dict[str, Any]]:
        response = requests.get(f"{self.server.url}/healthz", timeout=5)
        return response.status_code, response.json()

    def register(self, email: str) -> str:
        body = {
            "ticketId": self.hopin["ticket_id"],
            "email": email,
            "firstName": "Pat",
            "lastName": "Tester",
        }
        response = requests.post(
            f"{self.hopin['admin_url']}/events/{self.hopin['event_id']}/registrations",
            json=body,
            timeout=10,
        )
        response.raise_for_status()
        return str(response.json()["data"]["id"])

    def expire_sessions(self) -> None:
        requests.post(
            f"{self.sf['admin_url']}/sessions/expire",
            json={},
            headers={"X-Admin-Token": self.sf["admin_token"]},
            verify=self.sf["ca_bundle"],
            timeout=10,
        ).raise_for_status()

    def lead_emails(self) -> set[str]:
        from eventsync.models import PullRequest

        conn = self.engine.connection(ORG, "crm")
        rows = self.engine.hooks.pull(conn, PullRequest("Lead", fields=("Id", "Email")))
        return {str(r.get("Email")) for r in rows}

    def paused_lines(self) -> int:
        return len(self.engine.store.sync_log(ORG, outcome="paused", limit=10_000))


@pytest.fixture
def running(store_url: dict[str, Any]) -> Iterator[Running]:
    hooks = Hooks(make_plugin_manager(environ={}))
    pair = start_sandboxes(
        hooks, org=ORG, triggers=False, options={"salesforce": {"grant": "password"}}
    )
    port = free_port()
    config = config_for(
        pair,
        state=store_url["path"] or store_url["url"],
        listen=f"127.0.0.1:{port}",
        engine={"max_attempts": 2, "backoff_base": 0.05, "backoff_cap": 0.5, "auth_pause": 0.2},
    )
    store = StateStore.open(
        store_url["url"],
        path=store_url["path"],
        schema=store_url["schema"],
        max_attempts=2,
        backoff_base=0.05,
        backoff_cap=0.5,
    )
    env = dict(pair.secrets())
    engine = Engine(config, hooks=hooks, env=env, store=store, pollers=False)
    server = Server(engine, port=port).start()
    try:
        yield Running(pair, engine, server, env)
    finally:
        server.stop()
        engine.stop()
        store.close()
        pair.stop()


def test_a_wrong_password_pauses_the_org_in_healthz_and_dead_letters_nothing(running) -> None:
    good_password = running.env["SF_PASSWORD"]
    running.env["SF_PASSWORD"] = "wrong"  # what the operator got wrong
    emails = [f"pause{n}@example.com" for n in range(3)]
    for email in emails:
        running.register(email)
    assert running.engine.backfill(ORG, "export_registrations").marked == 3  # Hopin is fine
    running.engine.start()

    status, body = wait_until("/healthz to report the pause", lambda: _paused(running))
    assert status == 503 and body["ok"] is False
    reason = body["paused_orgs"][ORG]
    assert "salesforce: authentication failed: invalid_grant: authentication failure" in reason
    assert "wrong" not in reason  # the secret itself never shows

    # Far more refusals than max_attempts (2): still nothing dead-lettered, nothing burnt.
    wait_until("three times max_attempts refusals", lambda: running.paused_lines() >= 3 * 2 * 3)
    store = running.engine.store
    assert store.dead_letters() == []
    rows = store.pending(ORG, "export_registrations")
    assert len(rows) == 3 and all(r.attempts == 0 for r in rows)
    assert [h.kind for h in running.engine.holds()] == ["paused"]

    running.env["SF_PASSWORD"] = good_password  # the operator fixes it
    wait_until("/healthz ok again", lambda: running.health()[0] == 200)
    assert running.health()[1]["paused_orgs"] == {}
    assert wait_until("the Leads", lambda: set(emails) <= running.lead_emails())
    assert running.engine.holds() == [] and store.dead_letters() == []


def test_credentials_refused_mid_run_drop_the_connection_and_reauthenticate(running) -> None:
    running.engine.start()
    first = running.engine.connection(ORG, "crm")
    good_password = running.env["SF_PASSWORD"]
    running.env["SF_PASSWORD"] = "wrong"  # e.g. the integration user's password was reset
    running.expire_sessions()  # the session renewal now fails in the middle of a batch
    running.engine.mark(ORG, "export_registrations", [running.register("late@example.com")])

    status, body = wait_until("/healthz to report the pause", lambda: _paused(running))
    assert "invalid_grant" in body["paused_orgs"][ORG]
    running.env["SF_PASSWORD"] = good_password
    wait_until("the Lead", lambda: "late@example.com" in running.lead_emails())
    # The refused connection was dropped: the batch after the pause authenticated anew.
    assert running.engine.connection(ORG, "crm") is not first
    wait_until("/healthz ok again", lambda: running.health()[0] == 200)
    assert running.engine.store.dead_letters() == []


def _paused(running: Running) -> tuple[int, dict[str, Any]] | None:
    status, body = running.health()
    return (status, body) if ORG in body.get("paused_orgs", {}) else None
