"""Outbox semantics (docs/architecture.md §3) on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa
from eventsync.models import RemoteFailure
from eventsync.store import MAX_BATCH, Failed, StateStore

RETRY = RemoteFailure(
    "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record", retryable=True
)


def test_mark_dedupes_and_bumps_generation(store: StateStore) -> None:
    assert store.mark("acme", "export", "reg-1", payload={"v": 1}, hint="created") == 1
    assert store.mark("acme", "export", "reg-1") == 2
    assert store.mark("acme", "export", "reg-1", payload={"v": 3}) == 3
    rows = store.pending()
    assert len(rows) == 1
    row = rows[0]
    assert (row.generation, row.payload, row.hint) == (3, {"v": 3}, "created")
    # same entity key in another flow or org is separate work
    store.mark("acme", "attendance", "reg-1")
    store.mark("globex", "export", "reg-1")
    assert len(store.pending()) == 3


def test_remark_during_job_is_not_lost(store: StateStore) -> None:
    store.mark("acme", "export", "reg-1", payload={"v": 1})
    store.mark("acme", "export", "reg-2")
    batch = store.lease("w1")
    assert {i.entity for i in batch} == {"reg-1", "reg-2"}
    # a webhook arrives while the job runs
    store.mark("acme", "export", "reg-1", payload={"v": 2})
    result = store.complete(batch)
    done = {i.id: i.entity for i in batch}
    assert [done[i] for i in result.completed] == ["reg-2"]
    assert [done[i] for i in result.requeued] == ["reg-1"]
    again = store.lease("w2")
    assert [(i.entity, i.payload, i.generation) for i in again] == [("reg-1", {"v": 2}, 2)]
    assert store.complete(again).completed == (again[0].id,)
    assert store.pending() == []


def test_lease_takes_one_flow_oldest_first_and_respects_limit(store: StateStore) -> None:
    store.mark_many("acme", "export", [f"e{n:03}" for n in range(5)])
    store.mark("acme", "attendance", "a1")
    first = store.lease("w", limit=3)
    assert [i.entity for i in first] == ["e000", "e001", "e002"]
    assert {(i.org, i.flow) for i in first} == {("acme", "export")}
    assert len({i.lease_token for i in first}) == 1
    second = store.lease("w", limit=200)
    assert [i.entity for i in second] == ["e003", "e004"]
    third = store.lease("w")
    assert [(i.flow, i.entity) for i in third] == [("attendance", "a1")]
    assert store.lease("w") == []
    with pytest.raises(ValueError):
        store.lease("w", limit=MAX_BATCH + 1)


def test_a_leased_item_carries_its_row_and_its_lease(clocked_store, clock) -> None:
    store = clocked_store()
    store.mark(
        "acme", "export", "e1", payload={"record": {"id": "e1", "n": [1, 2]}}, hint="created"
    )
    clock.advance(5)
    store.fail_many(
        [Failed(i, RemoteFailure("TEMP", "try again", retryable=True)) for i in store.lease("w")]
    )
    clock.advance(3600)
    [item] = store.lease("worker-7", lease_seconds=90)
    assert (item.org, item.flow, item.entity, item.generation, item.attempts) == (
        "acme",
        "export",
        "e1",
        1,
        1,
    )
    assert item.payload == {"record": {"id": "e1", "n": [1, 2]}} and item.hint == "created"
    assert item.leased_by == "worker-7" and item.lease_token
    assert item.lease_until == clock.now + dt.timedelta(seconds=90)
    assert item.created_at == clock.now - dt.timedelta(seconds=3605)
    assert item.last_error and "try again" in item.last_error


def test_lease_filters_by_org_and_flow(store: StateStore) -> None:
    store.mark("acme", "export", "x")
    store.mark("globex", "export", "y")
    store.mark("globex", "import", "z")
    assert [i.entity for i in store.lease("w", org="globex", flow="import")] == ["z"]
    assert [i.entity for i in store.lease("w", org="globex")] == ["y"]
    assert [i.entity for i in store.lease("w")] == ["x"]


def test_expired_lease_is_taken_over(store: StateStore) -> None:
    store.mark("acme", "export", "reg-1")
    stale = store.lease("crashed-worker", lease_seconds=0.3)
    assert len(stale) == 1
    assert store.lease("w2") == []  # still leased
    time.sleep(0.45)
    taken = store.lease("w2", lease_seconds=30)
    assert [i.entity for i in taken] == ["reg-1"]
    assert taken[0].lease_token != stale[0].lease_token
    # the old holder comes back: its outcome no longer counts
    assert store.complete(stale).lost == (stale[0].id,)
    assert store.fail(stale[0], RETRY) == "lost"
    assert store.release(stale) == 0
    assert store.pending()[0].leased_by == "w2"
    assert store.complete(taken).completed == (taken[0].id,)
    assert store.pending() == []


def test_release_gives_rows_back_untouched(store: StateStore) -> None:
    store.mark_many("acme", "export", ["a", "b"])
    batch = store.lease("w")
    assert store.release(batch) == 2
    assert all(i.lease_token is None and i.attempts == 0 for i in store.pending())
    assert [i.entity for i in store.lease("w2")] == ["a", "b"]


def test_backoff_grows_exponentially_with_jitter_and_cap(clocked_store, clock) -> None:
    store = clocked_store(max_attempts=10, backoff_base=1.0, backoff_cap=20.0)
    store.mark("acme", "export", "reg-1")
    waits = []
    for attempt in range(1, 8):
        (item,) = store.lease("w")
        assert item.attempts == attempt - 1
        assert store.fail(item, RETRY) == "retry"
        (row,) = store.pending()
        wait = (_due(store, row.id) - clock.now).total_seconds()
        waits.append(wait)
        ideal = min(20.0, 2 ** (attempt - 1))
        assert ideal * 0.8 - 1e-6 <= wait <= ideal + 1e-6, (attempt, wait)
        assert store.lease("w") == []  # not due yet
        clock.advance(wait + 0.001)
    assert all(b > a for a, b in zip(waits[:5], waits[1:6], strict=True)), waits
    assert waits[-1] <= 20.0


def _due(store: StateStore, row_id: int):
    import sqlalchemy as sa

    o = store.tables.outbox
    with store.engine.connect() as conn:
        return conn.execute(sa.select(o.c.due_at).where(o.c.id == row_id)).scalar_one()


def test_retry_after_is_a_lower_bound(clocked_store, clock) -> None:
    store = clocked_store(backoff_base=1.0)
    store.mark("acme", "export", "reg-1")
    (item,) = store.lease("w")
    assert store.fail(item, RETRY, retry_after=120) == "retry"
    assert (_due(store, item.id) - clock.now).total_seconds() == pytest.approx(120)


TEXT = "FIELD_CUSTOM_VALIDATION_EXCEPTION: Email must be a company address — «ñ» 名前\nline 2 "


def test_dead_letter_after_max_attempts_keeps_remote_text(clocked_store, clock) -> None:
    store = clocked_store(max_attempts=3, backoff_base=1.0)
    store.mark("acme", "export", "reg-1", payload={"email": "a@b"}, hint="created")
    failure = RemoteFailure("UNABLE_TO_LOCK_ROW", TEXT, ("Email", "LastName"), retryable=True)
    results = []
    for _ in range(3):
        (item,) = store.lease("w")
        results.append(store.fail(item, failure))
        clock.advance(3600)
    assert results == ["retry", "retry", "dead"]
    assert store.pending() == []
    (dl,) = store.dead_letters()
    assert (dl.org, dl.flow, dl.entity) == ("acme", "export", "reg-1")
    assert dl.code == "UNABLE_TO_LOCK_ROW"
    assert dl.message == TEXT
    assert dl.fields == ("Email", "LastName")
    assert dl.attempts == 3
    assert dl.payload == {"email": "a@b"} and dl.hint == "created"
    assert dl.first_failure_at < dl.last_failure_at
    assert store.dead_letter_count() == 1 and store.dead_letter_count("acme", "other") == 0


def test_record_error_dead_letters_at_once(store: StateStore) -> None:
    store.mark_many("acme", "export", ["good", "bad"])
    good, bad = store.lease("w")
    record = RemoteFailure(
        "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", ("LastName",)
    )
    assert store.fail_many([Failed(bad, record)]) == ["dead"]
    assert store.complete([good]).completed == (good.id,)
    assert [d.message for d in store.dead_letters()] == ["Required fields are missing: [LastName]"]


def test_record_error_with_newer_change_is_requeued(store: StateStore) -> None:
    store.mark("acme", "export", "reg-1")
    (item,) = store.lease("w")
    store.mark("acme", "export", "reg-1")  # the admin fixed the record meanwhile
    record = RemoteFailure("FIELD_CUSTOM_VALIDATION_EXCEPTION", "bad email")
    assert store.fail(item, record) == "requeued"
    assert store.dead_letter_count() == 0
    (again,) = store.lease("w")
    assert again.attempts == 0 and again.generation == 2


def test_dead_letters_retry_and_purge(store: StateStore) -> None:
    store.mark_many("acme", "export", {"a": {"n": 1}, "b": {"n": 2}, "c": None})
    store.mark("acme", "import", "d")
    for item in store.lease("w") + store.lease("w"):
        store.fail(item, RemoteFailure("INVALID", f"bad {item.entity}"))
    assert store.dead_letter_count() == 4
    assert store.dead_letter_count("acme", "export") == 3
    a = next(d for d in store.dead_letters() if d.entity == "a")
    assert store.retry_dead_letters([a.id]) == 1
    (row,) = store.pending()
    assert (row.entity, row.payload, row.attempts) == ("a", {"n": 1}, 0)
    assert store.purge_dead_letters(flow="import") == 1
    assert {d.entity for d in store.dead_letters()} == {"b", "c"}
    assert store.retry_dead_letters(org="acme") == 2
    assert store.dead_letter_count() == 0
    assert {i.entity for i in store.pending()} == {"a", "b", "c"}


def test_success_clears_an_older_dead_letter(store: StateStore) -> None:
    store.mark("acme", "export", "a")
    (item,) = store.lease("w")
    store.fail(item, RemoteFailure("INVALID", "bad"))
    store.mark("acme", "export", "a")  # a new change arrives; the entity is worked on again
    (item,) = store.lease("w")
    store.complete([item])
    assert store.dead_letter_count() == 0


def test_mark_many_is_bulk_and_dedupes(store: StateStore) -> None:
    keys = [f"r{n}" for n in range(1800)] + ["r1", "r2"]
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("INSERT"):
            statements.append(statement)

    # Bulk means a few statements, not one per key (counted, not timed: the machine is shared).
    sa.event.listen(store.engine, "before_cursor_execute", count)
    try:
        assert store.mark_many("acme", "export", keys) == 1800 + 2  # r1, r2 again, last chunk
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
    assert 1 <= len(statements) <= 10, len(statements)
    status = store.flow_status("acme", "export")
    assert status.pending == 1800
    gens = {i.entity: i.generation for i in store.pending(limit=2000)}
    assert gens["r1"] == 2 and gens["r3"] == 1


def test_flow_status(clocked_store, clock) -> None:
    store = clocked_store(backoff_base=1.0)
    assert store.flow_status("acme", "export").pending == 0
    store.mark_many("acme", "export", ["a", "b", "c", "d"])
    clock.advance(30)
    a, b = store.lease("w", limit=2)
    store.complete([a])
    store.log("acme", "export", "a", "done")
    store.fail(b, RemoteFailure("INVALID", "nope"))
    (c,) = store.lease("w", limit=1)
    store.fail(c, RETRY)
    store.lease("w", limit=1)  # d stays leased
    st = store.flow_status("acme", "export")
    assert (st.pending, st.leased, st.retrying, st.dead_letters) == (1, 1, 1, 1)
    assert st.lag_seconds == pytest.approx(30)
    assert st.last_success_at == clock.now
    assert [s.flow for s in store.statuses()] == ["export"]


def test_last_success_is_the_flows_own_latest_done_line(clocked_store, clock) -> None:
    store = clocked_store()
    store.log("acme", "export", "a", "done")
    done_at = clock.now
    clock.advance(10)  # newer lines of another outcome, flow and org do not count
    store.log_many(
        [
            ("acme", "export", "b", "retry", "later"),
            ("acme", "import", "c", "done", ""),
            ("other", "export", "d", "done", ""),
        ]
    )
    assert store.flow_status("acme", "export").last_success_at == done_at
    assert store.flow_status("acme", "import").last_success_at == clock.now
    store.log("acme", "never", "e", "retry", "no success yet")
    assert store.flow_status("acme", "never").last_success_at is None
    assert {s.flow: s.last_success_at for s in store.statuses(org="acme")} == {
        "export": done_at,
        "import": clock.now,
    }


def test_one_flows_status_costs_the_same_however_long_its_log(tmp_path) -> None:
    """A backfill's progress reads its flow's status several times a second while the log
    grows by a line per record: the cost must not grow with the log (SQLite's VM steps)."""
    store = StateStore.open(path=tmp_path / "state.sqlite3")
    steps = [0]

    def count(conn, cursor, *_args) -> None:
        def tick() -> int:
            steps[0] += 1
            return 0

        cursor.connection.set_progress_handler(tick, 100)

    sa.event.listen(store.engine, "before_cursor_execute", count)

    def cost(lines: int) -> int:
        store.log_many([("acme", "export", f"e{n}", "done", "") for n in range(lines)])
        steps[0] = 0
        store.flow_status("acme", "export")
        return steps[0]

    try:
        short = cost(50)
        long = cost(5000)
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", count)
        store.close()
    assert long <= short + 5, (short, long)


def test_threads_leasing_at_once_never_share_a_row(target) -> None:
    stores = [target.open(), target.open()]
    stores[0].mark_many("acme", "export", [f"e{n}" for n in range(600)])
    stores[0].mark_many("acme", "import", [f"i{n}" for n in range(200)])
    seen: list[tuple[str, str]] = []
    errors: list[BaseException] = []
    lock = threading.Lock()
    start = threading.Barrier(6)

    def worker(n: int) -> None:
        store = stores[n % 2]
        start.wait()
        try:
            while batch := store.lease(f"w{n}", limit=25):
                with lock:
                    seen.extend((i.flow, i.entity) for i in batch)
                assert len(store.complete(batch).completed) == len(batch)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert len(seen) == 800
    assert len(set(seen)) == 800


def test_peek_due_counts_what_lease_would_take_and_its_age(clocked_store, clock) -> None:
    from eventsync.store.outbox import FOLLOW_ON

    store = clocked_store()
    assert store.peek_due() == (0, None)
    for entity in ("a", "b", "c"):
        store.mark("acme", "export", entity)
    clock.advance(2)
    store.mark("acme", "import", "x")
    for org in ("beta", "gamma", "delta"):
        store.mark(org, "export", "y")
    count, age = store.peek_due()
    assert count == 3 and age == pytest.approx(2, abs=0.5)  # acme's export: the oldest
    assert store.peek_due(limit=2)[0] == 2
    assert store.peek_due(flow="import") == (1, pytest.approx(0, abs=0.5))
    assert store.peek_due(org="beta")[0] == 1
    # Skipped: the paused organisations (any number of them) and the stopped flows.
    assert store.peek_due(skip_orgs={"acme"})[0] == 1
    assert store.peek_due(skip_flows=[("acme", "export")]) == (1, pytest.approx(0, abs=0.5))
    paused = {"acme", "beta", "gamma", *(f"o{i}" for i in range(600))}
    assert store.peek_due(skip_orgs=paused) == (1, pytest.approx(0, abs=0.5))  # delta
    every = [("acme", "export"), ("acme", "import"), ("beta", "export"), ("gamma", "export")]
    assert store.peek_due(skip_flows=every, skip_orgs={"delta"}) == (0, None)
    # Leased rows are not due; a follow-on mark came as a batch: no age to wait on.
    assert len(store.lease("w", 10, org="acme", flow="export")) == 3
    assert store.peek_due(org="acme") == (1, pytest.approx(0, abs=0.5))
    store.mark("zeta", "export", "z", hint=FOLLOW_ON)
    assert store.peek_due(org="zeta") == (1, None)


def test_complete_tells_done_requeued_and_lost_apart(clocked_store, clock) -> None:
    store = clocked_store()
    store.mark_many("acme", "export", [f"e{n}" for n in range(5)])
    store.mark("acme", "other", "x")
    first = store.lease("w1", limit=3, lease_seconds=10)
    clock.advance(11)
    taken_over = store.lease("w2", limit=200, lease_seconds=60)  # first's expired, and the rest
    assert {i.entity for i in taken_over} == {f"e{n}" for n in range(5)}
    store.mark("acme", "export", "e1")  # re-marked during the job
    second = store.lease("w3")  # another token, another flow
    by_entity = {i.entity: i for i in taken_over}
    # first's lease was taken over: all lost; taken_over's: e1 moved on, requeued.
    stale = store.complete(first)
    assert stale.completed == stale.requeued == () and len(stale.lost) == 3
    result = store.complete([*taken_over, *second])
    assert set(result.requeued) == {by_entity["e1"].id}
    assert set(result.completed) == {i.id for i in [*taken_over, *second]} - {by_entity["e1"].id}
    assert [(r.entity, r.attempts) for r in store.pending()] == [("e1", 0)]
