"""A batch's writes folded into fewer transactions, on both stores: the audit trail with the
journal, the links with the release of the claims, a completion with its sync-log lines."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest
from eventsync.models import Watermark
from eventsync.store import AuditWrite, ClaimRelease, Link
from eventsync.store.outbox import LOST_NOTE, REQUEUED_NOTE


def _lines(store, flow: str = "export") -> list[tuple[str, str, str]]:
    return [(e.entity, e.outcome, e.message) for e in reversed(store.sync_log(flow=flow))]


def test_audit_entries_and_journal_lines_are_written_together(store) -> None:
    write = AuditWrite("acme", "export", "salesforce", "Lead", "insert", "00Q1", "r1", ("Email",))
    line = ("acme", "export", "r1", "wrote", "created Lead 00Q1", {"target": "00Q1"})
    assert store.record_audit([write], lines=[line]) == 1
    [entry] = store.audit_entries()
    [logged] = store.sync_log(flow="export")
    assert (entry.entity, entry.record_id) == ("r1", "00Q1")
    assert (logged.outcome, logged.detail) == ("wrote", {"target": "00Q1"})
    assert logged.at == entry.at  # one transaction, one time
    # Lines alone, without a write, are journalled too; nothing at all is no transaction.
    assert store.record_audit([], lines=[("acme", "export", "r2", "wrote", "x")]) == 0
    assert store.record_audit([]) == 0
    assert [e for e, _, _ in _lines(store)] == ["r1", "r2"]


def test_links_are_written_and_the_claims_released_in_one_call(clocked_store) -> None:
    store = clocked_store()
    assert store.claim("acme", "export:Lead", ["a@x", "b@x"], "batch-1", 60.0) == {"a@x", "b@x"}
    link = Link("acme", "export", "r1", "Lead", "00Q1", "h1")
    release = ClaimRelease("acme", "export:Lead", ("a@x", "b@x"), "batch-1")
    assert store.put_links([link], release=release) == 1
    assert store.get_link("acme", "export", "r1").target_id == "00Q1"
    assert store.claim("acme", "export:Lead", ["a@x", "b@x"], "batch-2", 60.0) == {"a@x", "b@x"}
    # A release without links still releases; another holder's release frees nothing.
    other = ClaimRelease("acme", "export:Lead", ("a@x",), "batch-1")
    assert store.put_links([], release=other) == 0
    assert store.claim("acme", "export:Lead", ["a@x"], "batch-3", 60.0) == set()
    assert store.put_links([], release=attrs.evolve(other, holder="batch-2")) == 0
    assert store.claim("acme", "export:Lead", ["a@x"], "batch-3", 60.0) == {"a@x"}


def test_a_completion_writes_each_items_line_with_its_fate(clocked_store, clock) -> None:
    store = clocked_store()
    store.mark_many("acme", "export", ["e0", "e1", "e2"])
    stale = store.lease("w1", limit=1, lease_seconds=10)  # e0, whose lease is taken over
    clock.advance(11)
    items = store.lease("w2", lease_seconds=60)
    store.mark("acme", "export", "e1")  # re-marked during the job
    result = store.complete(items, ["ok 0", "ok 1", "ok 2"])
    assert len(result.completed) == 2 and len(result.requeued) == 1
    lost = store.complete(stale, ["too late"])
    assert lost.lost == (stale[0].id,)
    outcomes = [line for line in _lines(store) if line[1] != "marked"]
    assert outcomes == [
        ("e0", "done", "ok 0"),
        ("e1", "requeued", REQUEUED_NOTE),
        ("e2", "done", "ok 2"),
        ("e0", "lost", LOST_NOTE),
    ]
    # Without messages nothing is logged, as before.
    store.mark("acme", "export", "e3")
    store.complete(store.lease("w3"))
    assert ("e3", "done", "") not in _lines(store)
    with pytest.raises(ValueError, match="1 messages for 0 items"):
        store.complete([], ["x"])


def test_marks_and_the_position_they_reach_are_saved_together(store) -> None:
    at = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)
    position = ("backfill:registration", Watermark(at, "r1200"))
    entities = {f"r{n}": {"n": n} for n in range(1200)}  # two chunks: the last takes it
    assert store.mark_many("acme", "export", entities, watermark=position) == 1200
    assert store.get_watermark("acme", "export", "backfill:registration") == position[1]
    assert len(store.pending(limit=2000)) == 1200
    # Never backwards; with nothing to mark the position alone is saved.
    older = ("backfill:registration", Watermark(at - dt.timedelta(days=1), "r0"))
    assert store.mark_many("acme", "export", {}, watermark=older) == 0
    assert store.get_watermark("acme", "export", "backfill:registration") == position[1]
    newer = ("backfill:registration", Watermark(at + dt.timedelta(days=1), "r0"))
    assert store.mark_many("acme", "export", {}, watermark=newer) == 0
    assert store.get_watermark("acme", "export", "backfill:registration") == newer[1]
