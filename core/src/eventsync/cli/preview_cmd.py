"""``eventsync preview``: what a flow would write, record by record, writing nothing."""

from __future__ import annotations

import click
from rich.table import Table
from rich.text import Text

from ..errors import ConfigurationError, EventsyncError
from ..preview import ACTIONS, Preview
from .common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    config_option,
    config_problems,
    console_for,
    emit_json,
    engine_for,
)

__all__ = ["preview_command", "show_preview"]


@click.command("preview")
@click.argument("org")
@click.argument("flow")
@config_option("Config file.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Preview at most this many records (default: every source record).",
)
@click.option(
    "--entity",
    "entities",
    multiple=True,
    help="Preview only this source entity id (repeatable).",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def preview_command(
    org: str,
    flow: str,
    config_path: str,
    limit: int | None,
    entities: tuple[str, ...],
    as_json: bool,
) -> None:
    """Show what FLOW would do for ORG: create, update (with a field-by-field diff against the
    CRM's current values), skip or fail, for each record. Reads the systems, writes nothing.

    Exit code 0 when it saw every record, 1 when the API budget stopped it early.
    """
    engine = engine_for(config_path, as_json, pollers=False)
    try:
        if org not in engine.config.orgs:
            known = ", ".join(engine.config.orgs) or "none"
            click.echo(f"error: no organisation {org!r} in the config (known: {known})", err=True)
            raise SystemExit(EXIT_USAGE)
        result = engine.preview(org, flow, entities=entities, limit=limit)
    except ConfigurationError as exc:
        config_problems(exc, as_json)
        raise SystemExit(EXIT_USAGE) from None
    except EventsyncError as exc:
        click.echo(f"error: the preview could not read what it needs: {exc}", err=True)
        raise SystemExit(EXIT_PROBLEMS) from None
    finally:
        engine.close()
    show_preview(result, as_json)
    raise SystemExit(EXIT_OK if result.complete else EXIT_PROBLEMS)


def show_preview(result: Preview, as_json: bool) -> None:
    """Print a preview: JSON, or a table of records with their diffs and a summary table."""
    if as_json:
        emit_json(result.as_dict())
        return
    console = console_for()
    table = Table(title=f"preview of {result.flow} for {result.org}", show_lines=True)
    for column in ("entity", "action", "target", "changes / reason"):
        table.add_column(column, overflow="fold")
    for record in result.records:
        target = ", ".join(f"{w.object} {w.record_id or '(new)'}" for w in record.writes)
        lines = [
            f"{name}: {_show(change.get('before'))} -> {_show(change.get('after'))}"
            for w in record.writes
            for name, change in w.changes.items()
        ]
        lines += [f"{name} kept: {why}" for w in record.writes for name, why in w.held.items()]
        detail = "\n".join(lines) or record.reason
        if record.code:
            detail = f"{record.code}: {detail}"
        table.add_row(record.entity, record.action, target, Text(detail))
    console.print(table)
    summary = Table(title="summary")
    for action in ACTIONS:
        summary.add_column(action, justify="right")
    counts = result.summary()
    summary.add_row(*(str(counts[a]) for a in ACTIONS))
    console.print(summary)
    if not result.complete:
        click.echo(result.stopped, err=True)


def _show(value: object) -> str:
    return "(empty)" if value in (None, "") else repr(value)
