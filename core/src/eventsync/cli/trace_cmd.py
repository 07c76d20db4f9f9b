"""``eventsync trace``: one entity's whole journey, from the state store."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    config_option,
    console_for,
    emit_json,
    engine_for,
)


@click.command("trace")
@click.argument("org")
@click.argument("flow")
@click.argument("entity")
@config_option("Config file.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@click.option(
    "--values", is_flag=True, help="Also show the values written (personal data: take care)."
)
def trace_command(
    org: str, flow: str, entity: str, config_path: str, as_json: bool, values: bool
) -> None:
    """Show what happened to ENTITY of FLOW in ORG: each mark and its trigger, attempts and
    their errors, verdicts, what was written (field names; values with --values) and links.

    ENTITY is the flow's source key (a Hopin registration id for export_registrations, a
    CampaignMember id for import_registrations ...). Exit code 0 when the store knows the
    entity, 1 when it knows nothing of it, 2 for an unknown organisation or flow.
    """
    from ..trace import build_trace

    engine = engine_for(config_path, as_json, must_exist=True, pollers=False, subscribe=False)
    try:
        problem = _unknown(engine, org, flow)
        if problem:
            click.echo(f"error: {problem}", err=True)
            raise SystemExit(EXIT_USAGE)
        trace = build_trace(engine.store, org, flow, entity, values=values)
        retention = engine.config.engine.log_retention
    finally:
        engine.close()
    if as_json:
        emit_json(trace)
    elif not trace["found"]:
        click.echo(
            f"nothing recorded for {entity!r} of {flow} in {org}: check the id (the flow's "
            f"source key), or it is older than the sync log's {retention:g} days of retention",
            err=True,
        )
    else:
        console = console_for()
        console.print(Text(f"trace of {entity} ({org}/{flow})", style="bold"))
        for name, render in RENDERERS.items():
            if trace.get(name):
                render(console, trace[name])
    raise SystemExit(EXIT_OK if trace["found"] else EXIT_PROBLEMS)


def _unknown(engine: Any, org: str, flow: str) -> str:
    """Why ORG or FLOW cannot be traced, or ''."""
    if org not in engine.config.orgs:
        known = ", ".join(sorted(engine.config.orgs)) or "none"
        return f"no organisation {org!r} in the configuration (known: {known})"
    if flow not in engine.flows:
        return f"no flow {flow!r} (known: {', '.join(sorted(engine.flows))})"
    return ""


def _now(console: Console, now: dict[str, Any]) -> None:
    text = f"now: {now['state']} (attempts {now['attempts']}, next try {now['due_at']})"
    if now["last_error"]:
        text += f"; last error {now['last_error_code']}: {now['last_error']}"
    console.print(Text(text))


def _dead(console: Console, dead: dict[str, Any]) -> None:
    console.print(
        Text(
            f"dead letter {dead['id']}: {dead['code']}: {dead['message']} "
            f"(after {dead['attempts']} attempts; retry with: eventsync retry --id {dead['id']})"
        )
    )


def _links(console: Console, links: list[dict[str, Any]]) -> None:
    for link in links:
        console.print(
            Text(f"linked to {link['target_object']} {link['target_id']} ({link['updated_at']})")
        )


def _events(console: Console, events: list[dict[str, Any]]) -> None:
    table = Table(title="journey (oldest first)")
    for col in ("time (UTC)", "step", "detail"):
        table.add_column(col, overflow="fold")
    for event in events:
        table.add_row(event["at"], event["kind"], Text(_detail(event)))
    console.print(table)


def _detail(event: dict[str, Any]) -> str:
    if event["kind"] == "marked":
        return f"trigger: {event['trigger']}"
    parts = [event["message"]] if event["message"] else []
    if "attempt" in event:
        parts.append(f"attempt {event['attempt']}")
    if "values" in event:
        parts.append(", ".join(f"{k}={v!r}" for k, v in event["values"].items()))
    elif event.get("fields"):
        parts.append("fields: " + ", ".join(event["fields"]))
    return "; ".join(parts)


def _writes(console: Console, writes: list[dict[str, Any]]) -> None:
    table = Table(title="audit trail: remote writes (field names only)")
    for col in ("time (UTC)", "system", "operation", "record", "fields"):
        table.add_column(col, overflow="fold")
    for w in writes:
        record = f"{w['object']} {w['record_id']}"
        table.add_row(w["at"], w["system"], w["operation"], record, ", ".join(w["fields"]))
    console.print(table)


#: How each section of a trace is shown (``eventsync.trace.SECTIONS`` builds them).
RENDERERS: dict[str, Callable[[Console, Any], None]] = {
    "now": _now,
    "dead_letter": _dead,
    "links": _links,
    "events": _events,
    "writes": _writes,
}
