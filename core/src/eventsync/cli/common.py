"""What every ``eventsync`` command shares: exit codes, the ``--config`` option, consoles,
JSON output and loading the configuration."""

from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..config import Config, load_config
from ..errors import ConfigurationError
from ..plugins import Hooks, make_plugin_manager

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
#: A system (a remote API, the state database) cannot be reached or refused the credentials.
EXIT_UNAVAILABLE = 3
#: As shells report a process ended by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130
DEFAULT_CONFIG = "eventsync.toml"


def config_option(help_text: str = "Config file.") -> Any:
    """The ``--config`` option every command that reads the configuration file takes."""
    return click.option(
        "--config",
        "config_path",
        default=DEFAULT_CONFIG,
        show_default=True,
        type=click.Path(dir_okay=False),
        help=help_text,
    )


def log_options(command: Any) -> Any:
    """``--log-level`` and ``--log-format`` for the commands that run the engine (default: the
    ``[engine] log_level`` / ``log_format`` of the file)."""
    from ..logs import FORMATS, LEVELS

    command = click.option(
        "--log-format",
        type=click.Choice(FORMATS),
        help="text (key=value) or json (one object a line); default [engine] log_format.",
    )(command)
    return click.option(
        "--log-level",
        type=click.Choice(LEVELS, case_sensitive=False),
        help="Least severe level logged; default [engine] log_level (info).",
    )(command)


def refuse_bad_listen(listen: str | None) -> None:
    """Exit 2 naming what is wrong with a ``--listen HOST:PORT`` given (None: not given)."""
    from ..config import listen_problem

    if listen is not None and (problem := listen_problem(listen)) is not None:
        click.echo(f"error: --listen: {problem.partition(': ')[2]}", err=True)
        raise SystemExit(EXIT_USAGE)


def bind_server(engine: Any, listen: str | None) -> Any:
    """The engine's HTTP server, bound to ``listen`` (else ``[engine] listen``) before anything
    starts: an address in use stops here, the engine closed, with nothing else to undo."""
    from ..server import Server

    host, _, port = (listen or engine.config.engine.listen).rpartition(":")
    try:
        return Server(engine, host, int(port))
    except BaseException:
        engine.close()
        raise


def start_logging(engine: Any, level: str | None, fmt: str | None) -> None:
    """Log to stderr as the options or the file say, hiding the engine's secret values."""
    from ..logs import configure

    eng = engine.config.engine
    configure(
        (level or eng.log_level).lower(), fmt or eng.log_format, secrets=engine.secret_values()
    )


def console_for(err: bool = False) -> Console:
    return Console(stderr=err, soft_wrap=False, width=160 if not sys.stdout.isatty() else None)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def config_problems(exc: ConfigurationError, as_json: bool) -> None:
    if as_json:
        emit_json({"ok": False, "configuration_problems": list(exc.problems)})
        return
    if len(exc.problems) == 1:
        # One problem is one line a person (and a log) reads at once; a table for many.
        click.echo(f"error: {exc.problems[0]}", err=True)
        return
    console = console_for(err=True)
    table = Table(title=exc.heading, show_lines=False)
    table.add_column("#", justify="right")
    table.add_column("problem", overflow="fold")
    for i, problem in enumerate(exc.problems, 1):
        table.add_row(str(i), Text(problem))  # Text: "[orgs.acme.systems.x]" is not markup
    console.print(table)


def load(config_path: str, as_json: bool) -> Config:
    try:
        return load_config(config_path)
    except ConfigurationError as exc:
        config_problems(exc, as_json)
        raise SystemExit(EXIT_USAGE) from None


def hooks_for(config: Config | None) -> Hooks:
    engine = config.engine if config else None
    pm = make_plugin_manager(
        allow=engine.plugins_allow if engine else None,
        block=engine.plugins_block if engine else (),
    )
    return Hooks(pm)


def engine_for(
    config_path: str, as_json: bool = False, *, must_exist: bool = False, **kwargs: Any
) -> Any:
    """The engine of a config file (problems reported, exit 2).

    :param must_exist: refuse (exit 2, saying where it looked) a state database that does not
        exist instead of creating an empty one: commands that only read or repair state
        (``status``, ``retry``, ``trace``) would otherwise report on nothing.
    """
    from ..engine import Engine

    config = load(config_path, as_json)
    try:
        return Engine(config, create_store=not must_exist, **kwargs)
    except ConfigurationError as exc:
        config_problems(exc, as_json)
        raise SystemExit(EXIT_USAGE) from None


def age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    return f"{seconds / 60:.1f}m" if seconds < 7200 else f"{seconds / 3600:.1f}h"
