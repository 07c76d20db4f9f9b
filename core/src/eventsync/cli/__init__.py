"""The ``eventsync`` command: the front door for operators.

Exit codes: 0 success; 1 the command ran and found problems (findings, failed steps, dead
letters); 2 usage or configuration error (bad flags, unreadable or invalid config file).
``--json`` output never contains secrets: only environment-variable names appear in config.
"""

from __future__ import annotations

import click

from .. import __version__
from .audit_cmd import audit_command
from .backfill_cmd import backfill_command
from .check_cmd import check_command
from .forget_cmd import forget_command
from .plugins_cmd import plugins_command
from .preview_cmd import preview_command
from .retry_cmd import retry_command
from .run_cmd import run_command
from .setup_cmds import demo_command, init_command, sandbox_command
from .status_cmd import status_command

__all__ = ["main", "cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="eventsync")
def cli() -> None:
    """eventsync keeps an event platform and a CRM in step, in real time.

    Start with `eventsync init` to write a config file, `eventsync check` to validate it
    against the live systems, then `eventsync run` to sync.
    """


for _command in (
    plugins_command,
    init_command,
    sandbox_command,
    check_command,
    run_command,
    status_command,
    retry_command,
    backfill_command,
    demo_command,
    preview_command,
    audit_command,
    forget_command,
):
    cli.add_command(_command)


def main() -> None:
    """Entry point of the ``eventsync`` console script."""
    cli(prog_name="eventsync")
