"""Writing records: insert (``batch/create``), update by id (``batch/update``), delete by id
(``batch/archive``) and upsert on any field (one search per batch for the existing records,
then an update and a create).

ExampleCRM answers a batch in any order, so every input carries its PushItem key as
``objectWriteTraceId`` and results are matched back by that key, never by position. Batches
are split to ``MAX_BATCH``. A refused record gets its own failure and never fails the rest;
a call that fails transiently (429, 5xx, network) fails only its own items, as retryable:
written or not, the engine retries them, and an upsert retried looks for the record again
first, so a write whose answer was lost is never made twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import attrs
from eventsync.errors import FatalError, RemoteError, RetryableError
from eventsync.models import PushItem, PushRequest, PushResult, RemoteFailure

from .client import ExampleConnection, call
from .pull import ID_NAMES, search_pages
from .settings import MAX_BATCH

#: Error categories of ExampleCRM worth retrying when they concern one record.
RETRYABLE = frozenset({"RATE_LIMITS", "LOCKED"})


def push(conn: ExampleConnection, request: PushRequest) -> list[PushResult]:
    """Write the batch; one result per item, in request order."""
    items = list(request.items)
    if request.operation == "insert":
        results = write(conn, request.object, "create", items)
    elif request.operation == "update":
        results = write(conn, request.object, "update", [i for i in items if i.id])
        results.update(
            (i.key, _failed(i, "MISSING_ID", "update needs the record id"))
            for i in items
            if not i.id
        )
    elif request.operation == "upsert" and request.match_key:
        results = _upsert(conn, request.object, request.match_key, items)
    elif request.operation == "delete":
        results = _archive(conn, request.object, items)
    else:
        raise FatalError(
            "UNSUPPORTED_OPERATION",
            f"examplecrm cannot {request.operation} (insert, update, delete and upsert with a "
            "match_key are supported)",
            system="examplecrm",
        )
    return [results[item.key] for item in items]


def write(
    conn: ExampleConnection, obj: str, action: str, items: Sequence[PushItem]
) -> dict[str, PushResult]:
    """``batch/create`` or ``batch/update`` in calls of at most MAX_BATCH; results by key."""
    results: dict[str, PushResult] = {}
    for chunk in _chunks(items):
        inputs = [_input(item, action) for item in chunk]
        try:
            answer = call(conn, "POST", f"/v1/objects/{obj}/batch/{action}", {"inputs": inputs})
        except RemoteError as exc:
            retryable = isinstance(exc, RetryableError)
            results.update((i.key, _failed(i, exc.code, exc.message, retryable)) for i in chunk)
            continue
        results.update(_answered(chunk, answer, created=action == "create"))
    return results


def _answered(
    chunk: Sequence[PushItem], answer: dict[str, Any], *, created: bool
) -> dict[str, PushResult]:
    """Results matched to items by ``objectWriteTraceId``; an item left unanswered is a
    retryable failure (the engine retries it)."""
    by_key = {item.key: item for item in chunk}
    results: dict[str, PushResult] = {}
    for row in answer.get("results", ()):
        key = row["objectWriteTraceId"]
        results[key] = PushResult(key, ok=True, id=str(row["id"]), created=created)
    for error in answer.get("errors", ()):
        context = error.get("context", {})
        category = str(error.get("category", "UNKNOWN"))
        for key in context.get("objectWriteTraceId", ()):
            results[key] = PushResult(
                key,
                ok=False,
                id=by_key[key].id,
                error=RemoteFailure(
                    category,
                    str(error.get("message", "")),
                    tuple(context.get("properties", ())),
                    retryable=category in RETRYABLE,
                ),
            )
    for key, item in by_key.items():
        if key not in results:
            results[key] = _failed(item, "NO_RESULT", "ExampleCRM gave no answer", True)
    return results


def _upsert(
    conn: ExampleConnection, obj: str, match_key: str, items: Sequence[PushItem]
) -> dict[str, PushResult]:
    """Per chunk: one search for the records whose ``match_key`` is among the chunk's values,
    then an update of those found and a create of the rest."""
    results: dict[str, PushResult] = {}
    for chunk in _chunks(items):
        values = sorted({str(v) for i in chunk if (v := i.fields.get(match_key)) not in (None, "")})
        try:
            found = _existing(conn, obj, match_key, values)
        except RemoteError as exc:
            retryable = isinstance(exc, RetryableError)
            results.update((i.key, _failed(i, exc.code, exc.message, retryable)) for i in chunk)
            continue
        updates, creates = [], []
        for item in chunk:
            matches = found.get(str(item.fields.get(match_key, "")).lower(), [])
            if len(matches) > 1:
                results[item.key] = _failed(
                    item,
                    "MULTIPLE_MATCHES",
                    f"{len(matches)} {obj} records have {match_key} = "
                    f"{item.fields.get(match_key)!r}: {', '.join(matches)}",
                )
            elif matches:
                updates.append(attrs.evolve(item, id=matches[0]))
            else:
                creates.append(item)
        results.update(write(conn, obj, "update", updates))
        results.update(write(conn, obj, "create", creates))
    return results


def _existing(
    conn: ExampleConnection, obj: str, field: str, values: list[str]
) -> dict[str, list[str]]:
    """Lower-cased ``field`` value -> ids of the records holding it (one search, paged)."""
    if not values:
        return {}
    body = {
        "filters": [{"propertyName": field, "operator": "IN", "values": values}],
        "properties": [field],
        "limit": 100,
    }
    found: dict[str, list[str]] = {}
    for record in search_pages(conn, obj, body):
        value = record.get(field)
        if value is not None and record.id:
            found.setdefault(str(value).lower(), []).append(record.id)
    return found


def _input(item: PushItem, action: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "properties": {k: v for k, v in item.fields.items() if k not in ID_NAMES},
        "objectWriteTraceId": item.key,
    }
    if action == "update":
        body["id"] = item.id
    return body


def _archive(conn: ExampleConnection, obj: str, items: Sequence[PushItem]) -> dict[str, PushResult]:
    """``batch/archive`` by id, in calls of at most MAX_BATCH. ExampleCRM answers 204 for the
    whole call, archiving an id again included, so every item of a call shares its outcome."""
    results = {
        i.key: _failed(i, "MISSING_ID", "delete needs the record id") for i in items if not i.id
    }
    for chunk in _chunks([i for i in items if i.id]):
        try:
            call(
                conn,
                "POST",
                f"/v1/objects/{obj}/batch/archive",
                {"inputs": [{"id": i.id} for i in chunk]},
            )
        except RemoteError as exc:
            retryable = isinstance(exc, RetryableError)
            results.update((i.key, _failed(i, exc.code, exc.message, retryable)) for i in chunk)
            continue
        results.update((i.key, PushResult(i.key, ok=True, id=i.id)) for i in chunk)
    return results


def _failed(item: PushItem, code: str, message: str, retryable: bool = False) -> PushResult:
    return PushResult(
        item.key, ok=False, id=item.id, error=RemoteFailure(code, message, retryable=retryable)
    )


def _chunks(items: Sequence[PushItem]) -> Iterator[list[PushItem]]:
    for start in range(0, len(items), MAX_BATCH):
        yield list(items[start : start + MAX_BATCH])
