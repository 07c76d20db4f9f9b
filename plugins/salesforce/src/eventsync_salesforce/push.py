"""Writing records: sObject Collections in calls of up to 200 records, allOrNone false.

* insert: ``POST composite/sobjects``; update: ``PATCH composite/sobjects``;
  delete: ``DELETE composite/sobjects?ids=``.
* upsert on an external-id field: ``PATCH composite/sobjects/{Object}/{Field}``.
* upsert on any other field (Email ...): one ``IN`` query per batch finds the matches, then
  one create and one update call.
* more items than ``bulk_threshold`` (default 10,000): Bulk API 2.0 (:mod:`.bulk`).
* Composite packing (setting ``composite``, default on): when a push needs several Collections
  calls or several match queries (more than 200 records, or an upsert on Email that both
  updates and creates), they travel up to five in one Composite request, one API call
  (:mod:`.composite`). A subrequest failing inside it fails only its own records.

Per-record failures become PushResults with Salesforce's statusCode, message and fields;
retryable ones (UNABLE_TO_LOCK_ROW ...) are retried in place up to ``max_retries`` times.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from eventsync.errors import FatalError, RetryableError
from eventsync.models import (
    FieldSchema,
    ObjectSchema,
    PushItem,
    PushRequest,
    PushResult,
    RemoteFailure,
)

from . import bulk, convert, errors, soql
from .composite import Answer, Subrequest, send
from .parents import parents_locked

if TYPE_CHECKING:
    from .connection import SalesforceConnection

Batch = list[tuple[int, PushItem]]


def push(conn: SalesforceConnection, request: PushRequest) -> list[PushResult]:
    """Write the batch; one result per item, in request order. Writes of an object that locks
    its parent (CampaignMember) hold that parent's lock (``parents``: shared by every worker
    of a scale-out deployment, the connection's own in one process), so the organisation's
    parallel batches never collide on a parent lock (``UNABLE_TO_LOCK_ROW``)."""
    if not request.items:
        return []
    with parents_locked(conn, request):
        return _push(conn, request)


def _push(conn: SalesforceConnection, request: PushRequest) -> list[PushResult]:
    schema = conn.schema.object(conn, request.object)
    if len(request.items) > conn.bulk_threshold and request.operation != "delete":
        return bulk.push(conn, schema, request)
    results: list[PushResult | None] = [None] * len(request.items)
    chunks = _batches(list(enumerate(request.items)), conn.batch_size)
    if conn.composite and request.operation != "delete":
        _push_packed(conn, schema, request, chunks, results)
    else:
        for chunk in chunks:
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
        key = _match_field(schema, request)
        if key.external_id or key.name == "Id":
            _collection(conn, schema, "upsert", chunk, results, key.name)
            return
        creates, updates = _match(conn, schema, key.name, chunk, results)
        _collection(conn, schema, "update", updates, results)
        _create_exactly_once(conn, schema, key.name, creates, results)
        return
    _collection(conn, schema, operation, chunk, results)


def _match_field(schema: ObjectSchema, request: PushRequest) -> FieldSchema:
    """The upsert's match field; FatalError when the object has none by that name."""
    key = schema.field(request.match_key or "")
    if key is None:
        raise FatalError(
            "INVALID_FIELD",
            f"{schema.name} has no field {request.match_key!r} to match on",
            system=errors.SYSTEM,
        )
    return key


def _match(
    conn: SalesforceConnection,
    schema: ObjectSchema,
    key: str,
    chunk: Batch,
    results: list[PushResult | None],
) -> tuple[Batch, Batch]:
    """One IN query for the chunk's key values; splits it into creates and updates."""
    found: dict[str, list[str]] = {}
    statement = _match_statement(schema, key, chunk)
    if statement:
        page = conn.call("match query", lambda: conn.sf.query(statement))
        _collect_matches(conn, key, page, found)
    return _split(schema, key, chunk, found, results)


def _match_statement(schema: ObjectSchema, key: str, chunk: Batch) -> str | None:
    """The IN query finding the chunk's key values (None when no item has one)."""
    values = sorted(
        {str(item.fields.get(key)) for _, item in chunk if item.fields.get(key) not in (None, "")}
    )
    if not values:
        return None
    return (
        f"SELECT Id, {soql.name(key)} FROM {soql.name(schema.name)} "
        f"WHERE {soql.name(key)} IN {soql.in_list(values)}"
    )


def _collect_matches(
    conn: SalesforceConnection, key: str, page: Any, found: dict[str, list[str]]
) -> None:
    """Add a query answer's matches (every page of it) to ``found``, by lower-cased value."""
    while True:
        for row in page.get("records", ()):
            if row.get(key) is not None:
                found.setdefault(str(row[key]).lower(), []).append(row["Id"])
        if page.get("done", True):
            return
        next_url = page["nextRecordsUrl"]
        page = conn.call(
            "match queryMore",
            functools.partial(conn.sf.query_more, next_url, identifier_is_url=True),
        )


def _split(
    schema: ObjectSchema,
    key: str,
    chunk: Batch,
    found: dict[str, list[str]],
    results: list[PushResult | None],
) -> tuple[Batch, Batch]:
    """The chunk's creates and updates given the matches; several matches fail the item."""
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


def _subrequest(schema: ObjectSchema, operation: str, key: str | None, batch: Batch) -> Subrequest:
    """The Collections request writing ``batch`` (insert, update or upsert on ``key``)."""
    if operation == "delete":
        ids = ",".join(item.id or "" for _, item in batch)
        return Subrequest("DELETE", f"composite/sobjects?ids={ids}&allOrNone=false")
    records = [_wire(schema.name, item, operation == "update") for _, item in batch]
    body = {"allOrNone": False, "records": records}
    if operation == "insert":
        return Subrequest("POST", "composite/sobjects", body)
    if operation == "update":
        return Subrequest("PATCH", "composite/sobjects", body)
    for record, (_, item) in zip(records, batch, strict=True):
        record[str(key)] = convert.to_wire(item.fields.get(str(key)))
    return Subrequest("PATCH", f"composite/sobjects/{schema.name}/{key}", body)


def _caller(
    conn: SalesforceConnection, schema: ObjectSchema, operation: str, key: str | None
) -> Callable[[Batch], Any]:
    def call(batch: Batch) -> Any:
        if operation == "delete":
            ids = ",".join(item.id or "" for _, item in batch)
            return conn.restful(
                "composite/sobjects", method="DELETE", params={"ids": ids, "allOrNone": "false"}
            )
        sub = _subrequest(schema, operation, key, batch)
        # An insert is not resent blindly when its answer is lost: the caller reconciles first.
        return conn.restful(
            sub.path, method=sub.method, json=sub.body, idempotent=operation != "insert"
        )

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
            _fail_batch(conn, schema, pending, exc, results)
            return
        retry = _record_results(pending, answer, operation, results, attempt < conn.max_retries)
        if not retry:
            return
        conn.sleep(attempt)
        attempt += 1
        pending = retry


def _fail_batch(
    conn: SalesforceConnection,
    schema: ObjectSchema,
    batch: Batch,
    failure: RetryableError | FatalError,
    results: list[PushResult | None],
) -> None:
    """Every record of ``batch`` failed with the call's error (a missing field also drops the
    cached describe, so the next try sees the current schema)."""
    if failure.code == "INVALID_FIELD":
        conn.schema.invalidate(schema.name)
    remote = RemoteFailure(
        failure.code, failure.message, failure.fields, isinstance(failure, RetryableError)
    )
    for index, item in batch:
        results[index] = PushResult(key=item.key, ok=False, error=remote)


def _record_results(
    pending: Batch,
    answer: Any,
    operation: str,
    results: list[PushResult | None],
    may_retry: bool,
) -> Batch:
    """Store a Collections answer's per-record results; returns the records to retry."""
    retry: Batch = []
    for (index, item), outcome in zip(pending, answer or [], strict=False):
        result = _result(item, outcome, operation)
        if result.retryable and may_retry:
            retry.append((index, item))
        results[index] = result
    return retry


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


# --- Composite packing -------------------------------------------------------------------

Op = tuple[str, Batch, str | None]  # operation, its records, the upsert key


def _batches(items: list[Any], size: int) -> list[list[Any]]:
    return [items[start : start + size] for start in range(0, len(items), size)]


def _push_packed(
    conn: SalesforceConnection,
    schema: ObjectSchema,
    request: PushRequest,
    chunks: list[Batch],
    results: list[PushResult | None],
) -> None:
    """Like ``_push_chunk`` for every chunk, with the match queries and then the writes packed
    into Composite requests of up to five."""
    operation = request.operation
    if operation != "upsert":
        _write_packed(conn, schema, [(operation, chunk, None) for chunk in chunks], results)
        return
    key = _match_field(schema, request)
    if key.external_id or key.name == "Id":
        _write_packed(conn, schema, [("upsert", chunk, key.name) for chunk in chunks], results)
        return
    creates, updates = _match_packed(conn, schema, key.name, chunks, results)
    ops: list[Op] = [("update", batch, None) for batch in _batches(updates, conn.batch_size)]
    ops += [("insert", batch, None) for batch in _batches(creates, conn.batch_size)]
    _write_packed(conn, schema, ops, results, match_key=key.name)


def _match_packed(
    conn: SalesforceConnection,
    schema: ObjectSchema,
    key: str,
    chunks: list[Batch],
    results: list[PushResult | None],
) -> tuple[Batch, Batch]:
    """Every chunk's match query, five to a Composite request; all creates and updates."""
    statements = [st for chunk in chunks if (st := _match_statement(schema, key, chunk))]
    found: dict[str, list[str]] = {}
    if len(statements) == 1:
        page = conn.call("match query", lambda: conn.sf.query(statements[0]))
        _collect_matches(conn, key, page, found)
    elif statements:
        for answer in send(conn, [Subrequest.query(st) for st in statements]):
            if not answer.ok:
                raise _failure_of(answer, "match query")
            _collect_matches(conn, key, answer.body or {}, found)
    creates: Batch = []
    updates: Batch = []
    for chunk in chunks:
        more_creates, more_updates = _split(schema, key, chunk, found, results)
        creates += more_creates
        updates += more_updates
    return creates, updates


def _write_packed(
    conn: SalesforceConnection,
    schema: ObjectSchema,
    ops: list[Op],
    results: list[PushResult | None],
    match_key: str | None = None,
) -> None:
    """Run the Collections writes ``ops``, five to a Composite request; a single one is sent
    as it is. Retryable records and subrequests are retried (packed again) up to
    ``max_retries`` times. When a Composite answer carrying creates is lost, each of its
    writes is redone on its own: updates resent, creates looked up by ``match_key`` first."""
    ops = [op for op in ops if op[1]]
    attempt = 0
    while ops:
        if len(ops) == 1:
            operation, batch, key = ops[0]
            if operation == "insert" and match_key:
                _create_exactly_once(conn, schema, match_key, batch, results)
            else:
                _collection(conn, schema, operation, batch, results, key)
            return
        creating = any(op[0] == "insert" for op in ops)
        subrequests = [_subrequest(schema, op, key, batch) for op, batch, key in ops]
        try:
            answers = send(conn, subrequests, idempotent=not creating)
        except errors.OutcomeUnknown:
            for operation, batch, key in ops:
                if operation == "insert":
                    _reconcile_inserts(conn, schema, batch, results, match_key)
                else:
                    _collection(conn, schema, operation, batch, results, key)
            return
        may_retry = attempt < conn.max_retries
        again: list[Op] = []
        for (operation, batch, key), answer in zip(ops, answers, strict=True):
            if answer.ok:
                retry = _record_results(batch, answer.body, operation, results, may_retry)
                if retry:
                    again.append((operation, retry, key))
                continue
            failure = _failure_of(answer, f"{operation} {schema.name}")
            if operation == "insert" and answer.status >= 500:
                # The creates may have happened: look before creating again.
                _reconcile_inserts(conn, schema, batch, results, match_key)
                continue
            if isinstance(failure, RetryableError) and may_retry:
                again.append((operation, batch, key))
                continue
            _fail_batch(conn, schema, batch, failure, results)
        if not again:
            return
        conn.sleep(attempt)
        attempt += 1
        ops = again


def _reconcile_inserts(
    conn: SalesforceConnection,
    schema: ObjectSchema,
    batch: Batch,
    results: list[PushResult | None],
    match_key: str | None,
) -> None:
    """Creates whose outcome is unknown: those found by ``match_key`` were made (adopted and
    updated), the rest are created. Without a match key nothing can be looked up: the push
    fails with ``OutcomeUnknown``, as an unpacked insert does."""
    if not match_key:
        raise errors.OutcomeUnknown(
            "OUTCOME_UNKNOWN",
            f"insert {schema.name}: the answer was lost and there is no key to look the "
            "records up by",
            system=errors.SYSTEM,
        )
    creates, found = _match(conn, schema, match_key, batch, results)
    _collection(conn, schema, "update", found, results)
    _create_exactly_once(conn, schema, match_key, creates, results)


def _failure_of(answer: Answer, what: str) -> RetryableError | FatalError:
    """The taxonomy error of a failed subrequest (retryable: 429, 5xx, a retryable code)."""
    code, message, fields = errors.first_error(answer.body)
    if code == "UNKNOWN":
        code = f"HTTP_{answer.status}"
    text = f"{what}: {message or f'HTTP {answer.status}'}"
    if answer.status == 429 or answer.status >= 500 or errors.is_retryable_code(code):
        return RetryableError(code, text, system=errors.SYSTEM, fields=fields, status=answer.status)
    return FatalError(code, text, system=errors.SYSTEM, fields=fields, status=answer.status)
