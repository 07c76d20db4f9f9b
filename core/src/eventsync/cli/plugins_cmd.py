"""``eventsync plugins``: what is installed and which organisations enable it."""

from __future__ import annotations

from pathlib import Path

import attrs
import click
from rich.table import Table

from ..errors import ConfigurationError, EventsyncError
from ..plugins import describe_plugins
from .common import (
    DEFAULT_CONFIG,
    EXIT_USAGE,
    config_problems,
    console_for,
    emit_json,
    hooks_for,
    load,
)


@click.command("plugins")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    help="Config file; shows which organisations enable each plugin.",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def plugins_command(config_path: str | None, as_json: bool) -> None:
    """List installed plugins: distribution, version, hooks and the orgs that enable them."""
    if config_path is None and Path(DEFAULT_CONFIG).exists():
        config_path = DEFAULT_CONFIG
    config = load(config_path, as_json) if config_path else None
    try:
        hooks = hooks_for(config)
    except ConfigurationError as exc:
        config_problems(exc, as_json)
        raise SystemExit(EXIT_USAGE) from None
    except EventsyncError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    infos = describe_plugins(hooks.pm)
    enabled_by: dict[str, list[str]] = {}
    if config:
        for org in config.orgs.values():
            for name in org.plugins:
                enabled_by.setdefault(name, []).append(org.name)
    rows = [
        {
            **attrs.asdict(info),
            "orgs": sorted(enabled_by.get(info.name, []))
            if not info.builtin
            else sorted(config.orgs)
            if config
            else [],
        }
        for info in infos
    ]
    if as_json:
        emit_json(rows)
        return
    table = Table(title="eventsync plugins")
    for col in ("plugin", "distribution", "version", "systems", "hooks", "enabled for orgs"):
        table.add_column(col, overflow="fold")
    for row in rows:
        orgs = (
            ", ".join(row["orgs"]) if row["orgs"] else ("all (built-in)" if row["builtin"] else "-")
        )
        table.add_row(
            row["name"],
            row["distribution"],
            row["version"],
            ", ".join(row["systems"]) or "-",
            ", ".join(row["hooks"]),
            orgs,
        )
    console_for().print(table)
