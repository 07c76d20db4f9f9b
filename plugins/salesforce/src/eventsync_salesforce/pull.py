"""Reading records: SOQL from a PullRequest, streamed page by page.

Pages are fetched with ``query``/``queryAll`` and ``query_more`` (the calls simple-salesforce's
``query_all_iter`` makes) so that each page gets its own retries and session renewal; only
one page is held in memory at a time.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator
from typing import TYPE_CHECKING

from eventsync.errors import FatalError
from eventsync.models import ObjectSchema, PullRequest, Record

from . import convert, soql

if TYPE_CHECKING:
    from .connection import SalesforceConnection

ID_CHUNK = 200


def select_fields(schema: ObjectSchema, request: PullRequest) -> list[str]:
    """The fields to select: the requested ones (or all) plus Id, SystemModstamp, IsDeleted."""
    if request.ids_only:
        fields = []
    else:
        fields = list(request.fields) or [f.name for f in schema.fields if f.type != "json"]
    for extra in ("Id", "SystemModstamp"):
        if schema.field(extra) is not None and extra not in fields:
            fields.append(extra)
    if (
        request.include_deleted
        and schema.field("IsDeleted") is not None
        and "IsDeleted" not in fields
    ):
        fields.append("IsDeleted")
    return [soql.name(f) for f in fields]


def build(schema: ObjectSchema, request: PullRequest, ids: list[str] | None = None) -> str:
    """The SOQL statement for a request (``ids``: one chunk of the requested ids)."""
    terms = [soql.condition(item) for item in request.filters]
    if ids:
        terms.append(f"Id IN {soql.in_list(ids)}")
    ordered = request.since is not None or not ids
    if request.since is not None:
        since = request.since.timestamp
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.UTC)
        if request.overlap:
            terms.append(
                f"SystemModstamp >= {soql.literal(since - dt.timedelta(seconds=request.overlap))}"
            )
        elif request.since.id:
            stamp = soql.literal(since)
            terms.append(
                f"SystemModstamp > {stamp} OR (SystemModstamp = {stamp} AND "
                f"Id > {soql.literal(request.since.id)})"
            )
        else:
            terms.append(f"SystemModstamp > {soql.literal(since)}")
    text = f"SELECT {', '.join(select_fields(schema, request))} FROM {soql.name(schema.name)}"
    if terms:
        text += " WHERE " + " AND ".join(f"({t})" if " OR " in t else t for t in terms)
    if ordered and schema.field("SystemModstamp") is not None:
        text += " ORDER BY SystemModstamp ASC, Id ASC"
    if request.limit is not None:
        text += f" LIMIT {int(request.limit)}"
    return text


def _parents(
    conn: SalesforceConnection, schema: ObjectSchema, fields: list[str]
) -> dict[str, ObjectSchema]:
    parents: dict[str, ObjectSchema] = {}
    for path in fields:
        if "." not in path:
            continue
        relation = schema.relationship(path.split(".", 1)[0])
        if relation is None or not relation.reference_to or not relation.relationship_name:
            continue
        key = relation.relationship_name.lower()
        if key not in parents:
            try:
                parents[key] = conn.schema.object(conn, relation.reference_to[0])
            except Exception:  # noqa: BLE001 - parent typing is best effort
                continue
    return parents


def pull(conn: SalesforceConnection, request: PullRequest) -> Iterator[Record]:
    """Stream the records of ``request``."""
    schema = conn.schema.object(conn, request.object)
    fields = select_fields(schema, request)
    parents = _parents(conn, schema, fields)
    if request.ids:
        chunks = [list(request.ids[i : i + ID_CHUNK]) for i in range(0, len(request.ids), ID_CHUNK)]
        statements = [build(schema, request, chunk) for chunk in chunks]
    else:
        statements = [build(schema, request)]
    headers = {}
    if request.page_size:
        headers["Sforce-Query-Options"] = f"batchSize={int(request.page_size)}"
    for statement in statements:
        yield from _stream(conn, schema, statement, request, headers, parents)


def _stream(
    conn: SalesforceConnection,
    schema: ObjectSchema,
    statement: str,
    request: PullRequest,
    headers: dict[str, str],
    parents: dict[str, ObjectSchema],
) -> Iterator[Record]:
    try:
        page = conn.call(
            "query",
            lambda: conn.sf.query(
                statement, include_deleted=request.include_deleted, headers=headers
            ),
        )
    except FatalError as exc:
        if exc.code == "INVALID_FIELD":
            conn.schema.invalidate(schema.name)
        raise
    while True:
        for row in page.get("records", ()):
            yield convert.record(schema, schema.name, row, parents)
        if page.get("done", True):
            return
        next_url = page["nextRecordsUrl"]
        page = conn.call(
            "queryMore",
            functools.partial(
                conn.sf.query_more, next_url, identifier_is_url=True, headers=headers
            ),
        )
