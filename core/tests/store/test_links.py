"""Links, content hashes and watermarks."""

from __future__ import annotations

import datetime as dt

from eventsync.models import Watermark
from eventsync.store import Link, StateStore, content_hash


def test_links_round_trip_and_replace(store: StateStore) -> None:
    assert store.get_link("acme", "export", "reg-1") is None
    h = content_hash({"Email": "a@b.c", "LastName": "Ng"})
    link = store.put_link("acme", "export", "reg-1", "Lead", "00Q000000000001", h)
    got = store.get_link("acme", "export", "reg-1")
    assert got == link and got.hash == h and got.updated_at is not None
    store.put_link("acme", "export", "reg-1", "Contact", "003000000000001", "h2")
    assert store.get_link("acme", "export", "reg-1").target_id == "003000000000001"
    assert store.get_link("acme", "attendance", "reg-1") is None


def test_links_in_bulk_and_reverse_lookup(store: StateStore) -> None:
    links = [Link("acme", "export", f"r{n}", "Lead", f"00Q{n:012}", f"h{n}") for n in range(1200)]
    assert store.put_links(links) == 1200
    found = store.get_links("acme", "export", [f"r{n}" for n in range(0, 1200, 2)] + ["missing"])
    assert len(found) == 600 and found["r10"].hash == "h10"
    assert [x.source_key for x in store.find_links_to("acme", "Lead", "00Q000000000007")] == ["r7"]
    assert store.delete_link("acme", "export", "r7") is True
    assert store.delete_link("acme", "export", "r7") is False


def test_links_keep_the_source_modified_time_unless_a_write_knows_it(store: StateStore) -> None:
    modified = dt.datetime(2026, 5, 4, 3, 2, 1, 123000, tzinfo=dt.UTC)
    link = Link("acme", "export", "r1", "Lead", "00Q1", "h1", source_modified=modified)
    store.put_links([link, Link("acme", "export", "r2", "Lead", "00Q2", "h2")])
    got = store.get_links("acme", "export", ["r1", "r2"])
    assert got["r1"].source_modified == modified and got["r2"].source_modified is None
    assert got["r1"].updated_at is not None and got["r1"].updated_at.tzinfo is not None
    # A write that does not know the time replaces the rest and leaves it alone.
    store.put_links([Link("acme", "export", "r1", "Contact", "0031", "h3")])
    again = store.get_link("acme", "export", "r1")
    assert (again.target_object, again.hash, again.source_modified) == ("Contact", "h3", modified)


def test_content_hash_is_stable() -> None:
    assert content_hash({"a": 1, "b": [1, 2]}) == content_hash({"b": [1, 2], "a": 1})
    assert content_hash({"a": 1}) != content_hash({"a": 2})


def test_watermarks_only_move_forward(store: StateStore) -> None:
    t0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    assert store.get_watermark("acme", "export", "hopin:registration") is None
    store.set_watermark("acme", "export", "hopin:registration", Watermark(t0, "b"))
    assert store.get_watermark("acme", "export", "hopin:registration") == Watermark(t0, "b")
    kept = store.set_watermark("acme", "export", "hopin:registration", Watermark(t0, "a"))
    assert kept == Watermark(t0, "b")
    later = Watermark(t0 + dt.timedelta(seconds=1), "a")
    store.set_watermark("acme", "export", "hopin:registration", later)
    assert store.get_watermark("acme", "export", "hopin:registration") == later
    store.set_watermark("acme", "export", "hopin:registration", Watermark(t0, ""), force=True)
    assert store.get_watermark("acme", "export", "hopin:registration") == Watermark(t0, "")


def test_sync_log_and_prune(clocked_store, clock) -> None:
    store = clocked_store()
    store.log("acme", "export", "a", "done", "created Lead 00Q1")
    clock.advance(3600)
    store.log_many([("acme", "export", "b", "dead", "REQUIRED_FIELD_MISSING: x")])
    assert [e.entity for e in store.sync_log()] == ["b", "a"]
    assert [e.entity for e in store.sync_log(outcome="done")] == ["a"]
    assert store.prune_log(dt.timedelta(minutes=30)) == 1
    assert [e.entity for e in store.sync_log()] == ["b"]
