"""Writing records: sObject Collections in calls of up to 200 records, allOrNone false.

* insert: ``POST composite/sobjects``; update: ``PATCH composite/sobjects``;
  delete: ``DELETE composite/sobjects?ids=``.
* upsert on an external-id field: ``PATCH composite/sobjects/{Object}/{Field}``.
* upsert on any other field (Email ...): one ``IN`` query per batch finds the matches, then
  one create and one update call.
* more items than ``bulk_threshold`` (default 10,000): Bulk API 2.0 (:mod:`.bulk`).

Per-record failures become PushResults with Salesforce's statusCode, message and fields;
retryable ones (UNABLE_TO_LOCK_ROW ...) are retried in place up to ``max_retries`` times.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from eventsync.errors import FatalError
from eventsync.models import ObjectSchema, PushItem, PushRequest, PushResult, RemoteFailure

from . import bulk, convert, errors, soql

if TYPE_CHECKING:
    from .connection import SalesforceConnection

Batch = list[tuple[int, PushItem]]


def push(conn: SalesforceConnection, request: PushRequest) -> list[PushResult]:
    """Write the batch; one result per item, in request order."""
    if not request.items:
        return []
    schema = conn.schema.object(conn, request.object)
    if len(request.items) > conn.bulk_threshold and request.operation != "delete":
        return bulk.push(conn, schema, request)
    results: list[PushResult | None] = [None] * len(request.items)
    indexed = list(enumerate(request.items))
    for start in range(0, len(indexed), conn.batch_size):
        chunk = indexed[start : start + conn.batch_size]
        _push_chunk(conn, schema, request, chunk, results)
    return [
        result
        if result is not None
        else PushResult(
            key=item.key,
            ok=False,
            error=RemoteFailure(
                "NO_RESULT", "Salesforce returned no result for this record", (), True
            ),
        )
        for result, item in zip(results, request.items, strict=True)
    ]


def _push_chunk(
    conn: SalesforceConnection,
    schema: ObjectSchema,
    request: PushRequest,
    chunk: Batch,
    results: list[PushResult | None],
) -> None:
    operation = request.operation
    if operation == "upsert":
        key = schema.field(request.match_key or "")
        if key is None:
            raise FatalError(
                "INVALID_FIELD",
                f"{schema.name} has no field {request.match_key!r} to match on",
                system=errors.SYSTEM,
            )
        if key.external_id or key.name == "Id":
            _collection(conn, schema, "upsert", chunk, results, key.name)
            return
        creates, updates = _match(conn, schema, key.name, chunk, results)
        _collection(conn, schema, "update", updates, results)
        _create_exactly_once(conn, schema, key.name, creates, results)
        return
    _collection(conn, schema, operation, chunk, results)


def _match(
    conn: SalesforceConnection,
    schema: ObjectSchema,
    key: str,
    chunk: Batch,
    results: list[PushResult | None],
) -> tuple[Batch, Batch]:
    """One IN query for the chunk's key values; splits it into creates and updates."""
    values = sorted(
        {str(item.fields.get(key)) for _, item in chunk if item.fields.get(key) not in (None, "")}
    )
    found: dict[str, list[str]] = {}
    if values:
        statement = (
            f"SELECT Id, {soql.name(key)} FROM {soql.name(schema.name)} "
            f"WHERE {soql.name(key)} IN {soql.in_list(values)}"
        )
        page = conn.call("match query", lambda: conn.sf.query(statement))
        while True:
            for row in page.get("records", ()):
                if row.get(key) is not None:
                    found.setdefault(str(row[key]).lower(), []).append(row["Id"])
            if page.get("done", True):
                break
            next_url = page["nextRecordsUrl"]
            page = conn.call(
                "match queryMore",
                functools.partial(conn.sf.query_more, next_url, identifier_is_url=True),
            )
    creates: Batch = []
    updates: Batch = []
    for index, item in chunk:
        value = item.fields.get(key)
        matches = found.get(str(value).lower(), []) if value not in (None, "") else []
        if len(matches) > 1:
            results[index] = PushResult(
                key=item.key,
                ok=False,
                error=RemoteFailure(
                    "MULTIPLE_MATCHES",
                    f"{len(matches)} {schema.name} records have {key} = "
                    f"{value!r}: {', '.join(matches)}; merge them or match on a unique field",
                    (key,),
                ),
            )
        elif matches:
            updates.append((index, PushItem(item.key, item.fields, matches[0])))
        else:
            creates.append((index, item))
    return creates, updates


def _wire(schema_name: str, item: PushItem, with_id: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"attributes": {"type": schema_name}}
    body.update(
        {
            k: convert.to_wire(v)
            for k, v in item.fields.items()
            if k not in ("Id", "id", "attributes")
        }
    )
    if with_id:
        body["id"] = item.id
    return body


def _caller(
    conn: SalesforceConnection, schema: ObjectSchema, operation: str, key: str | None
) -> Callable[[Batch], Any]:
    def call(batch: Batch) -> Any:
        if operation == "delete":
            ids = ",".join(item.id or "" for _, item in batch)
            return conn.restful(
                "composite/sobjects", method="DELETE", params={"ids": ids, "allOrNone": "false"}
            )
        records = [_wire(schema.name, item, operation == "update") for _, item in batch]
        body = {"allOrNone": False, "records": records}
        if operation == "insert":
            # Not resent blindly when the answer is lost: _collection reconciles first.
            return conn.restful("composite/sobjects", method="POST", json=body, idempotent=False)
        if operation == "update":
            return conn.restful("composite/sobjects", method="PATCH", json=body)
        for record, (_, item) in zip(records, batch, strict=True):
            record[str(key)] = convert.to_wire(item.fields.get(str(key)))
        return conn.restful(f"composite/sobjects/{schema.name}/{key}", method="PATCH", json=body)

    return call


def _collection(
    conn: SalesforceConnection,
    schema: ObjectSchema,
    operation: str,
    batch: Batch,
    results: list[PushResult | None],
    key: str | None = None,
) -> None:
    """One Collections call (plus in-place retries of retryable records)."""
    if not batch:
        return
    if operation in ("update", "delete"):
        missing = [(i, item) for i, item in batch if not item.id]
        for index, item in missing:
            results[index] = PushResult(
                key=item.key,
                ok=False,
                error=RemoteFailure(
                    "MISSING_ARGUMENT", f"{operation} needs the record id", ("Id",)
                ),
            )
        batch = [(i, item) for i, item in batch if item.id]
    call = _caller(conn, schema, operation, key)
    attempt = 0
    pending = batch
    while pending:
        try:
            answer = call(pending)
        except FatalError as exc:
            if exc.code == "INVALID_FIELD":
                conn.schema.invalidate(schema.name)
            failure = RemoteFailure(exc.code, exc.message, exc.fields, False)
            for index, item in pending:
                results[index] = PushResult(key=item.key, ok=False, error=failure)
            return
        retry: Batch = []
        for (index, item), outcome in zip(pending, answer or [], strict=False):
            result = _result(item, outcome, operation)
            if result.retryable and attempt < conn.max_retries:
                retry.append((index, item))
            results[index] = result
        if not retry:
            return
        conn.sleep(attempt)
        attempt += 1
        pending = retry


def _create_exactly_once(
    conn: SalesforceConnection,
    schema: ObjectSchema,
    key: str,
    creates: Batch,
    results: list[PushResult | None],
) -> None:
    """Insert ``creates``; when an insert's answer is lost, look the records up by ``key``
    before inserting again: those found were created (adopted and updated), the rest are
    inserted. Bounded by ``max_retries``; after that the items are retryable failures, and
    the next attempt of the batch looks them up again through the match query."""
    attempt = 0
    pending = creates
    while pending:
        try:
            _collection(conn, schema, "insert", pending, results)
            return
        except errors.OutcomeUnknown as exc:
            if attempt >= conn.max_retries:
                failure = RemoteFailure(exc.code, exc.message, (), True)
                for index, item in pending:
                    results[index] = PushResult(key=item.key, ok=False, error=failure)
                return
            conn.sleep(attempt)
            attempt += 1
            pending, found = _match(conn, schema, key, pending, results)
            _collection(conn, schema, "update", found, results)


def _result(item: PushItem, outcome: dict[str, Any], operation: str) -> PushResult:
    if outcome.get("success"):
        created = bool(outcome["created"]) if "created" in outcome else operation == "insert"
        return PushResult(
            key=item.key,
            ok=True,
            id=outcome.get("id") or item.id,
            created=created,
            returned={"id": outcome.get("id")},
        )
    first = (outcome.get("errors") or [{}])[0]
    code = str(first.get("statusCode") or "UNKNOWN")
    return PushResult(
        key=item.key,
        ok=False,
        id=outcome.get("id") or item.id,
        error=RemoteFailure(
            code,
            str(first.get("message", "")),
            tuple(first.get("fields") or ()),
            errors.is_retryable_code(code),
        ),
    )
