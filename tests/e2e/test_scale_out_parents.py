"""Writes under one parent record across worker processes: three ``eventsync worker``s write
the invitation links of one Campaign's members back to Salesforce, against a sandbox that
locks a CampaignMember's Campaign as Salesforce does (a write under a Campaign another write
holds fails with UNABLE_TO_LOCK_ROW). The workers take turns through the locks they share in
PostgreSQL, so the sandbox refuses nothing, and every member is invited exactly once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from eventsync.models import PushItem, PushRequest
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import SandboxPair, free_port, start_sandboxes
from eventsync.store import StateStore
from eventsync_salesforce.sandbox.wiring import LINK_FIELD, TICKET_CODE_FIELD

from .scale_out_harness import BROKERS, Role, Sandboxes, fresh_database, wait_for, write_config

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

ORG = "scale"
MEMBERS = 40


def _sandboxes(hold: float) -> tuple[SandboxPair, Hooks]:
    """The sandboxes; Salesforce holds a Campaign ``hold`` seconds per write under it and lets
    a second write wait 0.05 s for it before refusing."""
    hooks = Hooks(make_plugin_manager(environ={}))
    pair = start_sandboxes(
        hooks,
        crm="salesforce",
        platform="hopin",
        org=ORG,
        endpoint=f"http://127.0.0.1:{free_port()}",
        options={"salesforce": {"parent_lock_hold": hold, "parent_lock_timeout": 0.05}},
    )
    return pair, hooks


@pytest.fixture
def deployment() -> Iterator[tuple[SandboxPair, Hooks]]:
    """Writes holding their Campaign 0.3 s."""
    pair, hooks = _sandboxes(0.3)
    try:
        yield pair, hooks
    finally:
        pair.stop()


@pytest.fixture
def slow_deployment() -> Iterator[tuple[SandboxPair, Hooks]]:
    """Writes holding their Campaign 4.5 s: longer than the tests' 3-second lease."""
    pair, hooks = _sandboxes(4.5)
    try:
        yield pair, hooks
    finally:
        pair.stop()


def _invite_list(pair: SandboxPair, hooks: Hooks, world: Sandboxes, members: int) -> list[str]:
    """A Campaign carrying the ticket code and ``members`` Lead members of it (their Ids)."""
    conn = hooks.authenticate(pair.crm.settings(ORG))

    def insert(obj: str, rows: list[dict[str, object]]) -> list[str]:
        items = tuple(PushItem(str(n), row) for n, row in enumerate(rows))
        results = hooks.push(conn, PushRequest(obj, "insert", items))
        assert all(r.ok for r in results), results
        return [str(r.id) for r in results]

    code = world.hopin["ticket_integration_code"]
    [campaign] = insert("Campaign", [{"Name": "One parent", TICKET_CODE_FIELD: code}])
    leads = insert(
        "Lead",
        [{"LastName": f"m{n}", "Company": "Locks", "Email": f"m{n:03}@parent.example"}
         for n in range(members)],
    )  # fmt: skip
    return insert("CampaignMember", [{"CampaignId": campaign, "LeadId": lead} for lead in leads])


def test_three_workers_take_turns_under_one_campaign(
    deployment: tuple[SandboxPair, Hooks], tmp_path: Path
) -> None:
    # Small batches: the members' write-backs run on several workers at once.
    _invitations_once_each(*deployment, tmp_path, {"batch_size": 4}, MEMBERS)


def test_a_push_slower_than_a_lease_keeps_its_campaign_lock(
    slow_deployment: tuple[SandboxPair, Hooks], tmp_path: Path
) -> None:
    # Each write holds the Campaign longer than a lease: its lock must be renewed while it
    # pushes, or another worker would take the lock and the sandbox refuse its write.
    _invitations_once_each(*slow_deployment, tmp_path, {"batch_size": 4, "lease_seconds": 3.0}, 12)


def _invitations_once_each(
    pair: SandboxPair, hooks: Hooks, tmp_path: Path, engine: dict[str, object], members: int
) -> None:
    """Three workers write back the links of ``members`` members of one Campaign: each member
    is invited exactly once, and the sandbox refuses no write under the Campaign."""
    world = Sandboxes(pair)
    queue = f"parents-{uuid.uuid4().hex[:8]}"
    with fresh_database() as database:
        config = write_config(
            tmp_path,
            pair,
            hooks,
            state=database,
            broker=BROKERS["redis"],
            listen="127.0.0.1:1",
            queue=queue,
            flows=("import_registrations", "magic_links"),
            engine={"max_attempts": 50, **engine},
        )
        workers = [
            Role("worker", config, tmp_path / f"worker-{n}.log", "--queues", queue)
            for n in range(3)
        ]
        roles = list(workers)
        store = StateStore.open(database)
        try:
            # Every worker is up before the work exists, so the batches can spread over all
            # three (a worker that started first would otherwise find the whole list waiting).
            for worker in workers:
                wait_for(
                    "a worker ready", lambda w=worker: "eventsync worker: ready" in w.output(), 120
                )
            # The members are written (holding their Campaign) before the scheduler polls
            # them: the test's own write is another client, which no shared lock covers.
            invited = set(_invite_list(pair, hooks, world, members))
            refused_before = world.sf_admin("GET", "/locks")["failures"]
            roles.append(Role("scheduler", config, tmp_path / "scheduler.log"))
            written = wait_for(
                "every member's link written back",
                lambda: (
                    (
                        rows := {
                            r["Id"]: r
                            for r in world.sf_admin("GET", "/records/CampaignMember")
                            if r.get(LINK_FIELD)
                        }
                    )
                    and set(rows) >= invited
                    and not any(s.pending or s.leased for s in store.statuses(org=ORG))
                    and rows
                ),
                300,
                interval=1.0,
            )
            # Nothing the sandbox refused: no UNABLE_TO_LOCK_ROW, so no retry in place either.
            assert world.sf_admin("GET", "/locks")["failures"] == refused_before
            assert store.dead_letters(org=ORG) == []
            # Exactly once: one invitation per member, and each member holds its own.
            state = world.http.get(f"{world.hopin['admin_url']}/state", timeout=30).json()
            by_member: dict[str, list[str]] = {}
            for link in state["magicLinks"].values():
                got = link["attributes"]
                by_member.setdefault(got["registrationId"], []).append(got["magicLink"])
            assert {k: v for k, v in by_member.items() if len(v) != 1} == {}
            assert {k: written[k][LINK_FIELD] for k in invited} == {
                k: by_member[k][0] for k in invited
            }
            # The write-backs did spread over the workers (else nothing could have collided).
            ran = [w for w in workers if f"batch of {ORG}/magic_links" in w.output()]
            assert len(ran) >= 2
        finally:
            store.close()
            for role in reversed(roles):
                role.stop()
