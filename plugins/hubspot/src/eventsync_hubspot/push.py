"""Writing records: insert (``batch/create``), update by id (``batch/update``) and upsert
(``batch/upsert`` with ``idProperty`` when the match key is unique, such as a contact's email;
otherwise one search per batch for the existing records, then an update and a create).

HubSpot answers a batch in any order, so every input carries its PushItem key as
``objectWriteTraceId`` and results are matched back by it (an upsert's also by its id value,
an update's by id), never by position. HubSpot refuses a whole batch (400, 409) for one bad
input: the batch is then split in halves and each half sent again, down to the one record
that is refused, which alone gets the failure with HubSpot's category and message. A call that
fails transiently (429, 5xx, network) fails its own items as retryable: written or not, the
engine retries them, and an upsert retried finds the record by its key, so a write whose answer
was lost is never made twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import attrs
from eventsync.errors import FatalError, RetryableError
from eventsync.models import Filter, PullRequest, PushItem, PushRequest, PushResult, RemoteFailure

from .client import HubSpotConnection, HubSpotRefusal, call
from .pull import ID_NAMES, pull, wire_value
from .schema import is_unique
from .settings import MAX_BATCH, SYSTEM

#: Error categories worth retrying when HubSpot reports them for some inputs of a batch.
RETRYABLE = frozenset({"RATE_LIMITS", "LOCKED", "INTERNAL_ERROR", "TIMEOUT"})
#: Whole-batch refusals that one bad input causes: split the batch to find it.
SPLIT_STATUSES = frozenset({400, 409})

Results = dict[str, PushResult]


def push(conn: HubSpotConnection, request: PushRequest) -> list[PushResult]:
    """Write the batch; one result per item, in request order."""
    items = list(request.items)
    obj = request.object
    if request.operation == "insert":
        results = write(conn, obj, "create", items)
    elif request.operation == "update":
        results = write(conn, obj, "update", [i for i in items if i.id])
        results.update(
            (i.key, failed(i, "MISSING_ID", "update needs the record id"))
            for i in items
            if not i.id
        )
    elif request.operation == "upsert" and request.match_key:
        if is_unique(conn, obj, request.match_key):
            results = _upsert(conn, obj, request.match_key, items)
        else:
            results = _upsert_by_search(conn, obj, request.match_key, items)
    else:
        raise FatalError(
            "UNSUPPORTED_OPERATION",
            f"hubspot cannot {request.operation} (insert, update and upsert with a match_key "
            "are supported)",
            system=SYSTEM,
        )
    return [results[item.key] for item in items]


def write(conn: HubSpotConnection, obj: str, action: str, items: Sequence[PushItem]) -> Results:
    """``batch/create`` or ``batch/update`` in calls of at most MAX_BATCH; results by key."""
    results: Results = {}
    for chunk in chunks(items):
        results.update(
            isolating(conn, obj, action, chunk, lambda item: _input(item, action == "update"))
        )
    return results


def isolating(
    conn: HubSpotConnection,
    obj: str,
    action: str,
    chunk: list[PushItem],
    input_of: Callable[[PushItem], dict[str, Any]],
    match_key: str | None = None,
) -> Results:
    """One batch call; a whole-batch refusal is split until the bad inputs stand alone."""
    if not chunk:
        return {}
    try:
        answer = call(
            conn,
            "POST",
            f"/crm/v3/objects/{obj}/batch/{action}",
            {"inputs": [input_of(i) for i in chunk]},
        )
    except HubSpotRefusal as exc:
        if len(chunk) > 1 and exc.status in SPLIT_STATUSES:
            half = len(chunk) // 2
            return {
                **isolating(conn, obj, action, chunk[:half], input_of, match_key),
                **isolating(conn, obj, action, chunk[half:], input_of, match_key),
            }
        fields = refused_fields(exc.body)
        return {i.key: failed(i, exc.code, exc.message, fields=fields) for i in chunk}
    except RetryableError as exc:
        return {i.key: failed(i, exc.code, exc.message, retryable=True) for i in chunk}
    return answered(chunk, answer, action, match_key)


def answered(
    chunk: Sequence[PushItem], answer: dict[str, Any], action: str, match_key: str | None
) -> Results:
    """Results matched to items by ``objectWriteTraceId`` (else by id or match value); an
    item left unanswered is a retryable failure (the engine retries it)."""
    by_key = {item.key: item for item in chunk}
    by_id = {str(item.id): item.key for item in chunk if item.id}
    by_value = {
        str(v).lower(): item.key
        for item in chunk
        if match_key and (v := item.fields.get(match_key)) not in (None, "")
    }

    def key_of(row: dict[str, Any]) -> str | None:
        trace = row.get("objectWriteTraceId")
        if trace in by_key:
            return str(trace)
        if action == "update" and str(row.get("id")) in by_id:
            return by_id[str(row.get("id"))]
        value = (row.get("properties") or {}).get(match_key) if match_key else None
        return by_value.get(str(value).lower()) if value is not None else None

    results: Results = {}
    for row in answer.get("results", ()):
        key = key_of(row)
        if key is None:
            continue
        created = bool(row.get("new")) if action == "upsert" else action == "create"
        results[key] = PushResult(key, ok=True, id=str(row["id"]), created=created)
    for error in answer.get("errors", ()):
        context = error.get("context") or {}
        category = str(error.get("category") or "UNKNOWN")
        keys = [str(k) for k in context.get("objectWriteTraceId", ()) if k in by_key]
        keys += [by_id[str(i)] for i in context.get("ids", ()) if str(i) in by_id]
        for key in keys:
            results[key] = failed(
                by_key[key],
                category,
                str(error.get("message") or ""),
                fields=tuple(context.get("propertyName", ())),
                retryable=category in RETRYABLE,
            )
    for key, item in by_key.items():
        if key not in results:
            results[key] = failed(item, "NO_RESULT", "HubSpot gave no answer for it", True)
    return results


def _upsert(
    conn: HubSpotConnection, obj: str, match_key: str, items: Sequence[PushItem]
) -> Results:
    """``batch/upsert`` keyed on ``match_key``; items without a value are created. A value
    given twice goes into separate calls (HubSpot refuses duplicate ids in one batch)."""
    results: Results = {}
    keyless = [i for i in items if i.fields.get(match_key) in (None, "")]
    results.update(write(conn, obj, "create", keyless))
    rounds: list[list[PushItem]] = []
    for item in (i for i in items if i.fields.get(match_key) not in (None, "")):
        value = str(item.fields[match_key]).lower()
        for batch in rounds:
            if value not in {str(i.fields[match_key]).lower() for i in batch}:
                batch.append(item)
                break
        else:
            rounds.append([item])

    def input_of(item: PushItem) -> dict[str, Any]:
        return {
            "idProperty": match_key,
            "id": str(item.fields[match_key]),
            "properties": _properties(item),
            "objectWriteTraceId": item.key,
        }

    for batch in rounds:
        for chunk in chunks(batch):
            results.update(isolating(conn, obj, "upsert", chunk, input_of, match_key))
    return results


def _upsert_by_search(
    conn: HubSpotConnection, obj: str, match_key: str, items: Sequence[PushItem]
) -> Results:
    """For a match key that is not unique: one search per chunk for the records holding its
    values, then an update of those found and a create of the rest."""
    results: Results = {}
    for chunk in chunks(items):
        values = sorted({str(v) for i in chunk if (v := i.fields.get(match_key)) not in (None, "")})
        found: dict[str, list[str]] = {}
        try:
            if values:
                request = PullRequest(
                    obj, fields=(match_key,), filters=(Filter(match_key, "in", values),)
                )
                for record in pull(conn, request):
                    value = record.get(match_key)
                    if value is not None:
                        found.setdefault(str(value).lower(), []).append(str(record.id))
        except (RetryableError, FatalError) as exc:
            retryable = isinstance(exc, RetryableError)
            results.update((i.key, failed(i, exc.code, exc.message, retryable)) for i in chunk)
            continue
        updates, creates = [], []
        for item in chunk:
            matches = found.get(str(item.fields.get(match_key, "")).lower(), [])
            if len(matches) > 1:
                results[item.key] = failed(
                    item,
                    "MULTIPLE_MATCHES",
                    f"{len(matches)} {obj} records have {match_key} = "
                    f"{item.fields.get(match_key)!r}: {', '.join(matches)}",
                )
            elif matches:
                updates.append(attrs.evolve(item, id=matches[0]))
            else:
                creates.append(item)
        for key, result in write(conn, obj, "update", updates).items():
            results[key] = attrs.evolve(result, created=False)
        results.update(write(conn, obj, "create", creates))
    return results


def _properties(item: PushItem) -> dict[str, Any]:
    return {k: wire_value(v) for k, v in item.fields.items() if k not in ID_NAMES}


def _input(item: PushItem, with_id: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"properties": _properties(item), "objectWriteTraceId": item.key}
    if with_id:
        body["id"] = str(item.id)
    return body


def refused_fields(body: dict[str, Any]) -> tuple[str, ...]:
    """The property names a refusal's body names (``errors[].in`` / ``name``, ``context``)."""
    names = [
        str(e.get("in") or e.get("name"))
        for e in body.get("errors") or ()
        if isinstance(e, dict) and (e.get("in") or e.get("name"))
    ]
    names += [str(n) for n in (body.get("context") or {}).get("propertyName", ())]
    return tuple(dict.fromkeys(names))


def failed(
    item: PushItem,
    code: str,
    message: str,
    retryable: bool = False,
    fields: Sequence[str] = (),
) -> PushResult:
    """A refused item: HubSpot's category and message verbatim."""
    return PushResult(
        item.key,
        ok=False,
        id=item.id,
        error=RemoteFailure(code, message, tuple(fields), retryable=retryable),
    )


def chunks(items: Sequence[PushItem]) -> Iterator[list[PushItem]]:
    """Runs of at most MAX_BATCH items."""
    for start in range(0, len(items), MAX_BATCH):
        yield list(items[start : start + MAX_BATCH])
