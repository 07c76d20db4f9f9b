"""Attendance through the Reports API: create a report, poll it, download and parse the file.

Documented by Hopin: the routes ``POST /v1/events/{id}/reports/{reportType}``,
``GET /v1/reports/{id}`` and ``GET /v1/reports/{id}/download``. Assumed and configurable:
the report type (``report_type``), the status attribute and values
(``report_status_attribute``, ``report_ready_status``, ``report_failed_status``), the CSV
format and its columns (``report_columns``, a check-in time column among them).
"""

from __future__ import annotations

import csv
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from eventsync import backoff
from eventsync.errors import FatalError, RetryableError
from eventsync.models import Record

from .auth import HopinConnection
from .convert import SYSTEM, parse_resource, parse_time


def request_report(connection: HopinConnection, event_id: str) -> str:
    """Create the report and wait until it is ready; returns its download URL or path."""
    options = connection.options
    body = {"data": {"type": "report", "attributes": {}}}
    created = parse_resource(
        connection.http.request(
            "POST", f"/v1/events/{event_id}/reports/{options.report_type}", json_body=body
        ).json()
    )
    deadline = time.monotonic() + options.report_timeout
    while True:
        report = parse_resource(connection.http.get_json(f"/v1/reports/{created.id}"))
        status = str(report.attributes.get(options.report_status_attribute, "")).lower()
        if status == options.report_ready_status.lower():
            url = report.attributes.get("downloadUrl") or report.attributes.get("url")
            return str(url) if url else f"/v1/reports/{created.id}/download"
        if status == options.report_failed_status.lower():
            raise FatalError(
                "REPORT_FAILED",
                f"report {created.id} ({options.report_type}) failed: {dict(report.attributes)}",
                system=SYSTEM,
            )
        if time.monotonic() > deadline:
            raise RetryableError(
                "REPORT_TIMEOUT",
                f"report {created.id} not ready after "
                f"{options.report_timeout}s (status {status!r})",
                system=SYSTEM,
            )
        backoff.wait(options.report_poll_interval)


def _convert(field: str, value: str) -> Any:
    if value == "":
        return None
    if field in ("joinedAt", "leftAt", "checkedInAt"):
        return parse_time(value)
    if field == "durationSeconds":
        return int(float(value))
    if field == "sessions":
        return [part.strip() for part in value.split(";") if part.strip()]
    return value


def attendance(connection: HopinConnection, event_id: str) -> Iterator[Record]:
    """One ``attendance`` Record per report row, streamed from the download."""
    options = connection.options
    url = request_report(connection, event_id)
    full = connection.http.url(url)
    same_host = urlsplit(full).netloc == urlsplit(connection.http.base_url).netloc
    response = connection.http.request("GET", full, stream=True, authorize=same_host)
    response.encoding = "utf-8-sig"
    try:
        lines = (
            line if isinstance(line, str) else line.decode("utf-8-sig")
            for line in response.iter_lines(decode_unicode=True)
        )
        reader = csv.DictReader(lines)
        missing = [h for h in options.report_columns.values() if h not in (reader.fieldnames or [])]
        if "Email" in missing or options.report_columns.get("email") in missing:
            raise FatalError(
                "REPORT_COLUMNS",
                f"report lacks columns {missing}; got {reader.fieldnames} (set report_columns)",
                system=SYSTEM,
            )
        by_header = {header: field for field, header in options.report_columns.items()}
        for row in reader:
            fields: dict[str, Any] = {}
            for header, value in row.items():
                if header is None:
                    continue
                field = by_header.get(header, header)
                fields[field] = _convert(field, value or "")
            fields["eventId"] = event_id
            record_id = fields.get("registrationId") or fields.get("email")
            yield Record(
                system=SYSTEM,
                object="attendance",
                id=record_id,
                fields=fields,
                modified_at=fields.get("leftAt") or fields.get("checkedInAt"),
            )
    finally:
        response.close()
