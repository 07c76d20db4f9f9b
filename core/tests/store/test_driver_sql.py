"""Statements compiled once and run on the driver's cursor (``eventsync.store.driver_sql``).

On both stores: values are converted as SQLAlchemy would (aware datetimes, JSON), a literal of
the statement itself (``generation + 1``) is bound, and a driver error arrives as SQLAlchemy's
exception with the transaction rolled back.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from eventsync.store import StateStore
from eventsync.store.driver_sql import IN_CHUNK, Conversions, DriverStatement, padded_binds
from eventsync.store.notifications import MARK_COLUMNS
from eventsync.store.outbox import _new_row


def _outbox(store: StateStore) -> list[dict]:
    with store.engine.connect() as conn:
        query = sa.select(store.tables.outbox).order_by(store.tables.outbox.c.entity)
        return [dict(r) for r in conn.execute(query).mappings()]


def test_an_upsert_run_on_the_driver_stores_what_sqlalchemy_would(store: StateStore) -> None:
    mark = DriverStatement.compile(store._mark_statement(), store.engine.dialect, MARK_COLUMNS)
    now = dt.datetime(2026, 5, 4, 3, 2, 1, 123000, tzinfo=dt.UTC)
    payload = {"id": "r1", "tags": ["a", "ü"], "n": 3}
    rows = [_new_row("o", "f", e, payload, "notification", now) for e in ("a", "b")]
    with store.engine.begin() as conn:
        mark.run(conn, rows)  # an executemany
    with store.engine.begin() as conn:
        mark.run(conn, [_new_row("o", "f", "a", None, None, now)])  # marked again: one execute
    a, b = _outbox(store)
    assert (a["entity"], a["generation"], b["generation"]) == ("a", 2, 1)
    # Converted both ways as the column types say: JSON kept when the new payload is None.
    assert a["payload"] == payload and b["payload"] == payload
    assert a["marked_at"] == now and a["marked_at"].tzinfo is not None
    assert a["hint"] == "notification"


def test_a_select_hands_back_the_rows(store: StateStore) -> None:
    t = store.tables.outbox
    query = sa.select(t.c.entity).where(
        t.c.org == sa.bindparam("org"), t.c.due_at <= sa.bindparam("now", type_=t.c.due_at.type)
    )
    select = DriverStatement.compile(query, store.engine.dialect)
    now = dt.datetime(2026, 5, 4, tzinfo=dt.UTC)
    store.mark("o", "f", "x")
    with store.engine.begin() as conn:
        assert select.rows(conn, {"org": "o", "now": now + dt.timedelta(days=3650)}) == [("x",)]
        assert select.rows(conn, {"org": "o", "now": now - dt.timedelta(days=3650)}) == []
        assert select.rows(conn, {"org": "other", "now": now + dt.timedelta(days=3650)}) == []


def test_a_driver_error_is_sqlalchemys_and_rolls_the_transaction_back(store: StateStore) -> None:
    mark = DriverStatement.compile(store._mark_statement(), store.engine.dialect, MARK_COLUMNS)
    now = dt.datetime.now(dt.UTC)
    good = _new_row("o", "f", "good", None, None, now)
    bad = dict(_new_row("o", "f", "bad", None, None, now), created_at=None)  # NOT NULL
    with pytest.raises(sa.exc.IntegrityError) as caught, store.engine.begin() as conn:
        mark.run(conn, [good])
        mark.run(conn, [bad])
    assert "created_at" in str(caught.value).lower() or "null" in str(caught.value).lower()
    assert _outbox(store) == []
    store.mark("o", "f", "after")  # the connection went back to the pool in working order
    assert [r["entity"] for r in _outbox(store)] == ["after"]


def test_a_missing_value_is_a_key_error_naming_it(store: StateStore) -> None:
    mark = DriverStatement.compile(store._mark_statement(), store.engine.dialect, MARK_COLUMNS)
    row = _new_row("o", "f", "e", None, None, dt.datetime.now(dt.UTC))
    del row["due_at"]
    with pytest.raises(KeyError, match="due_at"), store.engine.begin() as conn:
        mark.run(conn, [row])


def test_expanding_parameters_are_refused(store: StateStore) -> None:
    t = store.tables.outbox
    query = sa.select(t.c.entity).where(t.c.entity.in_(sa.bindparam("keys", expanding=True)))
    with pytest.raises(ValueError, match="expanding"):
        DriverStatement.compile(query, store.engine.dialect)


def test_padded_binds_repeat_the_last_value_up_to_a_power_of_two() -> None:
    assert padded_binds("k", ["a"]) == {"k0": "a"}
    assert padded_binds("k", ["a", "b", "c"]) == {"k0": "a", "k1": "b", "k2": "c", "k3": "c"}
    assert len(padded_binds("k", list(range(IN_CHUNK)))) == IN_CHUNK
    assert len(padded_binds("k", list(range(IN_CHUNK + 1)))) == 2 * IN_CHUNK
    with pytest.raises(ValueError, match="padded_binds"):
        padded_binds("k", [])


def test_run_counts_the_rows_a_statement_changed(store: StateStore) -> None:
    t = store.tables.outbox
    delete = DriverStatement.compile(
        t.delete().where(t.c.org == sa.bindparam("org")), store.engine.dialect
    )
    for entity in ("a", "b"):
        store.mark("o", "f", entity)
    with store.engine.begin() as conn:
        assert delete.run(conn, [{"org": "other"}]) == 0
        assert delete.run(conn, [{"org": "o"}]) == 2
        assert delete.run(conn, []) == 0


def test_a_selects_rows_come_back_converted_as_sqlalchemy_would(store: StateStore) -> None:
    t = store.tables.outbox
    now = dt.datetime(2026, 5, 4, 3, 2, 1, 123000, tzinfo=dt.UTC)
    payload = {"id": "r1", "tags": ["a", "ü"]}
    mark = DriverStatement.compile(store._mark_statement(), store.engine.dialect, MARK_COLUMNS)
    query = sa.select(t.c.entity, t.c.marked_at, t.c.payload, t.c.generation).where(
        t.c.org == sa.bindparam("org")
    )
    select = DriverStatement.compile(query, store.engine.dialect)
    with store.engine.begin() as conn:
        mark.run(conn, [_new_row("o", "f", "a", payload, None, now)])
        [(entity, marked_at, stored, generation)] = select.rows(conn, {"org": "o"})
    assert (entity, stored, generation) == ("a", payload, 1)
    assert marked_at == now and marked_at.tzinfo is not None


class _CountedTime(sa.types.TypeDecorator):
    """A datetime column counting its conversions for the driver."""

    impl = sa.DateTime
    cache_ok = True
    converted = 0

    def process_bind_param(self, value, dialect):
        type(self).converted += 1
        return value.replace(tzinfo=None) if value is not None else None


def test_the_statements_of_a_transaction_share_their_conversions(store: StateStore) -> None:
    md = sa.MetaData(schema=store.tables.schema)
    one = sa.Table("conv_one", md, sa.Column("a", _CountedTime()), sa.Column("b", _CountedTime()))
    two = sa.Table("conv_two", md, sa.Column("c", _CountedTime()))
    md.create_all(store.engine)
    dialect = store.engine.dialect
    first = DriverStatement.compile(one.insert(), dialect, ["a", "b"])
    second = DriverStatement.compile(two.insert(), dialect, ["c"])
    now, later = dt.datetime(2026, 1, 2, 3, 4, 5), dt.datetime(2026, 6, 7, 8, 9, 10)
    memo = Conversions()
    _CountedTime.converted = 0
    with store.engine.begin() as conn:
        first.run(conn, [{"a": now, "b": now}], memo)
        second.run(conn, [{"c": now}, {"c": later}], memo)
    assert _CountedTime.converted == 2  # now once, later once
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(one.c.a, one.c.b)).all() == [(now, now)]
        assert sorted(r.c for r in conn.execute(sa.select(two.c.c))) == [now, later]


def test_a_memo_never_mistakes_a_new_value_for_a_freed_one() -> None:
    class Box:
        def __init__(self, n: int) -> None:
            self.n = n

    memo = Conversions()
    # Each box is dropped by the caller at once: were the memo not keeping it, the next box
    # would often take its address and be handed its conversion.
    for n in range(500):
        assert memo.convert("box", lambda box: box.n, Box(n)) == n
