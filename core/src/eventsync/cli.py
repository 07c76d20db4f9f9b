"""The ``eventsync`` command: the front door for operators.

Exit codes: 0 success; 1 the command ran and found problems (findings, failed steps, dead
letters); 2 usage or configuration error (bad flags, unreadable or invalid config file).
``--json`` output never contains secrets: only environment-variable names appear in config.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import attrs
import click
from rich.console import Console
from rich.table import Table

from . import __version__
from .checks import OrgCheck, check_org
from .config import Config, example_config, load_config
from .errors import ConfigurationError, EventsyncError
from .plugins import Hooks, describe_plugins, make_plugin_manager

__all__ = ["main", "cli"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
DEFAULT_CONFIG = "eventsync.toml"


def _console(err: bool = False) -> Console:
    return Console(stderr=err, soft_wrap=False, width=160 if not sys.stdout.isatty() else None)


def _emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def _config_problems(exc: ConfigurationError, as_json: bool) -> None:
    if as_json:
        _emit_json({"ok": False, "configuration_problems": list(exc.problems)})
        return
    console = _console(err=True)
    table = Table(title=exc.heading, show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("problem")
    for i, problem in enumerate(exc.problems, 1):
        table.add_row(str(i), problem)
    console.print(table)


def _load(config_path: str, as_json: bool) -> Config:
    try:
        return load_config(config_path)
    except ConfigurationError as exc:
        _config_problems(exc, as_json)
        raise SystemExit(EXIT_USAGE) from None


def _hooks(config: Config | None) -> Hooks:
    engine = config.engine if config else None
    pm = make_plugin_manager(
        allow=engine.plugins_allow if engine else None,
        block=engine.plugins_block if engine else (),
    )
    return Hooks(pm)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="eventsync")
def cli() -> None:
    """eventsync keeps Hopin (RingCentral Events) and Salesforce in step, in real time.

    Start with `eventsync init` to write a config file, `eventsync check` to validate it
    against the live systems, then `eventsync run` to sync.
    """


@cli.command("plugins")
@click.option("--config", "config_path", type=click.Path(dir_okay=False),
              help="Config file; shows which organisations enable each plugin.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def plugins_command(config_path: str | None, as_json: bool) -> None:
    """List installed plugins: distribution, version, hooks and the orgs that enable them."""
    if config_path is None and Path(DEFAULT_CONFIG).exists():
        config_path = DEFAULT_CONFIG
    config = _load(config_path, as_json) if config_path else None
    try:
        hooks = _hooks(config)
    except EventsyncError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_PROBLEMS) from None
    infos = describe_plugins(hooks.pm)
    enabled_by: dict[str, list[str]] = {}
    if config:
        for org in config.orgs.values():
            for name in org.plugins:
                enabled_by.setdefault(name, []).append(org.name)
    rows = [
        {**attrs.asdict(info), "orgs": sorted(enabled_by.get(info.name, [])) if not info.builtin
         else sorted(config.orgs) if config else []}
        for info in infos
    ]
    if as_json:
        _emit_json(rows)
        return
    table = Table(title="eventsync plugins")
    for col in ("plugin", "distribution", "version", "hooks", "enabled for orgs"):
        table.add_column(col, overflow="fold")
    for row in rows:
        orgs = ", ".join(row["orgs"]) if row["orgs"] else ("all (built-in)" if row["builtin"] else "-")
        table.add_row(row["name"], row["distribution"], row["version"], ", ".join(row["hooks"]), orgs)
    _console().print(table)


@cli.command("init")
@click.option("--path", "path", default=DEFAULT_CONFIG, show_default=True, type=click.Path(dir_okay=False),
              help="Where to write the config file.")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init_command(path: str, force: bool) -> None:
    """Write a commented example configuration file."""
    target = Path(path)
    if target.exists() and not force:
        click.echo(f"error: {target} exists; use --force to overwrite it", err=True)
        raise SystemExit(EXIT_USAGE)
    target.write_text(example_config(), encoding="utf-8")
    click.echo(f"wrote {target}; edit it, then run: eventsync check --config {target}")


def _check_rows(checks: list[OrgCheck]) -> list[dict[str, Any]]:
    return [{"org": c.org, **attrs.asdict(f)} for c in checks for f in c.findings]


@cli.command("check")
@click.option("--config", "config_path", default=DEFAULT_CONFIG, show_default=True,
              type=click.Path(dir_okay=False), help="Config file to check.")
@click.option("--org", "orgs", multiple=True, help="Check only this organisation (repeatable).")
@click.option("--offline", is_flag=True, help="Validate the file only; do not contact any system.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def check_command(config_path: str, orgs: tuple[str, ...], offline: bool, as_json: bool) -> None:
    """Validate a config file, then authenticate, discover schemas, validate mappings and run preflight checks.

    Exit code 0 when everything is clean, 1 when there are findings, 2 when the file is invalid.
    """
    config = _load(config_path, as_json)
    try:
        hooks = _hooks(config)
        names = list(orgs) or list(config.orgs)
        checks = [check_org(config, name, hooks, online=not offline) for name in names]
    except ConfigurationError as exc:
        _config_problems(exc, as_json)
        raise SystemExit(EXIT_USAGE) from None
    except EventsyncError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_PROBLEMS) from None
    ok = all(c.ok for c in checks)
    rows = _check_rows(checks)
    if as_json:
        _emit_json({"ok": ok, "orgs": [c.org for c in checks], "findings": rows})
    else:
        console = _console()
        if rows:
            table = Table(title=f"findings for {config_path}")
            for col in ("org", "severity", "source", "problem", "where", "fix"):
                table.add_column(col, overflow="fold")
            for row in rows:
                style = {"error": "red", "warning": "yellow"}.get(row["severity"], "")
                table.add_row(row["org"], f"[{style}]{row['severity']}[/]" if style else row["severity"],
                              row["source"], row["message"], row["where"], row["fix"])
            console.print(table)
        verdict = "clean" if ok else "problems found"
        console.print(f"{config_path}: {len(checks)} organisation(s) checked, {len(rows)} finding(s): {verdict}")
    raise SystemExit(EXIT_OK if ok else EXIT_PROBLEMS)


def main() -> None:
    """Entry point of the ``eventsync`` console script."""
    cli(prog_name="eventsync")


if __name__ == "__main__":  # pragma: no cover
    main()
