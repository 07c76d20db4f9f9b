"""One entity's journey through the engine, from what the store recorded (``eventsync trace``).

A trace is a mapping of *sections*, each built from the store by one function of ``SECTIONS``:
``now`` (its row in the outbox, if any), ``dead_letter``, ``links`` (the target records it
became) and ``events``, the sync log of the entity oldest first: each mark with its trigger
(``notification``, ``poll``, ``due``, ``manual`` ...), each attempt's outcome and error, the
verdicts of ``admit_record`` (``denied``), and every write with its target record and the names
of the fields written (their values only when asked for: they are personal data). Another part
of the journey is a new entry of ``SECTIONS`` (and of ``eventsync.cli.trace_cmd.RENDERERS``
for the text form); docs/schemas/trace.schema.json describes the JSON.

The sync log keeps ``[engine] log_retention`` days, so older steps are gone from a trace.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from .store import LogEntry, StateStore

__all__ = ["TraceQuery", "SECTIONS", "build_trace", "Section"]


@attrs.frozen
class TraceQuery:
    """What a section is built for: the entity, and whether written values may be shown."""

    store: StateStore
    org: str
    flow: str
    entity: str
    values: bool = False
    limit: int = 1000


#: A section: the store's answer for one entity, as JSON-ready data (None: nothing recorded).
Section = Callable[[TraceQuery], Any]


def _time(at: dt.datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def _now(q: TraceQuery) -> dict[str, Any] | None:
    row = q.store.outbox_row(q.org, q.flow, q.entity)
    if row is None:
        return None
    return {
        "state": row["state"],
        "attempts": row["attempts"],
        "generation": row["generation"],
        "trigger": row["hint"],
        "marked_at": _time(row["marked_at"]),
        "due_at": _time(row["due_at"]),
        "last_error_code": row["last_error_code"],
        "last_error": row["last_error"],
    }


def _dead_letter(q: TraceQuery) -> dict[str, Any] | None:
    dead = q.store.dead_letter_of(q.org, q.flow, q.entity)
    if dead is None:
        return None
    return {
        "id": dead.id,
        "code": dead.code,
        "message": dead.message,
        "fields": list(dead.fields),
        "attempts": dead.attempts,
        "first_failure_at": _time(dead.first_failure_at),
        "last_failure_at": _time(dead.last_failure_at),
    }


def _links(q: TraceQuery) -> list[dict[str, Any]]:
    link = q.store.get_link(q.org, q.flow, q.entity)
    if link is None:
        return []
    return [
        {
            "target_object": link.target_object,
            "target_id": link.target_id,
            "updated_at": _time(link.updated_at),
        }
    ]


def _event(entry: LogEntry, values: bool) -> dict[str, Any]:
    event: dict[str, Any] = {"at": _time(entry.at), "kind": entry.outcome, "message": entry.message}
    detail = entry.detail if isinstance(entry.detail, Mapping) else {}
    if entry.outcome == "marked":
        event["trigger"] = entry.message or "unknown"
    for key in ("attempt", "code", "system", "object", "operation", "target", "created"):
        if key in detail:
            event[key] = detail[key]
    written = detail.get("fields")
    if isinstance(written, Mapping):
        event["fields"] = sorted(written)
        if values:
            event["values"] = dict(written)
    elif isinstance(written, list):  # the fields a remote error named
        event["fields"] = list(written)
    return event


def _events(q: TraceQuery) -> list[dict[str, Any]]:
    return [_event(e, q.values) for e in q.store.entity_log(q.org, q.flow, q.entity, q.limit)]


def _writes(q: TraceQuery) -> list[dict[str, Any]]:
    """The audit trail's entries for the entity: every remote write, with field names only."""
    entries = q.store.audit_entries(q.org, q.flow, q.entity, limit=q.limit)
    return [
        {
            "at": _time(e.at),
            "system": e.system,
            "object": e.object,
            "operation": e.operation,
            "record_id": e.record_id,
            "fields": list(e.fields),
        }
        for e in entries
    ]


#: The sections of a trace, in the order they are shown.
SECTIONS: dict[str, Section] = {
    "now": _now,
    "dead_letter": _dead_letter,
    "links": _links,
    "events": _events,
    "writes": _writes,
}


def build_trace(
    store: StateStore,
    org: str,
    flow: str,
    entity: str,
    *,
    values: bool = False,
    sections: Mapping[str, Section] = SECTIONS,
) -> dict[str, Any]:
    """The trace of one entity: ``org``, ``flow``, ``entity``, ``found`` (whether the store
    knows anything of it) and one key per section."""
    query = TraceQuery(store, org, flow, entity, values)
    trace: dict[str, Any] = {"org": org, "flow": flow, "entity": entity}
    built = {name: section(query) for name, section in sections.items()}
    trace["found"] = any(bool(v) for v in built.values())
    trace.update(built)
    return trace
