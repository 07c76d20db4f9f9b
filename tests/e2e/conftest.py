"""End-to-end harness: both sandboxes, the embedded engine and its HTTP endpoint, real sockets.

``make_env(...)`` builds one environment; the ``store_url`` fixture runs every test against
SQLite and against the PostgreSQL server (its own schema per test, dropped afterwards).
"""

from __future__ import annotations

import functools
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from eventsync import backoff
from eventsync.engine import Engine
from eventsync.models import Filter, PullRequest, PushItem, PushRequest, Record
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import SandboxPair, config_for, free_port, start_sandboxes
from eventsync.server import Server
from eventsync.store import StateStore
from eventsync.waiting import wait_until
from eventsync_salesforce.sandbox.wiring import LINK_FIELD, STATUS_FIELD, TICKET_CODE_FIELD

PG_URL = os.environ.get(
    "EVENTSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@pytest.fixture
def wait() -> Callable[..., Any]:
    """The ``wait_until`` helper, as a fixture (test modules cannot import conftest), with a
    default deadline of two minutes: a condition that holds returns at once, and CI's loaded
    machine can take far longer than 30 s to show it."""
    return functools.partial(wait_until, timeout=120.0)


class Env:
    """A running environment and helpers that act as a Salesforce user and a Hopin admin."""

    def __init__(
        self, pair: SandboxPair, engine: Engine, server: Server | None, hooks: Hooks
    ) -> None:
        self.pair, self.engine, self.server, self.hooks = pair, engine, server, hooks
        self.org = pair.org
        self.crm = engine.connection(self.org, "crm")
        self.platform = engine.connection(self.org, "platform")
        self.hopin = pair.platform.info()
        self.sf = pair.crm.info()
        self.http = requests.Session()

    # --- Salesforce, as a user -----------------------------------------------------------
    def sf_insert(self, obj: str, rows: list[dict[str, Any]]) -> list[str]:
        """Insert records through the plugin (as the integration user would)."""
        results = self.hooks.push(
            self.crm,
            PushRequest(obj, "insert", tuple(PushItem(str(i), row) for i, row in enumerate(rows))),
        )
        assert all(r.ok for r in results), [r.error for r in results if not r.ok]
        return [str(r.id) for r in results]

    def sf_query(self, obj: str, fields: tuple[str, ...], *filters: Filter) -> list[Record]:
        """Read records through the plugin."""
        return list(self.hooks.pull(self.crm, PullRequest(obj, fields=fields, filters=filters)))

    def sf_admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the Salesforce sandbox admin API."""
        response = self.http.request(
            method,
            f"{self.sf['admin_url']}{path}",
            json=body,
            headers={"X-Admin-Token": self.sf["admin_token"]},
            verify=self.sf["ca_bundle"],
            timeout=10,
        )
        response.raise_for_status()
        return response.json()

    def campaign(self, name: str = "Event campaign") -> str:
        """A Campaign carrying the Hopin ticket's integration code, with an Attended status."""
        [campaign] = self.sf_insert(
            "Campaign", [{"Name": name, TICKET_CODE_FIELD: self.hopin["ticket_integration_code"]}]
        )
        self.sf_insert(
            "CampaignMemberStatus",
            [{"CampaignId": campaign, "Label": "Attended", "HasResponded": True}],
        )
        return campaign

    def members(self, campaign: str, emails: list[str]) -> list[str]:
        """Leads for ``emails`` and their CampaignMembers of ``campaign``."""
        leads = self.sf_insert(
            "Lead", [{"LastName": e.split("@")[0], "Company": "Acme", "Email": e} for e in emails]
        )
        return self.sf_insert(
            "CampaignMember", [{"CampaignId": campaign, "LeadId": lead} for lead in leads]
        )

    def member(self, member_id: str) -> Record:
        """One CampaignMember with the fields the flows write."""
        [row] = self.hooks.pull(
            self.crm,
            PullRequest(
                "CampaignMember",
                ids=(member_id,),
                fields=("Id", "Status", "Email", LINK_FIELD, STATUS_FIELD),
            ),
        )
        return row

    def leads(self) -> list[Record]:
        """Every Lead with its email."""
        return self.sf_query("Lead", ("Id", "Email", "Company", "FirstName", "LastName"))

    # --- Hopin, as an admin and as attendees ---------------------------------------------
    def hopin_admin(self, method: str, path: str, body: Any = None) -> Any:
        """Call the Hopin sandbox admin API."""
        response = self.http.request(
            method, f"{self.hopin['admin_url']}{path}", json=body, timeout=10
        )
        response.raise_for_status()
        return response.json() if response.content else None

    def register(self, email: str, **fields: Any) -> str:
        """Someone registers on the Hopin ticket directly."""
        body = {
            "ticketId": self.hopin["ticket_id"],
            "email": email,
            "firstName": email.split("@")[0].title(),
            "lastName": "Tester",
            **fields,
        }
        return self.hopin_admin("POST", f"/events/{self.hopin['event_id']}/registrations", body)[
            "data"
        ]["id"]

    def magic_links(self, email: str | None = None) -> list[Record]:
        """Magic links on the event (optionally for one email)."""
        filters = (Filter("email", "=", email),) if email else ()
        return list(self.hooks.pull(self.platform, PullRequest("magicLink", filters=filters)))


def write_cli_config(
    env: Env, directory: Any, flows: dict[str, Any] | None = None, extra: str = ""
) -> str:
    """A config file (and its secrets file) in ``directory`` for running the ``eventsync``
    command against ``env``'s sandboxes, with a SQLite state of its own; ``extra`` is TOML
    appended to it. Returns the config file's path."""
    from eventsync.sandbox_env import sandbox_config_files

    toml_text, secrets = sandbox_config_files(
        env.pair.info(),
        hooks=env.hooks,
        secrets_file="cli.env",
        flows=flows,
        engine={"state": str(directory / "cli.sqlite")},
    )
    (directory / "eventsync.toml").write_text(toml_text + extra)
    (directory / "cli.env").write_text(secrets)
    return str(directory / "eventsync.toml")


def run_cli(directory: Any, *args: str) -> Any:
    """Run ``eventsync ARGS --config DIRECTORY/eventsync.toml`` as a subprocess."""
    import subprocess
    import sys
    from pathlib import Path

    return subprocess.run(
        [
            str(Path(sys.executable).with_name("eventsync")),
            *args,
            "--config",
            str(directory / "eventsync.toml"),
        ],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path) -> Iterator[dict[str, Any]]:
    """Where the engine keeps its state: a SQLite file, or an isolated PostgreSQL schema."""
    if request.param == "sqlite":
        yield {"url": None, "path": str(tmp_path / "state.sqlite"), "schema": None}
        return
    schema = f"e2e_{uuid.uuid4().hex[:10]}"
    yield {"url": PG_URL, "path": None, "schema": schema}
    engine = sa.create_engine(PG_URL)
    with engine.begin() as conn:
        conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def make_env(store_url, tmp_path) -> Iterator[Callable[..., Env]]:
    """Build environments (Salesforce and Hopin unless ``crm`` names another CRM, with its
    ``crm_options``); everything started is stopped at teardown."""
    started: list[tuple[Engine, Server | None, SandboxPair, StateStore]] = []

    def make(
        *,
        triggers: bool = True,
        pollers: bool = False,
        poll_interval: float = 0.3,
        flows: dict[str, Any] | None = None,
        engine_options: dict[str, Any] | None = None,
        hopin_options: dict[str, Any] | None = None,
        salesforce_config: dict[str, Any] | None = None,
        start: bool = True,
        crm: str = "salesforce",
        crm_options: dict[str, Any] | None = None,
    ) -> Env:
        hooks = Hooks(make_plugin_manager(environ={}))
        port = free_port()
        endpoint = f"http://127.0.0.1:{port}"
        pair = start_sandboxes(
            hooks,
            crm=crm,
            platform="hopin",
            org="e2e",
            endpoint=endpoint,
            triggers=triggers,
            options={
                "hopin": hopin_options or {},
                "salesforce": {"config": salesforce_config or {}},
                **({crm: crm_options} if crm_options else {}),
            },
        )
        config = config_for(
            pair,
            state=store_url["path"] or store_url["url"],
            listen=f"127.0.0.1:{port}",
            flows=flows,
            poll_interval=poll_interval,
            engine={
                "backoff_base": 0.05,
                "backoff_cap": 0.5,
                "max_attempts": 12,
                **(engine_options or {}),
            },
        )
        store = StateStore.open(
            store_url["url"],
            path=store_url["path"],
            schema=store_url["schema"],
            max_attempts=config.engine.max_attempts,
            backoff_base=0.05,
            backoff_cap=0.5,
        )
        engine = Engine(config, hooks=hooks, env=pair.secrets(), store=store, pollers=pollers)
        server = Server(engine, port=port).start()
        started.append((engine, server, pair, store))
        if start:
            engine.start()  # which also makes the notification subscriptions
        elif triggers:
            engine.subscribe()  # as `eventsync subscribe` does: deliveries with no workers
        return Env(pair, engine, server, hooks)

    with backoff.disabled():
        yield make
    for engine, server, pair, store in started:
        if server is not None:
            server.stop()
        engine.stop()
        store.close()
        pair.stop()
