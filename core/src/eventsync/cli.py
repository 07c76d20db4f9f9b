"""The ``eventsync`` command: the front door for operators.

Exit codes: 0 success; 1 the command ran and found problems (findings, failed steps, dead
letters); 2 usage or configuration error (bad flags, unreadable or invalid config file).
``--json`` output never contains secrets: only environment-variable names appear in config.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, NoReturn

import attrs
import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from . import __version__
from .checks import OrgCheck, check_org
from .config import Config, example_config, load_config, secrets_env
from .errors import ConfigurationError, EventsyncError, PluginLoadError
from .plugins import Hooks, describe_plugins, make_plugin_manager

__all__ = ["main", "cli"]

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2
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
    table.add_column("problem", overflow="fold")
    for i, problem in enumerate(exc.problems, 1):
        table.add_row(str(i), Text(problem))  # Text: "[orgs.acme.systems.x]" is not markup
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
    """eventsync keeps an event platform and a CRM in step, in real time.

    Start with `eventsync init` to write a config file, `eventsync check` to validate it
    against the live systems, then `eventsync run` to sync.
    """


@cli.command("plugins")
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
    config = _load(config_path, as_json) if config_path else None
    try:
        hooks = _hooks(config)
    except ConfigurationError as exc:
        _config_problems(exc, as_json)
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
        _emit_json(rows)
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
    _console().print(table)


SANDBOX_INFO = ".eventsync-sandbox.json"
SANDBOX_SECRETS = "eventsync-sandbox.env"


def _sandbox_choice_failed(exc: ConfigurationError) -> NoReturn:
    """Report why the sandbox systems could not be chosen (a usage error: exit 2)."""
    for problem in exc.problems:
        click.echo(f"error: {problem}", err=True)
    raise SystemExit(EXIT_USAGE)


@cli.command("init")
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
    from .sandbox_env import sandbox_config_files, write_private

    hint = "start the sandboxes first with `eventsync sandbox` in this directory"
    try:
        info = json.loads(Path(sandbox_info).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        click.echo(f"error: cannot read {sandbox_info} ({exc}); {hint}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    secrets_path = target.with_name(SANDBOX_SECRETS)
    try:
        toml_text, secrets_text = sandbox_config_files(
            info, hooks=_hooks(None), secrets_file=secrets_path.name
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


@cli.command("sandbox")
@click.option("--crm", help="The CRM to emulate (default: the only one installed).")
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
def sandbox_command(
    crm: str | None,
    platform: str | None,
    org: str,
    endpoint: str,
    no_triggers: bool,
    seed_registrations: int,
    info_file: str,
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

    from .sandbox_env import start_sandboxes, write_private

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        pair = start_sandboxes(
            _hooks(None),
            crm=crm,
            platform=platform,
            org=org,
            endpoint=endpoint.rstrip("/"),
            triggers=not no_triggers,
            registrations=seed_registrations,
        )
    except ConfigurationError as exc:
        _sandbox_choice_failed(exc)
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


def _check_rows(checks: list[OrgCheck]) -> list[dict[str, Any]]:
    return [{"org": c.org, **attrs.asdict(f)} for c in checks for f in c.findings]


@cli.command("check")
@config_option("Config file to check.")
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
        env = secrets_env(config)
        checks = [check_org(config, name, hooks, online=not offline, env=env) for name in names]
    except ConfigurationError as exc:
        _config_problems(exc, as_json)
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
        _emit_json({"ok": ok, "orgs": [c.org for c in checks], "findings": rows})
    else:
        console = _console()
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


def _engine(config_path: str, as_json: bool = False, **kwargs: Any) -> Any:
    from .engine import Engine

    config = _load(config_path, as_json)
    try:
        return Engine(config, **kwargs)
    except ConfigurationError as exc:
        _config_problems(exc, as_json)
        raise SystemExit(EXIT_USAGE) from None


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.1f}s"
    return f"{seconds / 60:.1f}m" if seconds < 7200 else f"{seconds / 3600:.1f}h"


@cli.command("run")
@config_option("Config file.")
@click.option("--listen", help="host:port for the endpoints (default: [engine] listen).")
@click.option(
    "--no-pollers", is_flag=True, help="Only react to notifications; do not poll sources."
)
def run_command(config_path: str, listen: str | None, no_pollers: bool) -> None:
    """Serve the notification endpoints and sync in real time until SIGINT/SIGTERM (SIGHUP is
    ignored, with a line saying so).

    Endpoints: POST /hooks/ORG/hopin (Hopin deliveries), POST /hooks/ORG/salesforce
    (Outbound Messages), GET /healthz, GET /metrics (Prometheus).
    """
    import signal
    import threading

    from .server import serve

    engine = _engine(config_path, pollers=not no_pollers)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    console = _console(err=True)
    # A closed terminal or a supervisor's "reload" must not kill the engine mid-batch; the
    # configuration is read once, so say how to load a changed one.
    signal.signal(
        signal.SIGHUP,
        lambda *_: console.print(
            "SIGHUP ignored: the configuration is read at start; restart `eventsync run` "
            "(SIGTERM, then start it again) to load a changed one"
        ),
    )
    engine.start()
    server = serve(engine, listen or engine.config.engine.listen)
    console.print(f"eventsync {__version__} listening on {server.url}")
    for org in engine.config.orgs.values():
        for system in org.systems:
            console.print(f"  {org.name}: POST {server.url}/hooks/{org.name}/{system}")
    console.print(f"  health: {server.url}/healthz  metrics: {server.url}/metrics")
    stop.wait()
    console.print("stopping: finishing in-flight batches")
    server.stop()
    clean = engine.stop()
    engine.close()
    raise SystemExit(EXIT_OK if clean else EXIT_PROBLEMS)


@cli.command("status")
@config_option("Config file.")
@click.option(
    "--dead-letters",
    "show_dead",
    is_flag=True,
    help="Also list dead letters with their remote error.",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def status_command(config_path: str, show_dead: bool, as_json: bool) -> None:
    """Per flow: lag, pending, last success, dead letters and denials; paused organisations
    and stopped flows (docs/errors.md).

    Exit code 0 when there are no dead letters and nothing is paused or stopped, 1 otherwise.
    """
    engine = _engine(config_path, as_json, pollers=False)
    try:
        statuses = engine.status()
        held = engine.holds()
        denials = {
            (e.org, e.flow, e.entity): e
            for e in reversed(engine.store.sync_log(outcome="denied", limit=1000))
        }
        dead = engine.store.dead_letters(limit=1000) if show_dead or as_json else []
        findings = engine.store.sync_log(outcome="finding", limit=50)
    finally:
        engine.close()
    rows = [
        {**attrs.asdict(s), "denied": sum(1 for k in denials if k[:2] == (s.org, s.flow))}
        for s in statuses
    ]
    total_dead = sum(r["dead_letters"] for r in rows)
    if as_json:
        _emit_json(
            {
                "flows": rows,
                "dead_letters": [attrs.asdict(d) for d in dead],
                "holds": [attrs.asdict(h) for h in held],
                "denials": [
                    {
                        "org": e.org,
                        "flow": e.flow,
                        "entity": e.entity,
                        "reason": e.message,
                        "at": e.at,
                    }
                    for e in denials.values()
                ],
                "findings": [
                    {
                        "org": e.org,
                        "flow": e.flow,
                        "entity": e.entity,
                        "message": e.message,
                        "at": e.at,
                    }
                    for e in findings
                ],
            }
        )
    else:
        console = _console()
        table = Table(title="eventsync status")
        for col in (
            "org",
            "flow",
            "pending",
            "in flight",
            "retrying",
            "lag",
            "last success",
            "dead letters",
            "denied",
        ):
            table.add_column(
                col, justify="right" if col not in ("org", "flow", "last success") else "left"
            )
        for r in rows:
            last = (
                r["last_success_at"].strftime("%Y-%m-%d %H:%M:%S") if r["last_success_at"] else "-"
            )
            table.add_row(
                r["org"],
                r["flow"],
                str(r["pending"]),
                str(r["leased"]),
                str(r["retrying"]),
                _age(r["lag_seconds"]),
                last,
                str(r["dead_letters"]),
                str(r["denied"]),
            )
        console.print(table)
        if held:
            ht = Table(title="held work (see docs/errors.md)")
            for col in ("state", "org", "flow", "last seen (UTC)", "reason", "what to do"):
                ht.add_column(col, overflow="fold")
            for h in held:
                todo = _HOLD_TODO[h.kind]
                seen = h.at.strftime("%Y-%m-%d %H:%M:%S")
                flow = h.flow if h.kind == "stopped" else "(all)"
                ht.add_row(h.kind.upper(), h.org, flow, seen, h.reason, todo)
            console.print(ht)
        if denials:
            den = Table(title="denied records (admitted again once the source changes)")
            for col in ("org", "flow", "entity", "reason"):
                den.add_column(col, overflow="fold")
            for e in denials.values():
                den.add_row(e.org, e.flow, e.entity, e.message)
            console.print(den)
        if findings:
            ft = Table(title="findings from the running engine (newest first)")
            for col in ("org", "flow", "entity", "finding"):
                ft.add_column(col, overflow="fold")
            for e in findings:
                ft.add_row(e.org, e.flow, e.entity, e.message)
            console.print(ft)
        if dead:
            dl = Table(title="dead letters (retry with: eventsync retry)")
            for col in ("id", "org", "flow", "entity", "attempts", "code", "remote error"):
                dl.add_column(col, overflow="fold")
            for d in dead:
                dl.add_row(str(d.id), d.org, d.flow, d.entity, str(d.attempts), d.code, d.message)
            console.print(dl)
    raise SystemExit(EXIT_OK if total_dead == 0 and not held else EXIT_PROBLEMS)


_HOLD_TODO = {
    "paused": "fix the credentials; work resumes by itself",
    "stopped": "fix the configuration, then restart",
}


@cli.command("retry")
@config_option("Config file.")
@click.option("--org", help="Only this organisation.")
@click.option("--flow", help="Only this flow.")
@click.option("--id", "ids", type=int, multiple=True, help="Only this dead letter (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def retry_command(
    config_path: str, org: str | None, flow: str | None, ids: tuple[int, ...], as_json: bool
) -> None:
    """Move dead letters back to the outbox so they are tried again.

    Exit code 2 when --org, --flow or --id names nothing that exists (nothing is moved then).
    """
    engine = _engine(config_path, as_json, pollers=False)
    try:
        problems = _retry_selection_problems(engine, org, flow, ids)
        if problems:
            for problem in problems:
                click.echo(f"error: {problem}", err=True)
            raise SystemExit(EXIT_USAGE)
        count = engine.store.retry_dead_letters(list(ids) or None, org=org, flow=flow)
    finally:
        engine.close()
    if as_json:
        _emit_json({"retried": count})
    else:
        click.echo(
            f"{count} dead letter(s) moved back to the outbox; `eventsync run` will sync them"
        )


def _retry_selection_problems(
    engine: Any, org: str | None, flow: str | None, ids: tuple[int, ...]
) -> list[str]:
    """What in a ``retry`` selection names nothing: an unknown org, a flow no org configures,
    dead-letter ids that do not exist (within the org/flow given)."""
    problems = []
    orgs = engine.config.orgs
    if org is not None and org not in orgs:
        problems.append(f"--org {org}: no such organisation (known: {', '.join(orgs) or 'none'})")
    flows = sorted({f for o in orgs.values() for f in o.flows})
    if flow is not None and flow not in flows:
        problems.append(f"--flow {flow}: no organisation configures it (flows: {', '.join(flows)})")
    if ids and not problems:
        known = {d.id for d in engine.store.dead_letters(org, flow, limit=1_000_000)}
        missing = [str(i) for i in ids if i not in known]
        if missing:
            problems.append(
                f"--id {', '.join(missing)}: no such dead letter"
                + (
                    f" of {org or ''}{'/' if org and flow else ''}{flow or ''}"
                    if org or flow
                    else ""
                )
                + " (list them with `eventsync status --dead-letters`)"
            )
    return problems


@cli.command("backfill")
@click.argument("flow")
@config_option("Config file.")
@click.option(
    "--org",
    "orgs",
    multiple=True,
    help="Only this organisation (repeatable; default: all with the flow).",
)
@click.option(
    "--restart",
    is_flag=True,
    help="Start over instead of resuming where the last backfill stopped.",
)
@click.option(
    "--mark-only",
    is_flag=True,
    help="Only queue the entities; a running `eventsync run` syncs them.",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def backfill_command(
    flow: str,
    config_path: str,
    orgs: tuple[str, ...],
    restart: bool,
    mark_only: bool,
    as_json: bool,
) -> None:
    """Sync every existing source record of FLOW (resumable, within the API budget).

    Exit code 0 when the backfill finished, 1 when it paused (budget) or records dead-lettered,
    130 when interrupted with Ctrl-C (run it again to resume).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    engine = _engine(config_path, as_json, pollers=False)
    names = list(orgs) or [o.name for o in engine.config.orgs.values() if flow in o.flows.enabled()]
    if not names:
        click.echo(f"error: no organisation has the flow {flow!r} configured", err=True)
        engine.close()
        raise SystemExit(EXIT_USAGE)
    results: dict[str, Any] = {}
    dead_before = engine.store.dead_letter_count(flow=flow)
    if not mark_only:
        engine.start()
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=_console(err=True),
            disable=as_json,
        ) as progress:
            for org in names:
                queued = progress.add_task(f"{org}: queued", total=None)
                result = engine.backfill(
                    org, flow, restart=restart, progress=lambda n, t=queued: progress.advance(t, n)
                )
                progress.update(queued, total=result.marked, completed=result.marked)
                if not mark_only:
                    synced = progress.add_task(f"{org}: synced", total=result.marked)
                    while True:
                        status = engine.store.flow_status(org, flow)
                        left = status.pending + status.leased
                        progress.update(synced, completed=max(0, result.marked - left))
                        if left == 0:
                            break
                        time.sleep(0.2)
                results[org] = attrs.asdict(result)
    except ConfigurationError as exc:
        _config_problems(exc, as_json)
        raise SystemExit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        # Ctrl-C is a person's choice, not a pause or a failure: say so, and how to go on.
        click.echo(
            f"interrupted: what was queued stays queued; `eventsync backfill {flow}` resumes "
            f"where this one stopped (--restart starts over)",
            err=True,
        )
        raise SystemExit(EXIT_INTERRUPTED) from None
    finally:
        engine.close()
    dead = engine.store.dead_letter_count(flow=flow) - dead_before if not mark_only else 0
    finished = all(r["finished"] for r in results.values())
    if as_json:
        _emit_json({"flow": flow, "orgs": results, "new_dead_letters": dead})
    else:
        for org, r in results.items():
            state = "finished" if r["finished"] else r["reason"]
            click.echo(f"{org}: {r['marked']} record(s) queued; {state}")
        if dead:
            click.echo(f"{dead} record(s) dead-lettered; see `eventsync status --dead-letters`")
    raise SystemExit(EXIT_OK if finished and not dead else EXIT_PROBLEMS)


@cli.command("demo")
@click.option("--crm", help="The CRM to run it with (default: the only one installed).")
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
    from .demo import Step, run_demo
    from .sandbox_env import choose_system

    hooks = Hooks(make_plugin_manager(environ={}))
    try:
        systems = [
            choose_system(hooks, "crm", crm),
            choose_system(hooks, "event_platform", platform),
        ]
    except ConfigurationError as exc:
        _sandbox_choice_failed(exc)
    console = _console()
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
        _config_problems(exc, as_json=False)
        raise SystemExit(EXIT_USAGE) from None
    ok = bool(steps) and all(s.ok for s in steps)
    console.print(
        f"all {len(steps)} steps happened" if ok else "the demo failed",
        style="bold green" if ok else "bold red",
    )
    raise SystemExit(EXIT_OK if ok else EXIT_PROBLEMS)


def main() -> None:
    """Entry point of the ``eventsync`` console script."""
    cli(prog_name="eventsync")


if __name__ == "__main__":  # pragma: no cover
    main()
