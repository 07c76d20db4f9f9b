"""The intake's transactions on one kept connection (SQLite) or a pooled one each (PostgreSQL):
a failed one stores nothing and the next starts afresh; closing the store closes it."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from eventsync.store import StateStore


def _checkouts(store) -> list[int]:
    count = [0]

    @sa.event.listens_for(store.engine, "checkout")
    def _checked_out(*_args) -> None:
        count[0] += 1

    return count


def _accept(store, n: int, payload=None):
    return store.accept_notification(
        "acme", "hopin", {"export": {f"r{n}": payload}}, ids=[f"d{n}"], horizon=60.0
    )


def test_intake_transactions_check_out_once_on_sqlite_and_each_time_elsewhere(store) -> None:
    _accept(store, 0)
    checkouts = _checkouts(store)
    for n in range(1, 6):
        assert _accept(store, n) == 1
    expected = 0 if store.dialect == "sqlite" else 5
    assert checkouts[0] == expected
    assert {i.entity for i in store.lease("w", 10)} == {f"r{n}" for n in range(6)}


def test_a_failed_intake_transaction_stores_nothing_and_the_next_one_works(store) -> None:
    assert _accept(store, 1) == 1
    with pytest.raises(TypeError):
        _accept(store, 2, payload={"not json": object()})
    assert store.seen_notifications("acme", "hopin", ["d2"]) == set()
    checkouts = _checkouts(store)
    assert _accept(store, 3) == 1
    assert checkouts[0] == 1  # a fresh connection after the failure
    assert {i.entity for i in store.lease("w", 10)} == {"r1", "r3"}


def test_closing_the_store_closes_the_kept_connection(target) -> None:
    store = target.open()
    _accept(store, 1)
    store.close()
    assert store.engine.pool.checkedout() == 0


def test_a_busy_sqlite_file_fails_the_intake_with_sqlalchemys_error(tmp_path) -> None:
    path = tmp_path / "state.sqlite3"
    store = StateStore.open(path=path, busy_timeout=0.2)
    other = sa.create_engine(f"sqlite:///{path}", connect_args={"isolation_level": None})
    with other.connect() as holder:
        holder.exec_driver_sql("BEGIN IMMEDIATE")
        with pytest.raises(sa.exc.OperationalError, match="locked"):
            _accept(store, 1)
        holder.exec_driver_sql("ROLLBACK")
    other.dispose()
    assert _accept(store, 2) == 1
    store.close()
