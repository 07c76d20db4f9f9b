"""``eventsync serve``: the receiving role of a scale-out deployment (docs/scale-out.md)."""

from __future__ import annotations

import click

from .. import __version__
from .common import (
    EXIT_OK,
    bind_server,
    config_option,
    console_for,
    log_options,
    refuse_bad_listen,
    start_logging,
)
from .roles_common import scale_out_engine, stop_on_signals


@click.command("serve")
@config_option("Config file.")
@click.option("--listen", help="host:port for the endpoints (default: [engine] listen).")
@log_options
def serve_command(
    config_path: str, listen: str | None, log_level: str | None, log_format: str | None
) -> None:
    """Receive notifications and dispatch their work to the workers, until SIGINT/SIGTERM.

    Serves the endpoints of `eventsync run` (POST /hooks/ORG/SYSTEM, /livez, /readyz,
    /healthz, /metrics) but syncs nothing itself: each notification's marks are stored in the
    shared state database, acknowledged, and a "drain" of the flow is sent to the Celery broker
    ([engine] broker), which `eventsync worker` processes take. Run as many as you like behind a
    load balancer. Needs a PostgreSQL [engine] state and a broker (exit 2 naming the fix).
    """
    from ..distributed import Dispatcher, make_celery

    refuse_bad_listen(listen)
    engine = scale_out_engine(
        config_path, "serve", pollers=False, subscribe=False, run_executor=False
    )
    server = bind_server(engine, listen)
    start_logging(engine, log_level, log_format)
    dispatcher = Dispatcher(make_celery(engine.config), engine.config).start()
    engine.on_marked = dispatcher.request
    stop = stop_on_signals()
    engine.start()
    server.start()
    console = console_for(err=True)
    console.print(f"eventsync {__version__} serve: receiving on {server.url}")
    stop.wait()
    console.print("stopping: no more requests; sending the drains noted")
    server.stop()
    dispatcher.stop()
    engine.close()
    raise SystemExit(EXIT_OK)
