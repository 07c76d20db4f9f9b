"""``eventsync run``: serve the endpoints and sync in real time."""

from __future__ import annotations

import click

from .. import __version__
from ..checks import OrgCheck, check_org
from ..config import Config, secrets_env
from ..errors import ConfigurationError
from .common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    bind_server,
    config_option,
    console_for,
    engine_for,
    hooks_for,
    load,
    log_options,
    refuse_bad_listen,
    start_logging,
)

#: Finding codes of ``check`` that mean a system cannot be reached or refused the credentials
#: (exit 3: the same file may work later); every other error is the file's (exit 2).
UNAVAILABLE_CODES = frozenset({"authentication", "connection"})


def startup_checks(config: Config) -> list[OrgCheck]:
    """What ``eventsync check`` verifies, online, for every organisation (changes nothing)."""
    hooks = hooks_for(config)
    env = secrets_env(config)
    return [check_org(config, name, hooks, online=True, env=env) for name in config.orgs]


def refuse_start(checks: list[OrgCheck]) -> None:
    """Exit naming every error finding: 2 when any is the configuration's, else 3."""
    errors = [(c.org, f) for c in checks for f in c.findings if f.severity == "error"]
    if not errors:
        return
    click.echo(
        f"eventsync run: not starting, `eventsync check` finds {len(errors)} error(s):", err=True
    )
    for org, finding in errors:
        fix = f" (fix: {finding.fix})" if finding.fix and finding.fix not in finding.message else ""
        click.echo(f"  {org}: {finding.code}: {finding.message}{fix}", err=True)
    unavailable = all(f.code in UNAVAILABLE_CODES for _, f in errors)
    raise SystemExit(EXIT_UNAVAILABLE if unavailable else EXIT_USAGE)


@click.command("run")
@config_option("Config file.")
@click.option("--listen", help="host:port for the endpoints (default: [engine] listen).")
@click.option(
    "--no-pollers", is_flag=True, help="Only react to notifications; do not poll sources."
)
@log_options
def run_command(
    config_path: str,
    listen: str | None,
    no_pollers: bool,
    log_level: str | None,
    log_format: str | None,
) -> None:
    """Serve the notification endpoints and sync in real time until SIGINT/SIGTERM (SIGHUP is
    ignored, with a line saying so).

    First runs what `eventsync check` runs and refuses to start on an error, naming each: exit
    2 when the configuration is at fault, 3 when a system cannot be reached or refuses the
    credentials (and nothing else is wrong). Then subscribes to the systems' notifications
    (as `eventsync subscribe` does).

    Endpoints: POST /hooks/ORG/hopin (Hopin deliveries), POST /hooks/ORG/salesforce
    (Outbound Messages), GET /livez, GET /readyz, GET /healthz, GET /metrics (Prometheus).
    Logs go to stderr (--log-level, --log-format text|json).
    """
    import signal
    import threading

    address = listen or None
    refuse_bad_listen(address)
    config = load(config_path, as_json=False)
    try:
        refuse_start(startup_checks(config))
    except ConfigurationError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    engine = engine_for(config_path, pollers=not no_pollers)
    server = bind_server(engine, address)
    start_logging(engine, log_level, log_format)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    console = console_for(err=True)
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
    server.start()
    console.print(f"eventsync {__version__} listening on {server.url}")
    for org in engine.config.orgs.values():
        for system in org.systems:
            console.print(f"  {org.name}: POST {server.url}/hooks/{org.name}/{system}")
    console.print(
        f"  health: {server.url}/livez {server.url}/readyz  metrics: {server.url}/metrics"
    )
    stop.wait()
    console.print("stopping: finishing in-flight batches")
    server.stop()
    clean = engine.stop()
    engine.close()
    raise SystemExit(EXIT_OK if clean else EXIT_PROBLEMS)
