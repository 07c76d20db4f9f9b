"""Reports: what ``GET /v1/reports/{id}/download`` returns.

Hopin documents only the routes (create for an event and a report type, poll, download). The
report types, the status values and the file format are assumptions: report type
``attendance`` produces a CSV with one row per registration that attended, columns
``Registration ID, Email, First Name, Last Name, Ticket ID, Join Time, Leave Time,
Duration (seconds), Sessions`` (sessions joined by ``; ``). Status goes ``pending`` ->
``completed`` once ``ready_after`` seconds have passed since creation.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from typing import Any

from .ids import iso, parse_iso
from .store import Store

REPORT_TYPES = ("attendance", "registrations")

ATTENDANCE_COLUMNS = (
    "Registration ID",
    "Email",
    "First Name",
    "Last Name",
    "Ticket ID",
    "Join Time",
    "Leave Time",
    "Duration (seconds)",
    "Sessions",
)

REGISTRATION_COLUMNS = (
    "Registration ID",
    "Email",
    "First Name",
    "Last Name",
    "Ticket ID",
    "Refunded",
)


def attendance_rows(store: Store, event_id: str) -> list[dict[str, Any]]:
    """One row per attending registration: first join, last leave, summed duration, sessions."""
    visits: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in store.find("attendance", lambda a: a["attributes"]["eventId"] == event_id):
        visits[item["attributes"]["registrationId"]].append(item["attributes"])
    rows = []
    for registration_id, spans in visits.items():
        reg = store.get("registrations", registration_id)["attributes"]
        joins = [parse_iso(s["joinedAt"]) for s in spans]
        leaves = [parse_iso(s["leftAt"]) for s in spans]
        duration = sum(
            max(0.0, (lv - jn).total_seconds()) for jn, lv in zip(joins, leaves, strict=True)
        )
        sessions: list[str] = []
        for span in spans:
            if span["session"] not in sessions:
                sessions.append(span["session"])
        rows.append(
            {
                "Registration ID": registration_id,
                "Email": reg["email"],
                "First Name": reg["firstName"],
                "Last Name": reg["lastName"],
                "Ticket ID": reg["ticketId"],
                "Join Time": iso(min(joins)),
                "Leave Time": iso(max(leaves)),
                "Duration (seconds)": int(duration),
                "Sessions": "; ".join(sessions),
            }
        )
    rows.sort(key=lambda row: (row["Join Time"], row["Registration ID"]))
    return rows


def registration_rows(store: Store, event_id: str) -> list[dict[str, Any]]:
    """One row per registration of the event."""
    return [
        {
            "Registration ID": item["id"],
            "Email": item["attributes"]["email"],
            "First Name": item["attributes"]["firstName"],
            "Last Name": item["attributes"]["lastName"],
            "Ticket ID": item["attributes"]["ticketId"],
            "Refunded": str(bool(item["attributes"].get("refunded"))).lower(),
        }
        for item in store.find("registrations", lambda r: r["attributes"]["eventId"] == event_id)
    ]


def render_csv(store: Store, report_type: str, event_id: str) -> str:
    """The report file as CSV text."""
    columns: tuple[str, ...]
    if report_type == "attendance":
        columns, rows = ATTENDANCE_COLUMNS, attendance_rows(store, event_id)
    else:
        columns, rows = REGISTRATION_COLUMNS, registration_rows(store, event_id)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
