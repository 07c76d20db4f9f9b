"""``eventsync forget``: erase a person from the systems eventsync wrote to and from its state."""

from __future__ import annotations

import click

from ..errors import EventsyncError, RetryableError
from .common import EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, config_option, emit_json, engine_for

__all__ = ["forget_command"]


@click.command("forget")
@click.argument("email")
@config_option("Config file.")
@click.option(
    "--org",
    "orgs",
    multiple=True,
    help="Only this organisation (repeatable; default: every organisation).",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def forget_command(email: str, config_path: str, orgs: tuple[str, ...], as_json: bool) -> None:
    """Erase EMAIL: delete or anonymise the records eventsync created for the person (per
    [orgs.X.erasure]), and remove every trace of them from the state store, leaving an audit
    entry without personal data. Interrupted, it resumes when run again.

    Exit code 0 when done, 1 when a remote system failed (run it again to resume), 2 for bad
    input.
    """
    engine = engine_for(config_path, as_json, pollers=False)
    try:
        result = engine.forget(email, orgs=orgs)
    except ValueError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    except RetryableError as exc:
        click.echo(f"error: {exc}; nothing is lost: run the same command again", err=True)
        raise SystemExit(EXIT_PROBLEMS) from None
    except EventsyncError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_PROBLEMS) from None
    finally:
        engine.close()
    if as_json:
        emit_json(result.as_dict())
        raise SystemExit(EXIT_OK)
    for org, counts in result.remote.items():
        click.echo(
            f"{org}: {counts['deleted']} record(s) deleted, {counts['anonymised']} anonymised, "
            f"{counts['kept']} kept by policy, {counts['not_ours']} not created by eventsync "
            f"(left alone)"
        )
    rows = sum(result.state.values())
    click.echo(f"state: {rows} row(s) removed; audit entry {result.request}")
    raise SystemExit(EXIT_OK)
