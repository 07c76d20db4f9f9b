"""Export registrations: which registrations of a batch share one write (one per match key)."""

from __future__ import annotations

import datetime as dt

from eventsync.flows.export_registrations import _one_write_per_match
from eventsync.models import Record
from eventsync.store import Link

T0 = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def _reg(rid: str, seconds: float | None) -> Record:
    modified = None if seconds is None else T0 + dt.timedelta(seconds=seconds)
    return Record("platform", "registration", rid, {}, modified)


def _pending(*rows: tuple[str, str | None]) -> list[tuple[str, dict, str]]:
    return [(rid, {"Email": email, "LastName": rid}, f"digest-{rid}") for rid, email in rows]


def _link(rid: str, target: str) -> Link:
    return Link("acme", "export_registrations", rid, "Person", target, f"old-{rid}")


def test_the_latest_by_modified_time_then_id_writes_for_all_ignoring_case() -> None:
    pending = _pending(("a", "x@example.com"), ("b", "X@Example.COM"), ("c", "x@example.com"))
    records = {"a": _reg("a", 5), "b": _reg("b", 9), "c": _reg("c", 9)}
    writes, links, merged = _one_write_per_match(pending, {}, records, ("Email",))
    assert [w[0] for w in writes] == ["c"]  # b and c tie on time: the greater id wins
    assert merged == {"a": "c", "b": "c"}
    assert links == {}


def test_empty_keys_and_different_values_are_never_merged() -> None:
    pending = _pending(("a", None), ("b", ""), ("c", "x@example.com"), ("d", "y@example.com"))
    records = {r: _reg(r, None) for r in "abcd"}
    writes, _, merged = _one_write_per_match(pending, {}, records, ("Email",))
    assert [w[0] for w in writes] == ["a", "b", "c", "d"]
    assert merged == {}


def test_a_newer_unlinked_registration_is_written_to_the_record_its_twin_is_linked_to() -> None:
    pending = _pending(("old", "x@example.com"), ("new", "x@example.com"))
    records = {"old": _reg("old", 1), "new": _reg("new", 2)}
    known = {"old": _link("old", "rec-1")}
    writes, links, merged = _one_write_per_match(pending, known, records, ("Email",))
    assert [w[0] for w in writes] == ["new"]
    assert links["new"].target_id == "rec-1"  # written by id to the linked record
    assert merged == {"old": "new"}


def test_registrations_linked_to_different_records_stay_apart() -> None:
    pending = _pending(
        ("l1", "x@example.com"),
        ("l2", "x@example.com"),
        ("u1", "x@example.com"),
        ("u2", "x@example.com"),
    )
    records = {r: _reg(r, n) for n, r in enumerate(["l1", "l2", "u1", "u2"])}
    known = {"l1": _link("l1", "rec-1"), "l2": _link("l2", "rec-2")}
    writes, links, merged = _one_write_per_match(pending, known, records, ("Email",))
    assert [w[0] for w in writes] == ["l1", "l2", "u2"]  # each link is its own record
    assert merged == {"u1": "u2"}  # the unlinked ones are still one write
    assert "u2" not in links  # matched by the CRM, not guessed between two records


def test_a_cascade_merges_only_registrations_agreeing_on_every_key() -> None:
    pending = [
        ("a", {"Email": "x@example.com", "Code": "1"}, "da"),
        ("b", {"Email": "x@example.com", "Code": "2"}, "db"),
        ("c", {"Email": "x@example.com", "Code": "1"}, "dc"),
    ]
    records = {r: _reg(r, 0) for r in "abc"}
    writes, _, merged = _one_write_per_match(pending, {}, records, ("Email", "Code"))
    assert [w[0] for w in writes] == ["b", "c"]
    assert merged == {"a": "c"}
