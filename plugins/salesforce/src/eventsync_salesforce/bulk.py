"""Large pushes through Bulk API 2.0 (simple-salesforce ``bulk2``).

Results come back as two CSV files without request order; each row is matched back to its
item by the values of its own columns (identical rows are matched in order), so every item
still gets exactly one PushResult. Rows in neither file are reported retryable.
"""

from __future__ import annotations

import csv
import functools
import io
from collections import defaultdict, deque
from typing import TYPE_CHECKING, Any

from eventsync.models import ObjectSchema, PushRequest, PushResult, RemoteFailure

from . import convert, errors

if TYPE_CHECKING:
    from .connection import SalesforceConnection


def _cell(value: Any) -> str:
    wired = convert.to_wire(value)
    if wired is None:
        return "#N/A"
    if isinstance(wired, bool):
        return "true" if wired else "false"
    return str(wired)


def push(
    conn: SalesforceConnection, schema: ObjectSchema, request: PushRequest
) -> list[PushResult]:
    """Run one Bulk 2.0 ingest job for the request."""
    columns: list[str] = []
    for item in request.items:
        for name in item.fields:
            if name not in columns and name not in ("Id", "attributes"):
                columns.append(name)
    if request.operation == "update":
        columns = ["Id", *columns]
    rows = []
    for item in request.items:
        row = {
            name: _cell(item.fields.get(name)) if name in item.fields else ""
            for name in columns
            if name != "Id"
        }
        if request.operation == "update":
            row["Id"] = item.id or ""
        rows.append(row)
    operation = request.operation
    kwargs: dict[str, Any] = {"records": rows, "wait": conn.bulk_wait}
    if operation == "upsert":
        kwargs["external_id_field"] = request.match_key or "Id"

    def run() -> Any:
        handler = getattr(conn.sf.bulk2, schema.name)
        return getattr(handler, operation)(**kwargs)

    jobs = conn.call("bulk2", run)
    waiting: dict[tuple[str, ...], deque[int]] = defaultdict(deque)
    for index, row in enumerate(rows):
        waiting[tuple(row[c] for c in columns)].append(index)
    results: list[PushResult | None] = [None] * len(rows)
    for job in jobs:
        handler = getattr(conn.sf.bulk2, schema.name)
        ok_csv = conn.call(
            "bulk2 results", functools.partial(handler.get_successful_records, job["job_id"])
        )
        failed_csv = conn.call(
            "bulk2 failures", functools.partial(handler.get_failed_records, job["job_id"])
        )
        for line in csv.DictReader(io.StringIO(ok_csv)):
            taken = _take(waiting, line, columns)
            if taken is not None:
                item = request.items[taken]
                results[taken] = PushResult(
                    key=item.key,
                    ok=True,
                    id=line["sf__Id"],
                    created=line.get("sf__Created") == "true",
                    returned={"id": line["sf__Id"]},
                )
        for line in csv.DictReader(io.StringIO(failed_csv)):
            taken = _take(waiting, line, columns)
            if taken is not None:
                item = request.items[taken]
                code, _, rest = line.get("sf__Error", "").partition(":")
                message, _, fields = rest.rpartition(":")
                results[taken] = PushResult(
                    key=item.key,
                    ok=False,
                    error=RemoteFailure(
                        code,
                        message or rest,
                        tuple(f for f in fields.replace(" --", "").split(",") if f),
                        errors.is_retryable_code(code),
                    ),
                )
    return [
        result
        if result is not None
        else PushResult(
            key=item.key,
            ok=False,
            error=RemoteFailure("UNPROCESSED", "Bulk API did not process this record", (), True),
        )
        for result, item in zip(results, request.items, strict=True)
    ]


def _take(
    waiting: dict[tuple[str, ...], deque[int]], line: dict[str, str], columns: list[str]
) -> int | None:
    queue = waiting.get(tuple(line.get(c, "") for c in columns))
    return queue.popleft() if queue else None
