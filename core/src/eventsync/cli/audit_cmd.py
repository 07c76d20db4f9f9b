"""``eventsync audit``: the trail of every record eventsync wrote to a remote system."""

from __future__ import annotations

import click
from rich.table import Table

from .common import EXIT_OK, config_option, console_for, emit_json, engine_for

__all__ = ["audit_command"]


@click.command("audit")
@config_option("Config file.")
@click.option("--org", help="Only this organisation.")
@click.option("--flow", help="Only this flow.")
@click.option("--entity", help="Only writes made for this source entity (e.g. a registration id).")
@click.option("--record", "record_id", help="Only writes to this remote record id.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Show the latest this many entries.",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def audit_command(
    config_path: str,
    org: str | None,
    flow: str | None,
    entity: str | None,
    record_id: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """When eventsync wrote which record, for which flow and source entity, and which fields
    changed (names only: the trail holds no field values). Oldest first."""
    engine = engine_for(config_path, as_json, pollers=False)
    try:
        entries = engine.store.audit_entries(
            org, flow, entity, record_id=record_id, limit=limit, latest=True
        )
    finally:
        engine.close()
    if as_json:
        emit_json({"entries": [e.as_dict() for e in entries]})
        raise SystemExit(EXIT_OK)
    table = Table(title="audit trail", show_lines=False)
    for column in ("at", "org", "flow", "operation", "record", "entity", "fields"):
        table.add_column(column, overflow="fold")
    for e in entries:
        table.add_row(
            e.at.strftime("%Y-%m-%d %H:%M:%S"),
            e.org,
            e.flow,
            e.operation,
            f"{e.system} {e.object} {e.record_id}",
            e.entity,
            ", ".join(e.fields),
        )
    console_for().print(table)
    if not entries:
        click.echo("no writes recorded for this selection")
    raise SystemExit(EXIT_OK)
