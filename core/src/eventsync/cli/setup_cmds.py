"""``eventsync init``, ``sandbox`` and ``demo``: getting started against local sandboxes."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import NoReturn

import click

from ..config import example_config
from ..errors import ConfigurationError, EventsyncError
from ..plugins import Hooks, make_plugin_manager
from .common import (
    DEFAULT_CONFIG,
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    config_problems,
    console_for,
    hooks_for,
)

SANDBOX_INFO = ".eventsync-sandbox.json"
SANDBOX_SECRETS = "eventsync-sandbox.env"


def _sandbox_choice_failed(exc: ConfigurationError) -> NoReturn:
    """Report why the sandbox systems could not be chosen (a usage error: exit 2)."""
    for problem in exc.problems:
        click.echo(f"error: {problem}", err=True)
    raise SystemExit(EXIT_USAGE)


def _note_defaults(hooks: Hooks, crm: str | None, platform: str | None) -> None:
    """Say on stderr which default was taken among several installed systems of a role."""
    from ..sandbox_env import choice_note

    try:
        notes = [choice_note(hooks, "crm", crm), choice_note(hooks, "event_platform", platform)]
    except ConfigurationError as exc:
        _sandbox_choice_failed(exc)
    for note in filter(None, notes):
        click.echo(f"note: {note}", err=True)


@click.command("init")
@click.option(
    "--path",
    "path",
    default=DEFAULT_CONFIG,
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where to write the config file.",
)
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@click.option(
    "--sandbox",
    "for_sandbox",
    is_flag=True,
    help=f"Write a working config for the sandboxes `eventsync sandbox` runs (reads {SANDBOX_INFO}).",
)
@click.option(
    "--sandbox-info",
    default=SANDBOX_INFO,
    show_default=True,
    type=click.Path(dir_okay=False),
    help="The file `eventsync sandbox` wrote.",
)
def init_command(path: str, force: bool, for_sandbox: bool, sandbox_info: str) -> None:
    """Write a commented example configuration file (or one for the running sandboxes)."""
    target = Path(path)
    if target.exists() and not force:
        click.echo(f"error: {target} exists; use --force to overwrite it", err=True)
        raise SystemExit(EXIT_USAGE)
    if not for_sandbox:
        target.write_text(example_config(), encoding="utf-8")
        click.echo(f"wrote {target}; edit it, then run: eventsync check --config {target}")
        return
    from ..sandbox_env import sandbox_config_files, write_private

    hint = "start the sandboxes first with `eventsync sandbox` in this directory"
    try:
        info = json.loads(Path(sandbox_info).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        click.echo(f"error: cannot read {sandbox_info} ({exc}); {hint}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    secrets_path = target.with_name(SANDBOX_SECRETS)
    try:
        toml_text, secrets_text = sandbox_config_files(
            info, hooks=hooks_for(None), secrets_file=secrets_path.name
        )
    except (KeyError, TypeError) as exc:
        click.echo(
            f"error: {sandbox_info} does not describe running sandboxes (no {exc}); {hint}",
            err=True,
        )
        raise SystemExit(EXIT_USAGE) from None
    target.write_text(toml_text, encoding="utf-8")
    write_private(secrets_path, secrets_text)
    click.echo(
        f"wrote {target} and {secrets_path} for the sandboxes; next: eventsync check --config {target}"
    )


@click.command("sandbox")
@click.option(
    "--crm", help="The CRM to emulate (default: the only one installed, or the default one)."
)
@click.option("--platform", help="The event platform to emulate (default: the only one installed).")
@click.option(
    "--org", default="sandbox", show_default=True, help="Organisation name the endpoints use."
)
@click.option(
    "--endpoint",
    default="http://127.0.0.1:8080",
    show_default=True,
    help="Base URL of `eventsync run`, where the sandboxes send notifications.",
)
@click.option(
    "--no-triggers",
    is_flag=True,
    help="The sandboxes send no notifications to the endpoint (pollers only).",
)
@click.option(
    "--seed-registrations",
    default=0,
    show_default=True,
    help="Registrations the event platform's sandbox starts with.",
)
@click.option(
    "--info-file",
    default=SANDBOX_INFO,
    show_default=True,
    type=click.Path(dir_okay=False),
    help="Where to write the JSON description (read by `eventsync init --sandbox`; mode 0600).",
)
@click.option(
    "--latency",
    default="none",
    show_default=True,
    help="Latency profile the sandboxes answer with: none, or realistic (each API's typical "
    "per-endpoint delays, with a tail).",
)
@click.option(
    "--latency-seed",
    default=0,
    show_default=True,
    help="Seed of the latency profile's delays (the same seed draws the same delays).",
)
def sandbox_command(
    crm: str | None,
    platform: str | None,
    org: str,
    endpoint: str,
    no_triggers: bool,
    seed_registrations: int,
    info_file: str,
    latency: str,
    latency_seed: int,
) -> None:
    """Start a CRM sandbox and an event-platform sandbox (e.g. Salesforce and Hopin) until
    SIGINT/SIGTERM.

    Prints one JSON line with their URLs, credentials and seeded ids, and writes it to
    --info-file, readable by its owner only. Then `eventsync init --sandbox` writes a config
    that uses them. Exit code 2 when --crm or --platform names no installed system (the
    message lists them) or several are installed and none is named.
    """
    import signal
    import threading

    from ..sandbox_env import start_sandboxes, write_private

    hooks = hooks_for(None)
    _note_defaults(hooks, crm, platform)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        pair = start_sandboxes(
            hooks,
            crm=crm,
            platform=platform,
            org=org,
            endpoint=endpoint.rstrip("/"),
            triggers=not no_triggers,
            registrations=seed_registrations,
            latency=None if latency == "none" else latency,
            latency_seed=latency_seed,
        )
    except ConfigurationError as exc:
        _sandbox_choice_failed(exc)
    except ValueError as exc:
        click.echo(f"error: {exc}; see `eventsync sandbox --help`", err=True)
        raise SystemExit(EXIT_USAGE) from None
    except EventsyncError as exc:
        click.echo(f"error: {exc}", err=True)
        raise SystemExit(EXIT_PROBLEMS) from None
    try:
        line = json.dumps(pair.info(), default=str)
        write_private(info_file, line + "\n")
        click.echo(line)
        sys.stdout.flush()
        stop.wait()
    finally:
        pair.stop()


@click.command("demo")
@click.option(
    "--crm", help="The CRM to run it with (default: the only one installed, or the default one)."
)
@click.option(
    "--platform", help="The event platform to run it with (default: the only one installed)."
)
@click.option("--timeout", default=30.0, show_default=True, help="Seconds to wait for each step.")
def demo_command(crm: str | None, platform: str | None, timeout: float) -> None:
    """Run the integration guide's test procedure end to end against local sandboxes.

    Starts a CRM sandbox and an event-platform sandbox and an embedded engine, then, with
    Salesforce and Hopin: ticket with integration code -> Campaign carrying it ->
    CampaignMember -> magic link in Hopin -> link written back -> a Hopin registration exported
    to a Lead -> invitee accepts (Registered) -> attends (Attended). Exit code 0 only if every
    step happened; 2 when --crm or --platform names no installed system.
    """
    from ..demo import Step, run_demo
    from ..sandbox_env import choose_system

    hooks = Hooks(make_plugin_manager(environ={}))
    try:
        systems = [
            choose_system(hooks, "crm", crm),
            choose_system(hooks, "event_platform", platform),
        ]
    except ConfigurationError as exc:
        _sandbox_choice_failed(exc)
    _note_defaults(hooks, crm, platform)
    console = console_for()
    names = " and ".join(s.label or s.system for s in systems)
    console.print(f"[bold]eventsync demo[/]: the guide's test procedure against {names} sandboxes")

    def report(step: Step) -> None:
        mark = "[green]ok[/]" if step.ok else "[red]FAILED[/]"
        console.print(f"{step.number}. {mark} {step.title} [dim]({step.seconds * 1000:.0f} ms)[/]")
        console.print(f"   {step.detail}", markup=False, highlight=False)

    try:
        steps = run_demo(
            report, timeout=timeout, crm=systems[0].system, platform=systems[1].system, hooks=hooks
        )
    except ConfigurationError as exc:
        config_problems(exc, as_json=False)
        raise SystemExit(EXIT_USAGE) from None
    ok = bool(steps) and all(s.ok for s in steps)
    console.print(
        f"all {len(steps)} steps happened" if ok else "the demo failed",
        style="bold green" if ok else "bold red",
    )
    raise SystemExit(EXIT_OK if ok else EXIT_PROBLEMS)
