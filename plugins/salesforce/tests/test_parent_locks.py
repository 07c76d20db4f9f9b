"""Parent-lock awareness against a sandbox that emulates Salesforce's parent locks: writing a
CampaignMember locks its Campaign, and a write under a Campaign another write holds fails with
UNABLE_TO_LOCK_ROW. The plugin serialises an organisation's CampaignMember writes, so its
parallel batches never collide: per connection in one process, and across processes when the
engine offers locks shared through the state store (``SystemSettings.locks``)."""

from __future__ import annotations

import threading

import attrs
import pytest
import requests
from eventsync.distributed import StoreLocks
from eventsync.models import PushItem, PushRequest
from eventsync.store import StateStore
from eventsync.waiting import wait_until
from eventsync_salesforce import plugin


@pytest.fixture(scope="module")
def locking():
    handle = plugin.start_sandbox(
        "salesforce", {"parent_lock_hold": 1.0, "parent_lock_timeout": 0.1}
    )
    try:
        yield handle
    finally:
        handle.stop()


def admin_get(handle, path):
    response = requests.get(
        f"{handle.url}/_admin{path}",
        headers={"X-Admin-Token": handle.admin_token},
        verify=handle.ca_bundle,
        timeout=30,
    )
    response.raise_for_status()
    return response.json()


def members(conn, campaign, count, tag):
    """``count`` Leads added to ``campaign``; their CampaignMember ids."""
    leads = plugin.push(
        conn,
        PushRequest(
            "Lead",
            "insert",
            tuple(
                PushItem(str(n), {"LastName": f"{tag}{n}", "Company": "Locks"})
                for n in range(count)
            ),
        ),
    )
    made = plugin.push(
        conn,
        PushRequest(
            "CampaignMember",
            "insert",
            tuple(PushItem(r.key, {"CampaignId": campaign, "LeadId": r.id}) for r in leads),
        ),
    )
    assert all(r.ok for r in made), made
    return [r.id for r in made]


def in_parallel(calls):
    """Run every one of ``calls`` in a thread of its own; return when all ended."""
    threads = [threading.Thread(target=call) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)


def update(conn, ids, status):
    return plugin.push(
        conn,
        PushRequest(
            "CampaignMember",
            "update",
            tuple(PushItem(i, {"Status": status}, id=i) for i in ids),
        ),
    )


def test_the_sandbox_refuses_a_write_under_a_campaign_another_write_holds(locking):
    conn = plugin.authenticate("salesforce", locking.settings("acme", max_retries=0))
    campaign = conn.sf.Campaign.create({"Name": "Locked"})["id"]
    first, second = members(conn, campaign, 2, "a"), members(conn, campaign, 2, "b")
    before = admin_get(locking, "/locks")["failures"]
    holder = threading.Thread(target=update, args=(conn, first, "Responded"))
    # A second connection: the plugin serialises writes per connection, so this one is
    # another process's, which the sandbox alone keeps apart.
    other = plugin.authenticate("salesforce", locking.settings("acme", max_retries=0))
    holder.start()
    wait_until("the first write to hold the campaign", lambda: admin_get(locking, "/locks")["held"])
    refused = update(other, second, "Responded")
    holder.join(30)
    assert [r.error.code for r in refused] == ["UNABLE_TO_LOCK_ROW"] * 2
    assert all(r.retryable for r in refused)
    assert admin_get(locking, "/locks")["failures"] == before + 1  # one campaign refused


def test_parallel_batches_of_one_connection_never_collide_on_the_campaign(locking):
    conn = plugin.authenticate("salesforce", locking.settings("acme", max_retries=0))
    campaign = conn.sf.Campaign.create({"Name": "Serialised"})["id"]
    groups = [members(conn, campaign, 3, f"p{n}") for n in range(3)]
    before = admin_get(locking, "/locks")["failures"]
    results: list = []
    in_parallel(lambda ids=ids: results.extend(update(conn, ids, "Responded")) for ids in groups)
    assert len(results) == 9 and all(r.ok for r in results), results
    assert admin_get(locking, "/locks")["failures"] == before


def test_connections_sharing_the_stores_locks_never_collide_on_the_campaign(locking, tmp_path):
    store = StateStore.open(path=tmp_path / "state.db")
    settings = locking.settings("acme", max_retries=0)
    # Three connections, as three worker processes have: each with a lock store of its own
    # name over the one shared store.
    conns = [
        plugin.authenticate(
            "salesforce",
            attrs.evolve(settings, locks=StoreLocks(store, 30.0, 60.0, name=f"worker{n}")),
        )
        for n in range(3)
    ]
    campaign = conns[0].sf.Campaign.create({"Name": "Shared"})["id"]
    before = admin_get(locking, "/locks")["failures"]
    made: list = []
    in_parallel(
        lambda c=c, n=n: made.extend(members(c, campaign, 3, f"s{n}")) for n, c in enumerate(conns)
    )
    assert len(made) == 9
    # Updates name members by Id alone: their Campaign is read, then locked.
    updated: list = []
    in_parallel(
        lambda c=c, n=n: updated.extend(update(c, made[3 * n : 3 * n + 3], "Sent"))
        for n, c in enumerate(conns)
    )
    assert len(updated) == 9 and all(r.ok for r in updated), updated
    assert admin_get(locking, "/locks")["failures"] == before
    assert sum(c.settings.locks.waits for c in conns) >= 2  # they did take turns
    store.close()
