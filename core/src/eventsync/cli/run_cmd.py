"""``eventsync run``: serve the endpoints and sync in real time."""

from __future__ import annotations

import click

from .. import __version__
from .common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    config_option,
    console_for,
    engine_for,
    log_options,
    start_logging,
)


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

    Endpoints: POST /hooks/ORG/hopin (Hopin deliveries), POST /hooks/ORG/salesforce
    (Outbound Messages), GET /livez, GET /readyz, GET /healthz, GET /metrics (Prometheus).
    Logs go to stderr (--log-level, --log-format text|json).
    """
    import signal
    import threading

    from ..server import serve

    engine = engine_for(config_path, pollers=not no_pollers)
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
    server = serve(engine, listen or engine.config.engine.listen)
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
