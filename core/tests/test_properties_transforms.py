"""Property-based tests of the built-in transforms and of ``apply_mapping``.

A transform turns any value a record can hold into a value, or refuses it with a readable
ValueError, which the mapper reports as a MappingError naming the entry; no other exception may
escape, since the flows count on MappingError to dead-letter one record rather than retry the
whole batch. Beyond that: ``truncate`` never exceeds its length, ``strip`` and ``lower`` are
idempotent, ``value_map`` follows its strict / default rules, and dates read back as themselves.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Mapping
from typing import Any

import pytest
from eventsync.errors import MappingError
from eventsync.mapping import apply_mapping
from eventsync.models import FieldMap, FieldSchema, ObjectSchema, Record, RecordMapping, Transform
from eventsync.transforms import BUILTIN_TRANSFORMS as T
from hypothesis import example, given, settings
from hypothesis import strategies as st

# --- strategies -----------------------------------------------------------------------------

offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
datetimes = st.datetimes(timezones=st.none() | st.just(dt.UTC) | offsets)
#: ISO-ish text, so that date parsing is reached and not only refused.
iso_texts = st.one_of(
    datetimes.map(lambda d: d.isoformat()),
    st.dates().map(lambda d: d.isoformat()),
    datetimes.map(lambda d: d.isoformat().replace("+00:00", "Z")),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),  # nan and infinities included
    st.text(),
    iso_texts,
    st.dates(),
    datetimes,
)
#: Every value a record field can hold: scalars, lists (multi-selects) and nested objects.
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)
#: Format strings made of real directives and of text, as a config file could hold.
formats = st.lists(
    st.sampled_from(
        ["%Y", "%m", "%d", "%H", "%M", "%S", "%z", "%Z", "%f", "%j", "%%", "%", "-", "T", " ", "x"]
    ),
    max_size=6,
).map("".join)
zones = st.sampled_from(
    [
        "UTC",
        "Europe/Paris",
        "America/New_York",
        "Asia/Kolkata",
        "",
        "Nowhere/City",
        "../etc",
        "a\x00b",
    ]
)
targets = st.one_of(
    st.none(),
    st.builds(
        FieldSchema,
        name=st.just("Field"),
        type=st.sampled_from(["string", "picklist", "date", "int"]),
        length=st.none() | st.integers(0, 300),
    ),
)


def args_for(name: str) -> st.SearchStrategy[dict[str, Any]]:
    """Well-typed arguments of a built-in transform (the values may still be refused)."""
    text_or_scalar = st.text(max_size=5) | st.integers() | st.booleans() | st.none()
    options: dict[str, st.SearchStrategy[dict[str, Any]]] = {
        "strip": st.fixed_dictionaries({}, optional={"chars": st.text(max_size=3)}),
        "truncate": st.fixed_dictionaries({}, optional={"length": st.integers(1, 300)}),
        "date": st.fixed_dictionaries(
            {}, optional={"format": formats, "timezone": zones, "input_format": formats}
        ),
        "datetime": st.fixed_dictionaries(
            {}, optional={"format": formats, "input_format": formats}
        ),
        "value_map": st.fixed_dictionaries(
            {"map": st.dictionaries(st.text(max_size=5), text_or_scalar, max_size=4)},
            optional={"default": text_or_scalar, "strict": st.booleans()},
        ),
        "default": st.fixed_dictionaries({"value": text_or_scalar}),
        "join": st.fixed_dictionaries({}, optional={"separator": st.text(max_size=2)}),
    }
    return options.get(name, st.just({}))


transform_calls = st.sampled_from(sorted(T)).flatmap(lambda n: st.tuples(st.just(n), args_for(n)))
#: Arguments of any shape: what a config file may give before anything checks them.
any_args = st.dictionaries(
    st.sampled_from(
        [
            "chars",
            "length",
            "format",
            "timezone",
            "input_format",
            "map",
            "default",
            "strict",
            "value",
            "separator",
        ]
    ),
    values,
    max_size=3,
)


def call(name: str, value: Any, args: Mapping[str, Any], target: FieldSchema | None = None) -> Any:
    """Run a built-in transform; any exception but ValueError fails the test, with the input."""
    try:
        return T[name](value, args, target)
    except ValueError as exc:
        assert str(exc), f"{name} refused {value!r} without saying why"
        raise


# --- every transform: a value or a readable ValueError --------------------------------------


@settings(max_examples=400)
@given(transform_calls, values, targets)
@example(("date", {}), 1e20, None)  # OverflowError: timestamp out of range for platform time_t
@example(("datetime", {}), "0001-01-01T00:00:00+01:00", None)  # OverflowError in astimezone
@example(("datetime", {"input_format": "%Y %Y"}), "2020 2020", None)  # re.error
@example(("date", {"timezone": "Nowhere/City"}), "2020-01-01", None)  # ZoneInfoNotFoundError
@example(("join", {}), 5, None)  # TypeError: 'int' object is not iterable
def test_a_transform_returns_a_value_or_refuses_it_readably(
    transform: tuple[str, dict[str, Any]], value: Any, target: FieldSchema | None
) -> None:
    name, args = transform
    with contextlib.suppress(ValueError):
        call(name, value, args, target)


@settings(max_examples=300)
@given(
    st.lists(transform_calls | st.tuples(st.sampled_from(sorted(T)), any_args), max_size=3),
    st.dictionaries(st.sampled_from(["a", "b", "c"]), values, max_size=3),
    st.sampled_from(["a", "b.c", "missing"]),
    targets,
)
@example([("date", {})], {"a": 1e20}, "a", None)  # OverflowError escaped the mapper
@example([("datetime", {"input_format": "%d %d"})], {"a": "1 1"}, "a", None)  # re.error
def test_apply_mapping_returns_fields_or_raises_a_mapping_error(
    chain: list[tuple[str, dict[str, Any]]],
    fields: dict[str, Any],
    source: str,
    target: FieldSchema | None,
) -> None:
    entry = FieldMap("Field", source=source, transforms=tuple(Transform(n, a) for n, a in chain))
    mapping = RecordMapping("registration", "Lead", (entry,), name="export")
    schema = ObjectSchema("Lead", (target,)) if target is not None else None
    try:
        out = apply_mapping(Record("hopin", "registration", "r1", fields), mapping, schema, T)
    except MappingError as exc:
        assert exc.problems and all(
            p.startswith("mapping 'export' -> Lead.Field: ") for p in exc.problems
        ), exc.problems
    else:
        assert set(out) == {"Field"}


# --- the properties of each transform -------------------------------------------------------


@settings(max_examples=300)
@given(values, st.integers(1, 200) | st.none(), st.none() | st.integers(0, 200))
def test_truncate_never_exceeds_the_length(
    value: Any, length: int | None, field_length: int | None
) -> None:
    target = FieldSchema("Field", "string", length=field_length)
    result = call("truncate", value, {} if length is None else {"length": length}, target)
    if value is None:
        assert result is None
        return
    limit = length if length is not None else field_length or None
    assert str(value).startswith(result)
    assert len(result) == (len(str(value)) if limit is None else min(limit, len(str(value))))


@pytest.mark.parametrize("length", [0, -1, -5, "ten", 2.5, True])
def test_truncate_refuses_a_length_that_is_not_positive(length: Any) -> None:
    with pytest.raises(ValueError, match="truncate length must be a whole number of at least 1"):
        T["truncate"]("abcdefghij", {"length": length}, None)


@settings(max_examples=300)
@given(
    values | st.text(" \t\n\u00a0xXİß"),  # whitespace and letters whose case changes length
    st.sampled_from(["strip", "lower"]),
    st.sampled_from([{}, {"chars": " x"}]),
)
def test_strip_and_lower_are_idempotent(value: Any, name: str, args: dict[str, Any]) -> None:
    args = args if name == "strip" else {}
    once = call(name, value, args)
    assert call(name, once, args) == once


@settings(max_examples=300)
@given(
    st.dictionaries(st.text(max_size=4), st.text(max_size=4), max_size=4),
    st.text(max_size=4) | st.integers(-3, 3) | st.none(),
    st.booleans(),
    st.none() | st.text(max_size=4),
)
def test_value_map_translates_defaults_or_refuses_when_strict(
    table: dict[str, str], value: Any, strict: bool, default: str | None
) -> None:
    args: dict[str, Any] = {"map": table, "strict": strict}
    if default is not None:
        args["default"] = default
    key = None if value is None else str(value)
    if key in table:
        assert call("value_map", value, args) == table[key]
    elif default is not None:
        assert call("value_map", value, args) == default
    elif strict:
        with pytest.raises(ValueError, match="has no entry in the value map"):
            call("value_map", value, args)
    else:
        assert call("value_map", value, args) is value


@settings(max_examples=300)
@given(datetimes)
@example(dt.datetime(999, 12, 31, 23, 59))  # glibc's %Y wrote year 999 as "999"
def test_date_and_datetime_read_back_as_themselves(value: dt.datetime) -> None:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    try:
        moment = aware.astimezone(dt.UTC)
    except OverflowError:  # no such moment in UTC: it must be refused, readably
        with pytest.raises(ValueError, match="out of range"):
            call("datetime", value, {})
        return
    assert dt.date.fromisoformat(call("date", value, {})) == aware.date()
    written = call("datetime", value, {})
    assert written.endswith("Z")
    assert dt.datetime.fromisoformat(written[:-1] + "+00:00") == moment.replace(
        microsecond=moment.microsecond // 1000 * 1000
    )
    # and the text it wrote reads back the same through the transform itself
    assert call("datetime", written, {}) == written


@settings(max_examples=200)
@given(
    st.sampled_from(["true", "yes", "y", "1", "on", "false", "no", "n", "0", "off", ""]),
    st.lists(st.booleans(), min_size=3, max_size=3),
    st.text(" \t\n", max_size=2),
)
def test_boolean_reads_yes_and_no_in_any_case(word: str, upper: list[bool], space: str) -> None:
    cased = "".join(c.upper() if up else c for c, up in zip(word, upper * 2, strict=False))
    expected = word in {"true", "yes", "y", "1", "on"}
    assert call("boolean", f"{space}{cased}{space}", {}) is expected
