"""A snapshot's fields are exactly what a JSON round trip (``default=str``) of them would give,
made without one; a snapshot is trusted back (``usable_snapshot``) as the same record."""

from __future__ import annotations

import datetime as dt
import enum
import json
import math

from eventsync.flows.base import _json_safe, snapshot_of, usable_snapshot
from eventsync.models import Record
from eventsync.store import OutboxItem
from hypothesis import given, settings
from hypothesis import strategies as st


class Colour(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Label(str):
    """A text subclass, as some libraries hand back."""


_leaves = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.datetimes(timezones=st.none() | st.just(dt.UTC))
    | st.dates()
    | st.decimals(allow_nan=False, allow_infinity=False)
    | st.sampled_from([Colour.RED, Level.HIGH, Label("x"), math.inf, -math.inf])
)
_keys = st.text(max_size=6) | st.integers() | st.booleans() | st.none() | st.floats(allow_nan=False)
_values = st.recursive(
    _leaves,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(_keys, inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=250)
@given(st.dictionaries(st.text(max_size=10), _values, max_size=8))
def test_fields_are_what_a_json_round_trip_gives(fields) -> None:
    assert _json_safe(fields) == json.loads(json.dumps(fields, default=str))


def test_a_snapshot_is_plain_json_and_is_trusted_back_as_the_record() -> None:
    modified = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.UTC)
    record = Record(
        "hopin",
        "registration",
        "r1",
        {"email": "a@b.c", "at": modified, "answers": {"q1": ("x", 2)}, "tags": [Colour.RED]},
        modified,
    )
    snapshot = snapshot_of(record)
    assert json.loads(json.dumps(snapshot)) == snapshot  # nothing but JSON in it
    item = OutboxItem(
        id=1, org="o", flow="f", entity="r1", generation=1, attempts=0, payload=snapshot
    )
    again = usable_snapshot(item)
    assert again is not None and again.id == "r1" and again.modified_at == modified
    assert again.fields == {
        "email": "a@b.c",
        "at": str(modified),
        "answers": {"q1": ["x", 2]},
        "tags": ["Colour.RED"],
    }
