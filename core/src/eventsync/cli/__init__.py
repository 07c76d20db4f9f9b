"""The ``eventsync`` command: the front door for operators.

Exit codes: 0 success; 1 the command ran and found problems (findings, failed steps, dead
letters); 2 usage or configuration error (bad flags, unreadable or invalid config file);
3 a system cannot be reached or refused the credentials; 130 interrupted (Ctrl-C).
``--json`` output never contains secrets: only environment-variable names appear in config.
A failure no command handles itself is one or two lines (``failures.explain``); ``eventsync
--debug CMD`` shows its traceback instead.
"""

from __future__ import annotations

from typing import Any

import click

from .. import __version__
from .audit_cmd import audit_command
from .backfill_cmd import backfill_command
from .check_cmd import check_command
from .console_cmd import console_command
from .failures import explain
from .forget_cmd import forget_command
from .plugins_cmd import plugins_command
from .preview_cmd import preview_command
from .retry_cmd import retry_command
from .run_cmd import run_command
from .scheduler_cmd import scheduler_command
from .serve_cmd import serve_command
from .setup_cmds import demo_command, init_command, sandbox_command
from .status_cmd import status_command
from .subscribe_cmd import subscribe_command
from .trace_cmd import trace_command
from .worker_cmd import worker_command

__all__ = ["main", "cli"]


class _Group(click.Group):
    """The ``eventsync`` group: a failure no command handled becomes a short message and an
    exit code (``failures.explain``), unless ``--debug`` asked for the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if (ctx.obj or {}).get("debug"):
                raise
            failure = explain(exc)
            for line in failure.lines:
                click.echo(line, err=True)
            ctx.exit(failure.code)


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="eventsync")
@click.option(
    "--debug",
    is_flag=True,
    envvar="EVENTSYNC_DEBUG",
    help="Show the traceback of a failure instead of a short message.",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """eventsync keeps an event platform and a CRM in step, in real time.

    Start with `eventsync init` to write a config file, `eventsync check` to validate it
    against the live systems, then `eventsync run` to sync.
    """
    ctx.obj = {"debug": debug}


for _command in (
    plugins_command,
    init_command,
    sandbox_command,
    check_command,
    run_command,
    serve_command,
    worker_command,
    scheduler_command,
    status_command,
    retry_command,
    backfill_command,
    subscribe_command,
    demo_command,
    trace_command,
    preview_command,
    audit_command,
    forget_command,
    console_command,
):
    cli.add_command(_command)


def main() -> None:
    """Entry point of the ``eventsync`` console script."""
    cli(prog_name="eventsync")
