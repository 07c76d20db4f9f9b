"""The audit trail on both stores: entries in order, filters, the latest N, and retention."""

from __future__ import annotations

import datetime as dt

from eventsync.store import AuditWrite, DatabaseClock


def _write(entity: str, flow: str = "export_registrations", org: str = "acme") -> AuditWrite:
    return AuditWrite(org, flow, "salesforce", "Lead", "update", f"00Q{entity}", entity, ("Email",))


def test_entries_filters_and_latest(target):
    store = target.open()
    assert store.record_audit([_write("r1"), _write("r2"), _write("r1", flow="attendance")]) == 3
    store.record_audit([_write("r3", org="other")])
    every = store.audit_entries()
    assert [(e.org, e.entity) for e in every] == [
        ("acme", "r1"),
        ("acme", "r2"),
        ("acme", "r1"),
        ("other", "r3"),
    ]
    assert [e.flow for e in store.audit_entries(org="acme", entity="r1")] == [
        "export_registrations",
        "attendance",
    ]
    assert [e.entity for e in store.audit_entries(flow="export_registrations", org="acme")] == [
        "r1",
        "r2",
    ]
    assert [e.entity for e in store.audit_entries(record_id="00Qr3")] == ["r3"]
    assert [e.entity for e in store.audit_entries(limit=2, latest=True)] == ["r1", "r3"]
    entry = every[0].as_dict()
    assert entry["fields"] == ["Email"] and dt.datetime.fromisoformat(entry["at"]).tzinfo


def test_retention_prunes_only_older_entries(target):
    past = target.open(clock=DatabaseClock(offset=-40 * 86400))
    past.record_audit([_write("old")])
    store = target.open()
    store.record_audit([_write("new")])
    assert store.prune_audit(dt.timedelta(days=30)) == 1
    assert [e.entity for e in store.audit_entries()] == ["new"]


def test_a_single_write_keeps_its_fields_in_order(target):
    store = target.open()
    write = AuditWrite(
        "acme", "f", "salesforce", "Lead", "insert", "00Q1", "ü1", ("Email", "Ünï", "A")
    )
    assert store.record_audit([write]) == 1
    assert store.record_audit([]) == 0
    [entry] = store.audit_entries()
    assert (entry.entity, entry.operation, tuple(entry.fields)) == ("ü1", "insert", write.fields)
    assert entry.at.tzinfo is not None
