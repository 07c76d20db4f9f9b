"""What the store records of an entity's journey (``eventsync trace``), its bounds, and the
queries pollers and ``status`` use: marks with their trigger, attempts with their number,
retried dead letters, the retrying rows, dead letters' failure times, and pruning by age and by
row count."""

from __future__ import annotations

import datetime as dt

from eventsync.models import RemoteFailure
from eventsync.store import LATEST_VERSION, Failed
from eventsync.trace import build_trace

LOCKED = RemoteFailure("UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access", retryable=True)
REQUIRED = RemoteFailure(
    "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", ("LastName",)
)


def test_marks_attempts_and_retries_make_the_journey(clocked_store, clock) -> None:
    store = clocked_store(max_attempts=2)
    assert store.schema_version() == LATEST_VERSION
    store.mark("acme", "export", "reg-1", hint="notification")
    clock.advance(1)
    [item] = store.lease("w")
    assert store.fail_many([Failed(item, LOCKED)]) == ["retry"]
    assert [r.entity for r in store.retrying()] == ["reg-1"]
    [waiting] = store.retrying(org="acme", flow="export")
    assert (waiting.attempts, waiting.code) == (1, "UNABLE_TO_LOCK_ROW")
    clock.advance(3600)
    [item] = store.lease("w")
    assert store.fail_many([Failed(item, REQUIRED)]) == ["dead"]
    assert store.retrying() == []
    [dead] = store.dead_letters()
    assert store.dead_letter_times("acme", "export", ["reg-1", "other"]) == {
        "reg-1": dead.last_failure_at
    }
    store.retry_dead_letters([dead.id])
    kinds = [(e.outcome, e.message) for e in store.entity_log("acme", "export", "reg-1")]
    assert kinds == [
        ("marked", "notification"),
        ("retried", f"dead letter {dead.id} moved back to the outbox"),
    ]  # the executor writes the attempts' lines; the store writes marks and moves

    trace = build_trace(store, "acme", "export", "reg-1")
    assert trace["found"] and trace["now"]["state"] == "pending"
    assert trace["events"][0] == {
        "at": trace["events"][0]["at"],
        "kind": "marked",
        "message": "notification",
        "trigger": "notification",
    }
    assert not build_trace(store, "acme", "export", "never")["found"]


def test_written_fields_show_their_values_only_on_request(store) -> None:
    detail = {"object": "Lead", "target": "00Q1", "fields": {"Email": "ada@example.com"}}
    store.log("acme", "export", "reg-1", "wrote", "created Lead 00Q1", detail)
    [event] = build_trace(store, "acme", "export", "reg-1")["events"]
    assert (event["fields"], event["target"], "values" in event) == (["Email"], "00Q1", False)
    [shown] = build_trace(store, "acme", "export", "reg-1", values=True)["events"]
    assert shown["values"] == {"Email": "ada@example.com"}


def test_the_sync_log_is_bounded_by_age_and_by_rows(clocked_store, clock) -> None:
    store = clocked_store()
    store.log_many([("acme", "export", f"e{i}", "done", "") for i in range(5)])
    clock.advance(3600)
    store.log_many([("acme", "export", f"n{i}", "done", "") for i in range(5)])
    assert store.prune_log(dt.timedelta(days=1), max_rows=3) == 7
    assert sorted(e.entity for e in store.sync_log()) == ["n2", "n3", "n4"]
    assert store.prune_log(dt.timedelta(minutes=30)) == 0
    clock.advance(3600)
    assert store.prune_log(dt.timedelta(minutes=30)) == 3
