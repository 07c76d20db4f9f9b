"""Hot statements compiled once and run on the database driver's own cursor.

SQLAlchemy builds and compiles each statement (the dialect's SQL and parameter style, every
column type's conversion of its values); only the execution is handed to the driver. Its
per-execution machinery (the cache-key walk, the execution context, the result set-up) cost
the webhook intake several times what SQLite or PostgreSQL spent running the statements, once
per delivery, so the intake's statements, and the sync log's insert that nearly every
transaction makes, run here instead.

Written here rather than taken from a library: SQLAlchemy has no public "compile once, run raw"
API, and the parts this uses are its public ones (``compile``, ``dialect_impl``,
``bind_processor``, ``DBAPIError.instance``, ``Connection.invalidate``). A driver error is
raised as SQLAlchemy's own exception class, and a lost connection is invalidated, just as
``Connection.execute`` would do.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.dml import UpdateBase

__all__ = ["DriverStatement", "Conversions", "padded_binds", "IN_CHUNK"]

_Processor = Callable[[Any], Any] | None

#: Most values one ``IN`` list takes (SQLite takes at most 32766 parameters a statement).
IN_CHUNK = 512


def padded_binds(prefix: str, values: Sequence[Any]) -> dict[str, Any]:
    """Bind values ``prefix0``... for an ``IN`` over ``values`` (at least one; callers give at
    most ``IN_CHUNK`` to one statement), padded to a power of two with repeats of the last
    (harmless in ``IN`` and ``NOT IN``): its statement, one per size (``len`` of the result),
    serves every count up to it, so a few serve them all."""
    if not values:
        raise ValueError("padded_binds needs at least one value")
    size = 1 << (len(values) - 1).bit_length()
    last = len(values) - 1
    return {f"{prefix}{i}": values[min(i, last)] for i in range(size)}


#: ``repr`` of column types, by identity (kept with the type): building one walks the type's
#: constructor signature, and the same column types recur in every statement compiled.
_KINDS: dict[int, tuple[Any, str]] = {}


def _kind(type_: Any) -> str:
    """The column type as written (``repr``), computed once per type object."""
    hit = _KINDS.get(id(type_))
    if hit is None or hit[0] is not type_:
        hit = _KINDS[id(type_)] = (type_, repr(type_))
    return hit[1]


class Conversions:
    """Bound values already converted for the driver, by column type and value identity.

    Each value is kept with its conversion, so it lives as long as the memo: an identity seen
    again is the same object, never a new one that took a freed object's address."""

    def __init__(self) -> None:
        self._done: dict[tuple[str, int], tuple[Any, Any]] = {}

    def convert(self, kind: str, convert: Callable[[Any], Any], value: Any) -> Any:
        """``convert(value)``, computed once per ``kind`` of column type and value."""
        key = (kind, id(value))
        hit = self._done.get(key)
        if hit is None:
            hit = self._done[key] = (value, convert(value))
        return hit[1]


@attrs.frozen
class _Bind:
    """One parameter of a compiled statement: where its value comes from and its conversion."""

    name: str
    fixed: bool  # a literal of the statement itself (``generation + 1``), not a caller's value
    value: Any
    convert: _Processor
    #: The column type as written (``repr``): columns of one kind convert a value alike.
    kind: str = ""


@attrs.frozen
class DriverStatement:
    """A statement compiled for one dialect, run with the driver's cursor (``run``, ``rows``).

    Build it with ``compile``; its parameters are the statement's bind names (an INSERT's: the
    column keys given as ``columns``). Expanding parameters (``in_`` over a list) are not
    supported: give each member a bind parameter of its own (``padded_binds``). The rows of a
    SELECT, or of a statement's RETURNING, come back converted as their column types say (aware
    datetimes, JSON).
    """

    sql: str
    binds: tuple[_Bind, ...]
    positional: bool
    results: tuple[_Processor, ...] = ()

    @classmethod
    def compile(
        cls, statement: sa.ClauseElement, dialect: Dialect, columns: Iterable[str] | None = None
    ) -> DriverStatement:
        """Compile ``statement`` for ``dialect``; an INSERT takes exactly ``columns``."""
        keys = list(columns) if columns is not None else None
        # for_executemany: no implicit RETURNING of an INSERT's key (nobody reads it here).
        compiled: Any = statement.compile(  # a SQLCompiler (the typed Compiled lacks binds)
            dialect=dialect, column_keys=keys, for_executemany=True
        )
        if compiled.literal_execute_params or compiled.post_compile_params:
            raise ValueError("expanding parameters cannot be run on the driver's cursor")
        if compiled.positional:
            names = list(compiled.positiontup or ())
        else:  # named: each bind parameter's final name (anonymous ones numbered by now)
            names = list(dict.fromkeys(compiled.bind_names.values()))
        binds = []
        for name in names:
            bind = compiled.binds[name]
            convert = bind.type.dialect_impl(dialect).bind_processor(dialect)
            # Not required: a literal of the statement itself (``generation + 1``).
            binds.append(
                _Bind(name, not bind.required, bind.effective_value, convert, _kind(bind.type))
            )
        returned: Any = ()
        if isinstance(statement, sa.Select):
            returned = statement.selected_columns
        elif isinstance(statement, UpdateBase):  # its RETURNING columns, if any
            returned = statement.exported_columns
        results = tuple(
            c.type.dialect_impl(dialect).result_processor(dialect, None) for c in returned
        )
        return cls(compiled.string, tuple(binds), compiled.positional, results)

    def parameters(
        self, values: Mapping[str, Any], memo: Conversions | None = None
    ) -> Sequence[Any] | dict[str, Any]:
        """The driver's parameters for ``values`` (bind name -> value). ``memo`` keeps the
        conversions of values seen before (``Conversions``): the rows of a batch, and the
        statements of a transaction, share their times (one ``now``), and SQLite's text form of
        a datetime costs more than the rest of a row."""
        converted = []
        for bind in self.binds:
            value = bind.value if bind.fixed else values[bind.name]
            if bind.convert is None:
                converted.append(value)
            elif memo is None:
                converted.append(bind.convert(value))
            else:
                converted.append(memo.convert(bind.kind, bind.convert, value))
        if self.positional:
            return converted
        return {b.name: v for b, v in zip(self.binds, converted, strict=True)}

    def run(
        self,
        conn: Connection,
        rows: Sequence[Mapping[str, Any]],
        memo: Conversions | None = None,
    ) -> int:
        """Execute once per row of ``rows`` (an ``executemany`` when there are several);
        returns the rows changed as the driver counts them (of a single row's execution: a
        driver may count an ``executemany``'s differently). ``memo``: the conversions shared
        with the transaction's other statements (by default, only among ``rows``)."""
        if not rows:
            return 0
        if memo is None and len(rows) > 1:
            memo = Conversions()
        params = [self.parameters(row, memo) for row in rows]
        with _driver_errors(conn, self.sql, params) as cursor:
            if len(params) == 1:
                cursor.execute(self.sql, params[0])
            else:
                cursor.executemany(self.sql, params)
            return max(int(cursor.rowcount or 0), 0)  # -1: the driver does not know

    def rows(
        self, conn: Connection, values: Mapping[str, Any], memo: Conversions | None = None
    ) -> list[tuple[Any, ...]]:
        """Execute once with ``values`` and return every row (a SELECT's converted as its
        columns' types say); ``memo`` as for ``run``. Rows are converted as they are fetched:
        a row's raw text (a payload's JSON) is let go once converted, not held with them all."""
        params = self.parameters(values, memo)
        processors = [(i, p) for i, p in enumerate(self.results) if p is not None]
        with _driver_errors(conn, self.sql, params) as cursor:
            cursor.execute(self.sql, params)
            if not processors:
                return list(cursor.fetchall())
            rows = []
            for row in cursor:
                converted = list(row)
                for i, convert in processors:
                    converted[i] = convert(converted[i])
                rows.append(tuple(converted))
            return rows


class _driver_errors:
    """A cursor of ``conn``'s driver connection, closed after use; a driver error is raised as
    SQLAlchemy's exception for it, the connection invalidated when the error says it was lost."""

    def __init__(self, conn: Connection, sql: str, params: Any) -> None:
        self.conn, self.sql, self.params = conn, sql, params

    def __enter__(self) -> Any:
        self.cursor = self.conn.connection.cursor()
        return self.cursor

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        dialect = self.conn.dialect
        with contextlib.suppress(Exception):  # a cursor of a lost connection may not close
            self.cursor.close()
        if exc is None or not isinstance(exc, dialect.loaded_dbapi.Error):
            return
        lost = dialect.is_disconnect(exc, self.conn.connection, self.cursor)  # type: ignore[arg-type]
        if lost:
            self.conn.invalidate(exc)
        raise sa.exc.DBAPIError.instance(
            self.sql,
            self.params,
            exc,  # type: ignore[arg-type]
            dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=dialect,
        ) from exc
