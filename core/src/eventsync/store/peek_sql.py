"""The statements of ``OutboxOps.peek_due`` and ``lease``, compiled once per shape and run on
the driver.

Every lingering worker peeks several times a batch (and twice a second while idle), and every
batch is leased; building and executing these queries through SQLAlchemy cost several times what
the database spent on them. One set serves every call of a shape: whether an org and a flow are
given, and how many organisations and (org, flow) pairs are skipped (the paused and the stopped,
usually none).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from .driver_sql import DriverStatement, padded_binds

__all__ = [
    "PeekStatements",
    "LeaseStatements",
    "compile_peek",
    "compile_lease",
    "peek_shape",
    "peek_values",
]


@attrs.frozen
class PeekStatements:
    """``first``: the oldest due row's org, flow, marked_at and hint (binds ``now``, ``org``,
    ``flow``, the skipped); ``count``: how many due rows of ``first_org`` / ``first_flow`` there
    are, up to ``limit``."""

    first: DriverStatement
    count: DriverStatement


def peek_shape(
    org: str | None,
    flow: str | None,
    skip_orgs: Collection[str],
    skip_flows: Collection[tuple[str, str]],
) -> tuple[bool, bool, int, int]:
    """The shape of a peek (what its statements depend on): a key for ``compile_peek``."""
    orgs = 1 << (len(skip_orgs) - 1).bit_length() if skip_orgs else 0  # as padded_binds pads them
    return org is not None, flow is not None, orgs, len(skip_flows)


def peek_values(
    org: str | None,
    flow: str | None,
    skip_orgs: Collection[str],
    skip_flows: Collection[tuple[str, str]],
) -> dict[str, Any]:
    """The bind values of a peek's statements but ``now``, ``limit`` and the first row's."""
    values: dict[str, Any] = {"org": org, "flow": flow}
    if skip_orgs:
        values.update(padded_binds("skip_org", sorted(skip_orgs)))
    for i, (skip_org, skip_flow) in enumerate(skip_flows):
        values[f"skip_flow_org{i}"], values[f"skip_flow{i}"] = skip_org, skip_flow
    return values


@attrs.frozen
class LeaseStatements:
    """``first``: the oldest due row's org and flow (binds as ``PeekStatements.first``);
    ``take``: lease up to ``limit`` due rows of ``first_org`` / ``first_flow``, oldest first
    (binds ``token``, ``worker``, ``until``), returning ``columns`` of each (what an OutboxItem
    holds but the lease's own values, and ``due_at`` to order them by: every column read back
    costs its conversion). On PostgreSQL both lock the rows they read, skipping those other
    workers hold."""

    first: DriverStatement
    take: DriverStatement
    columns: tuple[str, ...]


def compile_lease(
    outbox: sa.Table, dialect: Dialect, shape: tuple[bool, bool, int, int], columns: Sequence[str]
) -> LeaseStatements:
    """The statements of a lease of ``shape`` (``peek_shape``) returning ``columns``."""
    o = outbox
    due = _due(o, shape)
    order = (o.c.due_at, o.c.id)
    locking = dialect.name == "postgresql"
    first = sa.select(o.c.org, o.c.flow).where(*due).order_by(*order).limit(1)
    ids = (
        sa.select(o.c.id)
        .where(*due, o.c.org == sa.bindparam("first_org"), o.c.flow == sa.bindparam("first_flow"))
        .order_by(*order)
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )
    if locking:
        first = first.with_for_update(skip_locked=True)
        ids = ids.with_for_update(skip_locked=True)
    take = (
        sa.update(o)
        .where(o.c.id.in_(ids.scalar_subquery()))
        .values(
            lease_token=sa.bindparam("token", type_=o.c.lease_token.type),
            leased_by=sa.bindparam("worker", type_=o.c.leased_by.type),
            lease_until=sa.bindparam("until", type_=o.c.lease_until.type),
            leased_generation=o.c.generation,
        )
        .returning(*(o.c[name] for name in columns))
    )
    return LeaseStatements(
        DriverStatement.compile(first, dialect),
        DriverStatement.compile(take, dialect),
        tuple(columns),
    )


def compile_peek(
    outbox: sa.Table, dialect: Dialect, shape: tuple[bool, bool, int, int]
) -> PeekStatements:
    """The statements of a peek of ``shape`` (``peek_shape``)."""
    o = outbox
    due = _due(o, shape)
    first = (
        sa.select(o.c.org, o.c.flow, o.c.marked_at, o.c.hint)
        .where(*due)
        .order_by(o.c.due_at, o.c.id)
        .limit(1)
    )
    ids = (
        sa.select(o.c.id)
        .where(*due, o.c.org == sa.bindparam("first_org"), o.c.flow == sa.bindparam("first_flow"))
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )
    count = sa.select(sa.func.count()).select_from(ids.subquery())
    return PeekStatements(
        DriverStatement.compile(first, dialect), DriverStatement.compile(count, dialect)
    )


def _due(o: sa.Table, shape: tuple[bool, bool, int, int]) -> list[Any]:
    """The conditions of a row a lease of ``shape`` may take at ``now``: past its backoff, not
    leased or its lease ended, of the org and flow asked for, and not one of the skipped."""
    by_org, by_flow, orgs, flows = shape
    now = sa.bindparam("now", type_=o.c.due_at.type)
    due: list[Any] = [o.c.due_at <= now, sa.or_(o.c.lease_until.is_(None), o.c.lease_until <= now)]
    if by_org:
        due.append(o.c.org == sa.bindparam("org"))
    if by_flow:
        due.append(o.c.flow == sa.bindparam("flow"))
    if orgs:
        due.append(o.c.org.not_in([sa.bindparam(f"skip_org{i}") for i in range(orgs)]))
    due += [
        sa.not_(
            sa.and_(
                o.c.org == sa.bindparam(f"skip_flow_org{i}"),
                o.c.flow == sa.bindparam(f"skip_flow{i}"),
            )
        )
        for i in range(flows)
    ]
    return due
