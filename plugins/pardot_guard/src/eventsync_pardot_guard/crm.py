"""Read-only SOQL through the Salesforce plugin's connection (its simple-salesforce session).

Every value is escaped with the Salesforce plugin's ``soql`` helpers; every name is checked to
be a plain identifier. Calls go through ``SalesforceConnection.call`` so they get its retries
and session renewal.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import eventsync_salesforce.soql as soql
from eventsync.config import OrgConfig
from eventsync.hookspecs import Connection
from eventsync_salesforce.connection import SalesforceConnection

__all__ = ["salesforce_connection", "query", "rows", "has_field", "select"]


def salesforce_connection(
    org: OrgConfig, connections: Mapping[str, Connection]
) -> SalesforceConnection | None:
    """The org's CRM connection when it is a Salesforce one, else None.

    ``connections`` may be lazy: the connection is made on this first access.
    """
    if org.crm not in connections:
        return None
    conn = connections[org.crm]
    return conn if isinstance(conn, SalesforceConnection) else None


def query(conn: SalesforceConnection, statement: str) -> list[dict[str, Any]]:
    """All records of a SOQL statement (every page), with the plugin's retries."""
    result = conn.call("query", lambda: conn.sf.query_all(statement))
    return [dict(row) for row in result.get("records", ())]


def select(fields: Iterable[str], obj: str, where: str, limit: int | None = None) -> str:
    """``SELECT fields FROM obj WHERE where`` with every name checked (values are the caller's,
    already escaped with ``soql.literal``/``soql.in_list``)."""
    names = ", ".join(soql.name(f) for f in dict.fromkeys(fields))
    text = f"SELECT {names} FROM {soql.name(obj)} WHERE {where}"
    return text if limit is None else f"{text} LIMIT {int(limit)}"


def rows(
    conn: SalesforceConnection,
    fields: Iterable[str],
    obj: str,
    where: str,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Run :func:`select` and return its records."""
    return query(conn, select(fields, obj, where, limit))


def has_field(conn: SalesforceConnection, obj: str, field: str) -> bool | None:
    """True/False when ``obj`` is described and has/lacks ``field``; None when ``obj`` cannot be
    described (it does not exist, or the integration user cannot see it)."""
    try:
        described = conn.schema.object(conn, obj)
    except Exception:  # noqa: BLE001 - any describe failure means "cannot tell"
        return None
    return described.field(field) is not None


literal = soql.literal
in_list = soql.in_list
