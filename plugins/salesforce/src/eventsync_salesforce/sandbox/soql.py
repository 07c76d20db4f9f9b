"""The SOQL subset integrations use: a lark grammar, an AST of frozen records, an evaluator.

Supported: ``SELECT`` of fields, relationship paths and ``COUNT()``; ``WHERE`` with AND, OR,
NOT and parentheses, ``= != <> < <= > >=``, ``IN``, ``NOT IN``, ``LIKE``, NULL, booleans,
numbers, strings, date and datetime literals and the date literals TODAY / YESTERDAY /
TOMORROW / LAST_N_DAYS:n / NEXT_N_DAYS:n; ``ORDER BY`` over several columns with ASC/DESC and
NULLS FIRST/LAST; ``LIMIT``; ``OFFSET``. Anything else raises :class:`SoqlError` with
Salesforce's error code and wording.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable, Mapping
from typing import Any

import attrs
from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

_GRAMMAR = r"""
    start: "SELECT"i select_list "FROM"i NAME where? order? limit? offset?
    select_list: select_item ("," select_item)*
    ?select_item: COUNT "(" ")" -> count
                | path
    path: NAME ("." NAME)*
    where: "WHERE"i cond
    ?cond: or_cond
    ?or_cond: and_cond (_OR and_cond)*  -> or_
    ?and_cond: not_cond (_AND not_cond)* -> and_
    ?not_cond: _NOT not_cond -> not_
             | atom
    ?atom: "(" cond ")"
         | comparison
    comparison: path OP value                      -> compare
              | path _IN "(" value ("," value)* ")"  -> in_
              | path _NOT _IN "(" value ("," value)* ")" -> not_in
              | path _LIKE value                   -> like
    ?value: STRING -> string
          | DATETIME -> datetime
          | DATE -> date
          | SIGNED_NUMBER -> number
          | _NULL -> null
          | _TRUE -> true
          | _FALSE -> false
          | DATE_LITERAL -> date_literal
    order: _ORDER _BY order_item ("," order_item)*
    order_item: path DIRECTION? nulls?
    nulls: _NULLS NULLS_POS
    limit: _LIMIT INT
    offset: _OFFSET INT

    COUNT.3: /count/i
    _OR.3: /or\b/i
    _AND.3: /and\b/i
    _NOT.3: /not\b/i
    _IN.3: /in\b/i
    _LIKE.3: /like\b/i
    _NULL.3: /null\b/i
    _TRUE.3: /true\b/i
    _FALSE.3: /false\b/i
    _ORDER.3: /order\b/i
    _BY.3: /by\b/i
    _NULLS.3: /nulls\b/i
    _LIMIT.3: /limit\b/i
    _OFFSET.3: /offset\b/i
    DIRECTION.3: /(asc|desc)\b/i
    NULLS_POS.3: /(first|last)\b/i
    DATE_LITERAL.3: /(today|yesterday|tomorrow)\b/i | /(last|next)_n_days:\d+/i
    OP: "!=" | "<>" | "<=" | ">=" | "=" | "<" | ">"
    DATETIME.2: /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?(Z|[+-]\d{2}:?\d{2})/
    DATE.2: /\d{4}-\d{2}-\d{2}/
    STRING: /'(\\.|[^'\\])*'/
    NAME: /[A-Za-z_][A-Za-z0-9_]*/
    %import common.SIGNED_NUMBER
    %import common.INT
    %import common.WS
    %ignore WS
"""

_PARSER = Lark(_GRAMMAR, parser="lalr")


class SoqlError(Exception):
    """A query Salesforce would refuse: ``code`` is MALFORMED_QUERY, INVALID_FIELD or INVALID_TYPE."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


# --- AST ------------------------------------------------------------------------------------


@attrs.frozen
class Path:
    """A field reference, ``("Campaign", "Name")`` for ``Campaign.Name``."""

    parts: tuple[str, ...]

    @property
    def text(self) -> str:
        """The path as written."""
        return ".".join(self.parts)


@attrs.frozen
class Literal:
    """A literal value; ``kind`` is string, number, date, datetime, null, boolean or relative."""

    kind: str
    value: Any


@attrs.frozen
class Compare:
    """``path op value`` (``op`` one of = != < <= > >= like)."""

    path: Path
    op: str
    value: Literal


@attrs.frozen(cache_hash=True)
class InList:
    """``path [NOT] IN (values)``."""

    path: Path
    values: tuple[Literal, ...]
    negate: bool = False


@attrs.frozen
class BoolOp:
    """AND / OR / NOT over sub-conditions."""

    op: str
    items: tuple[Any, ...]


@attrs.frozen
class OrderItem:
    """One ORDER BY column."""

    path: Path
    descending: bool = False
    nulls_last: bool | None = None


@attrs.frozen
class Query:
    """A parsed SELECT statement."""

    fields: tuple[Path, ...]
    object: str
    where: Any = None
    order: tuple[OrderItem, ...] = ()
    limit: int | None = None
    offset: int | None = None
    count: bool = False


_ESCAPES = {
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "b": "\b",
    "f": "\f",
    "'": "'",
    '"': '"',
    "\\": "\\",
    "_": "\\_",
    "%": "\\%",
}


def _unescape(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


@v_args(inline=True)
class _ToAst(Transformer):
    def start(self, fields, obj, *clauses):
        query = {"fields": (), "count": False}
        items = fields
        query["count"] = any(item == "COUNT" for item in items)
        query["fields"] = tuple(item for item in items if item != "COUNT")
        for clause in clauses:
            query.update(clause)
        return Query(object=str(obj), **query)

    def select_list(self, *items):
        return items

    def count(self, _token):
        return "COUNT"

    def path(self, *names):
        return Path(tuple(str(n) for n in names))

    def where(self, cond):
        return {"where": cond}

    def or_(self, *items):
        return items[0] if len(items) == 1 else BoolOp("or", items)

    def and_(self, *items):
        return items[0] if len(items) == 1 else BoolOp("and", items)

    def not_(self, item):
        return BoolOp("not", (item,))

    def compare(self, path, op, value):
        return Compare(path, "!=" if str(op) == "<>" else str(op), value)

    def in_(self, path, *values):
        return InList(path, values)

    def not_in(self, path, *values):
        return InList(path, values, negate=True)

    def like(self, path, value):
        return Compare(path, "like", value)

    def string(self, token):
        return Literal("string", _unescape(str(token)))

    def number(self, token):
        text = str(token)
        return Literal("number", float(text) if any(c in text for c in ".eE") else int(text))

    def date(self, token):
        return Literal("date", dt.date.fromisoformat(str(token)))

    def datetime(self, token):
        return Literal("datetime", parse_datetime(str(token)))

    def null(self):
        return Literal("null", None)

    def true(self):
        return Literal("boolean", True)

    def false(self):
        return Literal("boolean", False)

    def date_literal(self, token):
        return Literal("relative", str(token).upper())

    def order(self, *items):
        return {"order": items}

    def order_item(self, path, *rest):
        descending = False
        nulls_last = None
        for part in rest:
            if isinstance(part, Token) and part.type == "DIRECTION":
                descending = str(part).lower() == "desc"
            elif isinstance(part, bool):
                nulls_last = part
        return OrderItem(path, descending, nulls_last)

    def nulls(self, token):
        return str(token).lower() == "last"

    def limit(self, token):
        return {"limit": int(token)}

    def offset(self, token):
        return {"offset": int(token)}


def parse(text: str) -> Query:
    """Parse a SOQL statement; SoqlError(MALFORMED_QUERY) with Salesforce's wording if it fails."""
    try:
        tree = _PARSER.parse(text)
    except UnexpectedToken as exc:
        token = exc.token
        shown = "<EOF>" if token.type == "$END" else str(token)
        raise SoqlError(
            "MALFORMED_QUERY", _located(text, exc, f"unexpected token: '{shown}'")
        ) from None
    except UnexpectedCharacters as exc:
        raise SoqlError(
            "MALFORMED_QUERY",
            _located(text, exc, f"unexpected token: '{text[exc.pos_in_stream or 0]}'"),
        ) from None
    except (UnexpectedInput, LarkError) as exc:
        raise SoqlError("MALFORMED_QUERY", f"unexpected token: {exc}") from None
    return _ToAst().transform(tree)


def _located(text: str, exc: UnexpectedInput, message: str) -> str:
    line = getattr(exc, "line", 1) or 1
    column = getattr(exc, "column", 1) or 1
    return f"\n{text}\n{' ' * max(column - 1, 0)}^\nERROR at Row:{line}:Column:{column}\n{message}"


def invalid_field(text: str, name: str, entity: str) -> SoqlError:
    """INVALID_FIELD in Salesforce's wording for an unknown column."""
    column = max(text.find(name), 0) + 1
    return SoqlError(
        "INVALID_FIELD",
        f"\n{text}\n{' ' * (column - 1)}^\nERROR at Row:1:Column:{column}\n"
        f"No such column '{name}' on entity '{entity}'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference your "
        "WSDL or the describe call for the appropriate names.",
    )


# --- values ---------------------------------------------------------------------------------


def parse_datetime(text: str) -> dt.datetime:
    """A Salesforce datetime (``2024-01-02T03:04:05.000+0000`` or ``...Z``) as aware UTC."""
    value = text.replace("Z", "+00:00")
    value = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", value)
    return dt.datetime.fromisoformat(value).astimezone(dt.UTC)


def format_datetime(value: dt.datetime) -> str:
    """The Salesforce wire form of a datetime: ``2024-01-02T03:04:05.000+0000``."""
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def _relative_range(literal: str, today: dt.date) -> tuple[dt.date, dt.date]:
    if literal == "TODAY":
        return today, today
    if literal == "YESTERDAY":
        day = today - dt.timedelta(days=1)
        return day, day
    if literal == "TOMORROW":
        day = today + dt.timedelta(days=1)
        return day, day
    kind, _, number = literal.partition(":")
    days = int(number)
    if kind == "LAST_N_DAYS":
        return today - dt.timedelta(days=days), today
    return today, today + dt.timedelta(days=days)


#: Coerces a stored wire value of a field type into a comparable Python value.
def comparable(field_type: str, value: Any) -> Any:
    """A stored wire value as a comparable Python value (strings compare case-insensitively)."""
    if value is None:
        return None
    if field_type == "datetime":
        return parse_datetime(value) if isinstance(value, str) else value
    if field_type == "date":
        return dt.date.fromisoformat(value) if isinstance(value, str) else value
    if field_type in ("int", "double", "currency", "percent"):
        return float(value)
    if field_type == "boolean":
        return bool(value)
    if field_type in ("id", "reference"):
        return str(value)[:15]  # ids compare case-sensitively, 15- and 18-char alike
    return str(value).lower()


def _literal_value(field_type: str, literal: Literal) -> Any:
    if literal.kind == "null":
        return None
    if literal.kind == "datetime" and field_type == "date":
        return literal.value.date()
    if literal.kind == "date" and field_type == "datetime":
        return dt.datetime.combine(literal.value, dt.time(), dt.UTC)
    if literal.kind == "string":
        if field_type in ("id", "reference"):
            return literal.value[:15]
        if field_type in ("int", "double", "currency", "percent"):
            return literal.value
        return literal.value.lower()
    if literal.kind == "number":
        return float(literal.value)
    return literal.value


@functools.lru_cache(maxsize=512)
def _wanted(cond: InList, field_type: str) -> frozenset[Any]:
    """The comparable values of an IN list (computed once per query, not per record)."""
    return frozenset(_literal_value(field_type, literal) for literal in cond.values)


def _like(pattern: str, value: str) -> bool:
    regex = ""
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            regex += re.escape(pattern[index + 1])
            index += 2
            continue
        regex += ".*" if char == "%" else "." if char == "_" else re.escape(char)
        index += 1
    return re.fullmatch(regex, value, flags=re.IGNORECASE | re.DOTALL) is not None


#: Resolves ``(record, path)`` to ``(field_type, raw value)``.
Resolver = Callable[[Mapping[str, Any], Path], tuple[str, Any]]


def evaluate(
    cond: Any, record: Mapping[str, Any], resolve: Resolver, today: dt.date | None = None
) -> bool:
    """True when ``record`` satisfies the WHERE condition ``cond``."""
    if cond is None:
        return True
    if isinstance(cond, BoolOp):
        if cond.op == "and":
            return all(evaluate(item, record, resolve, today) for item in cond.items)
        if cond.op == "or":
            return any(evaluate(item, record, resolve, today) for item in cond.items)
        return not evaluate(cond.items[0], record, resolve, today)
    field_type, raw = resolve(record, cond.path)
    value = comparable(field_type, raw)
    if isinstance(cond, InList):
        found = value in _wanted(cond, field_type)
        return not found if cond.negate else found
    literal = cond.value
    if literal.kind == "relative":
        low, high = _relative_range(literal.value, today or dt.datetime.now(dt.UTC).date())
        if value is None:
            return cond.op == "!="
        day = value.date() if isinstance(value, dt.datetime) else value
        return _compare_range(cond.op, day, low, high)
    other = _literal_value(field_type, literal)
    if cond.op == "like":
        return value is not None and _like(literal.value, str(raw))
    if cond.op == "=":
        return value == other
    if cond.op == "!=":
        return value != other
    if value is None or other is None:
        return False
    try:
        return {"<": value < other, "<=": value <= other, ">": value > other, ">=": value >= other}[
            cond.op
        ]
    except TypeError:
        return False


def _compare_range(op: str, day: dt.date, low: dt.date, high: dt.date) -> bool:
    return {
        "=": low <= day <= high,
        "!=": not low <= day <= high,
        "<": day < low,
        "<=": day <= high,
        ">": day > high,
        ">=": day >= low,
    }.get(op, False)


def sort_key(items: tuple[OrderItem, ...], resolve: Resolver) -> Callable[[Mapping[str, Any]], Any]:
    """A key for ``sorted`` implementing ORDER BY with NULLS FIRST/LAST (default: nulls first
    ascending, last descending)."""

    class _Key:
        __slots__ = ("values",)

        def __init__(self, record: Mapping[str, Any]) -> None:
            self.values = [comparable(*resolve(record, item.path)) for item in items]

        def __lt__(self, other: _Key) -> bool:
            for item, mine, theirs in zip(items, self.values, other.values, strict=True):
                if mine == theirs:
                    continue
                nulls_last = item.nulls_last if item.nulls_last is not None else item.descending
                if mine is None:
                    return not nulls_last
                if theirs is None:
                    return nulls_last
                return mine > theirs if item.descending else mine < theirs
            return False

    return _Key
