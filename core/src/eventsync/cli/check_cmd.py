"""``eventsync check``: validate a config file and the systems it names."""

from __future__ import annotations

from typing import Any

import attrs
import click
from rich.table import Table
from rich.text import Text

from ..checks import OrgCheck, check_org
from ..config import secrets_env
from ..errors import ConfigurationError, EventsyncError, PluginLoadError
from .common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    config_option,
    config_problems,
    console_for,
    emit_json,
    hooks_for,
    load,
)


def _check_rows(checks: list[OrgCheck]) -> list[dict[str, Any]]:
    return [{"org": c.org, **attrs.asdict(f)} for c in checks for f in c.findings]


@click.command("check")
@config_option("Config file to check.")
@click.option("--org", "orgs", multiple=True, help="Check only this organisation (repeatable).")
@click.option("--offline", is_flag=True, help="Validate the file only; do not contact any system.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def check_command(config_path: str, orgs: tuple[str, ...], offline: bool, as_json: bool) -> None:
    """Validate a config file, then authenticate, discover schemas, validate mappings and run preflight checks.

    Exit code 0 when everything is clean, 1 when there are findings, 2 when the file is invalid.
    """
    config = load(config_path, as_json)
    try:
        hooks = hooks_for(config)
        names = list(orgs) or list(config.orgs)
        env = secrets_env(config)
        checks = [check_org(config, name, hooks, online=not offline, env=env) for name in names]
    except ConfigurationError as exc:
        config_problems(exc, as_json)
        raise SystemExit(EXIT_USAGE) from None
    except PluginLoadError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    except EventsyncError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_PROBLEMS) from None
    ok = all(c.ok for c in checks)
    rows = _check_rows(checks)
    if as_json:
        emit_json({"ok": ok, "orgs": [c.org for c in checks], "findings": rows})
    else:
        console = console_for()
        if rows:
            table = Table(title=f"findings for {config_path}")
            for col in ("org", "severity", "source", "problem", "where", "fix"):
                table.add_column(col, overflow="fold")
            for row in rows:
                style = {"error": "red", "warning": "yellow"}.get(row["severity"], "")
                table.add_row(
                    Text(row["org"]),
                    Text(row["severity"], style=style),
                    Text(row["source"]),
                    Text(row["message"]),
                    Text(row["where"]),
                    Text(row["fix"]),
                )
            console.print(table)
        verdict = "clean" if ok else "problems found"
        console.print(
            f"{config_path}: {len(checks)} organisation(s) checked, {len(rows)} finding(s): {verdict}"
        )
    raise SystemExit(EXIT_OK if ok else EXIT_PROBLEMS)
