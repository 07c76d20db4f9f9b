"""Reports: what ``GET /v1/reports/{id}/download`` returns.

Hopin documents only the routes (create for an event and a report type, poll, download). The
report types, the status values and the file format are assumptions: report type
``attendance`` produces a CSV with one row per registration that attended, columns
``Registration ID, Email, First Name, Last Name, Ticket ID, Join Time, Leave Time,
Duration (seconds), Sessions, Check-in Time`` (sessions joined by ``; ``); someone checked in
onsite who never joined online has a row with empty join and leave times (option
``report_check_ins = false`` leaves out the column and those rows). Status goes ``pending`` ->
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

#: The attendance report's column for onsite check-ins (when ``report_check_ins``).
CHECK_IN_COLUMN = "Check-in Time"

REGISTRATION_COLUMNS = (
    "Registration ID",
    "Email",
    "First Name",
    "Last Name",
    "Ticket ID",
    "Refunded",
)


def attendance_rows(store: Store, event_id: str, check_ins: bool = True) -> list[dict[str, Any]]:
    """One row per attending registration: first join, last leave, summed duration, sessions;
    with ``check_ins``, also each registration checked in onsite (never online: no join time)
    and its check-in time."""
    visits: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for item in store.find("attendance", lambda a: a["attributes"]["eventId"] == event_id):
        visits[item["attributes"]["registrationId"]].append(item["attributes"])
    if check_ins:
        for item in store.find(
            "registrations",
            lambda r: (
                r["attributes"]["eventId"] == event_id and bool(r["attributes"].get("checkedInAt"))
            ),
        ):
            visits.setdefault(item["id"], [])
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
        row = {
            "Registration ID": registration_id,
            "Email": reg["email"],
            "First Name": reg["firstName"],
            "Last Name": reg["lastName"],
            "Ticket ID": reg["ticketId"],
            "Join Time": iso(min(joins)) if joins else "",
            "Leave Time": iso(max(leaves)) if leaves else "",
            "Duration (seconds)": int(duration),
            "Sessions": "; ".join(sessions),
        }
        if check_ins:
            row[CHECK_IN_COLUMN] = reg.get("checkedInAt") or ""
        rows.append(row)
    rows.sort(
        key=lambda row: (row["Join Time"] or row.get(CHECK_IN_COLUMN, ""), row["Registration ID"])
    )
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


def render_csv(store: Store, report_type: str, event_id: str, check_ins: bool = True) -> str:
    """The report file as CSV text (``check_ins``: whether attendance lists onsite check-ins)."""
    columns: tuple[str, ...]
    if report_type == "attendance":
        columns = (*ATTENDANCE_COLUMNS, CHECK_IN_COLUMN) if check_ins else ATTENDANCE_COLUMNS
        rows = attendance_rows(store, event_id, check_ins)
    else:
        columns, rows = REGISTRATION_COLUMNS, registration_rows(store, event_id)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(columns), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
