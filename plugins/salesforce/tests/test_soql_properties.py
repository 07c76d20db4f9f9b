"""Property-based tests of SOQL building (``eventsync_salesforce.soql``).

Every value the plugin writes into a query must read back as exactly that value, under the
escaping rules of the SOQL reference (checked with a small decoder written from those rules and
with the sandbox's own SOQL parser), and no value can end its string literal and add a clause.
Names are the other half: ``name`` lets through API names and nothing else.
"""

from __future__ import annotations

import datetime as dt
import math
import string
from typing import Any, Literal

import pytest
from eventsync.models import Filter
from eventsync_salesforce import soql
from eventsync_salesforce.sandbox import soql as parser
from hypothesis import example, given, settings
from hypothesis import strategies as st

# --- strategies -----------------------------------------------------------------------------

#: Characters with a meaning in SOQL strings, LIKE patterns or the query around them.
TRICKY = "'\"\\\n\r\t\b\f%_ ()=,"
#: Fragments an attacker would put in a value to end the literal and add a clause.
HOSTILE = ("'", "\\", "\\'", "' OR Id != null OR Name = '", ") OR (", " LIMIT 1", "\\\\'", "%")

texts = st.one_of(
    st.text(),  # all of Unicode (surrogates aside: they cannot be sent in UTF-8)
    st.text(alphabet=TRICKY + "ab"),
    st.lists(st.sampled_from(HOSTILE) | st.text(alphabet=TRICKY, max_size=3)).map("".join),
)
offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda minutes: dt.timezone(dt.timedelta(minutes=minutes))
)
datetimes = st.datetimes(timezones=st.none() | st.just(dt.UTC) | offsets)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.dates(),
    datetimes,
    texts,
)
#: Values that have a literal (a datetime must fit datetime's range once in UTC).
representable = scalars.filter(lambda v: not isinstance(v, dt.datetime) or utc(v) is not None)
api_names = st.from_regex(
    r"[A-Za-z_][A-Za-z0-9_]{0,20}(\.[A-Za-z_][A-Za-z0-9_]{0,20}){0,2}", fullmatch=True
)

# --- an independent reading of the SOQL reference ----------------------------------------------

_ESCAPED = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", '"': '"', "'": "'", "\\": "\\"}
LETTERS = string.ascii_letters + "_"
FilterOp = Literal["=", "!=", "<", "<=", ">", ">=", "in", "like"]


def decode(literal: str) -> str:
    """The value of a SOQL string literal outside LIKE, following the reference: a quoted body
    where ``'`` and ``\\`` only appear escaped and a backslash starts one of the listed escape
    sequences (any other is an error)."""
    assert len(literal) >= 2 and literal[0] == literal[-1] == "'", literal
    body, out, index = literal[1:-1], [], 0
    while index < len(body):
        char = body[index]
        assert char != "'", f"unescaped quote at {index} of {literal!r}"
        if char == "\\":
            escape = body[index + 1 : index + 2]
            assert escape.lower() in _ESCAPED, f"invalid escape \\{escape} in {literal!r}"
            out.append(_ESCAPED[escape.lower()])
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


def is_api_name(text: str) -> bool:
    """Dot-separated identifiers of ASCII letters, digits and ``_``, none starting with a digit."""
    return all(
        part and part[0] in LETTERS and all(c in LETTERS + string.digits for c in part)
        for part in text.split(".")
    )


def utc(value: dt.datetime) -> dt.datetime | None:
    """``value`` as aware UTC (naive means UTC), or None when that falls outside datetime's range."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    offset = aware.utcoffset() or dt.timedelta()
    naive = aware.replace(tzinfo=None)
    if offset > dt.timedelta() and naive - dt.datetime.min < offset:
        return None
    if offset < dt.timedelta() and dt.datetime.max - naive < -offset:
        return None
    return (naive - offset).replace(tzinfo=dt.UTC)


def expected(value: Any) -> parser.Literal:
    """The literal the SOQL parser must read back for ``value`` (whole seconds for datetimes)."""
    if value is None:
        return parser.Literal("null", None)
    if isinstance(value, bool):
        return parser.Literal("boolean", value)
    if isinstance(value, (int, float)):
        return parser.Literal("number", value)
    if isinstance(value, dt.datetime):
        moment = utc(value)
        assert moment is not None
        return parser.Literal("datetime", moment.replace(microsecond=0))
    if isinstance(value, dt.date):
        return parser.Literal("date", value)
    return parser.Literal("string", str(value))


def where(condition: str) -> Any:
    """The parsed WHERE condition of a query on Lead."""
    return parser.parse(f"SELECT Id FROM Lead WHERE {condition}").where


def email(value: parser.Literal) -> parser.Compare:
    """``Email = value`` as the parser reads it."""
    return parser.Compare(parser.Path(("Email",)), "=", value)


# --- properties -----------------------------------------------------------------------------


@settings(max_examples=300)
@given(texts)
def test_a_quoted_text_reads_back_as_itself(value: str) -> None:
    quoted = soql.quote(value)
    assert decode(quoted) == value
    assert where(f"Email = {quoted}") == email(parser.Literal("string", value))


@settings(max_examples=200)
@given(texts, texts)
def test_a_text_cannot_close_its_literal_and_add_a_clause(value: str, other: str) -> None:
    parsed = where(f"Email = {soql.literal(value)} AND LastName = {soql.literal(other)}")
    assert parsed == parser.BoolOp(
        "and",
        (
            email(parser.Literal("string", value)),
            parser.Compare(parser.Path(("LastName",)), "=", parser.Literal("string", other)),
        ),
    )


@settings(max_examples=300)
@given(scalars)
@example(1e16)  # was written 1e+16
@example(dt.datetime(999, 1, 1))  # was written 999-01-01T00:00:00Z (glibc's %Y)
@example(dt.datetime.min.replace(tzinfo=dt.timezone(dt.timedelta(hours=1))))  # OverflowError
def test_every_literal_reads_back_as_its_value(value: Any) -> None:
    if isinstance(value, dt.datetime) and utc(value) is None:
        with pytest.raises(ValueError, match="outside the range"):
            soql.literal(value)
        return
    parsed = where(f"Email = {soql.literal(value)}")
    assert parsed == email(expected(value))
    if isinstance(value, float):
        # -0.0 == 0.0, so compare signs too; and no exponent, which SOQL does not document.
        assert math.copysign(1, parsed.value.value) == math.copysign(1, value)
        assert "e" not in soql.literal(value).lower()


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_a_number_without_a_literal_is_refused(value: float) -> None:
    with pytest.raises(ValueError, match="no SOQL literal"):
        soql.literal(value)


@settings(max_examples=150)
@given(st.lists(representable, min_size=1, max_size=6))
def test_an_in_list_reads_back_as_its_values(values: list[Any]) -> None:
    parsed = where(f"Email IN {soql.in_list(values)}")
    assert parsed == parser.InList(parser.Path(("Email",)), tuple(map(expected, values)))


conditions = st.one_of(
    st.tuples(st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), representable),
    st.tuples(st.just("in"), st.lists(representable, max_size=4) | representable),
    st.tuples(st.just("like"), texts),
)


@settings(max_examples=300)
@given(api_names, conditions)
def test_a_condition_is_one_term_on_its_field(field: str, condition: tuple[FilterOp, Any]) -> None:
    op, value = condition
    path = parser.Path(tuple(field.split(".")))
    parsed = where(soql.condition(Filter(field, op, value)))
    if op == "in" and value == []:
        # An empty IN list is a syntax error in SOQL: the term matches nothing instead.
        assert parsed == where("Id = null AND Id != null")
    elif op == "in":
        values = value if isinstance(value, list) else [value]
        assert parsed == parser.InList(path, tuple(map(expected, values)))
    elif op == "like":
        # A LIKE pattern keeps its wildcards: only the string escaping applies.
        assert parsed == parser.Compare(path, "like", parser.Literal("string", value))
    else:
        assert parsed == parser.Compare(path, op, expected(value))


@settings(max_examples=400)
@given(st.one_of(api_names, st.text(), api_names.map(lambda n: n + "\n"), st.text(LETTERS + ".0 ")))
@example("Email\n")  # was accepted: re.match's $ matches before a final newline
def test_name_accepts_api_names_and_refuses_everything_else(text: str) -> None:
    if is_api_name(text):
        assert soql.name(text) == text
    else:
        with pytest.raises(ValueError) as refused:
            soql.name(text)
        assert str(refused.value) == f"not a valid Salesforce field or object name: {text!r}"


@settings(max_examples=200)
@given(st.text(min_size=1).filter(lambda t: not is_api_name(t)), texts)
def test_a_condition_on_a_bad_field_name_is_refused(field: str, value: str) -> None:
    with pytest.raises(ValueError, match="not a valid Salesforce field or object name"):
        soql.condition(Filter(field, "=", value))
