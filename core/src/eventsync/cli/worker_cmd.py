"""``eventsync worker``: a Celery worker running flow batches (docs/scale-out.md)."""

from __future__ import annotations

import os

import click

from .common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    config_option,
    console_for,
    log_options,
    start_logging,
)
from .roles_common import scale_out_engine


@click.command("worker")
@config_option("Config file.")
@click.option(
    "--queues",
    default="",
    help="Comma-separated queues to take drains from (default: eventsync, the queue of every "
    "organisation that names no [orgs.X] queue).",
)
@click.option(
    "--concurrency", type=click.IntRange(min=1), help="Threads (default: [engine] workers)."
)
@click.option(
    "--stop-timeout",
    type=click.FloatRange(min=0),
    default=30.0,
    show_default=True,
    help="Seconds a stopping worker waits for its batches in flight; then their leases are "
    "released for other workers and it exits 1.",
)
@log_options
def worker_command(
    config_path: str,
    queues: str,
    concurrency: int | None,
    stop_timeout: float,
    log_level: str | None,
    log_format: str | None,
) -> None:
    """Run flow batches dispatched through the broker until SIGTERM (then in-flight batches are
    recorded, or released when they outlast --stop-timeout).

    A Celery worker (thread pool) whose tasks each drain one organisation's flow: lease due rows
    from the shared outbox, run the flow, record the outcomes. At most [engine] org_concurrency
    batches of one organisation run at once across all workers. Needs a PostgreSQL [engine]
    state and a broker (exit 2 naming the fix). `celery inspect` and Flower see it as
    eventsync-worker-PID@HOST.
    """
    from celery.signals import worker_ready, worker_shutting_down

    from ..distributed import Dispatcher, make_celery
    from ..distributed.app import DEFAULT_QUEUE
    from ..distributed.worker import (
        DrainRunner,
        StopTimeout,
        register_drain,
        warm_in_background,
    )

    engine = scale_out_engine(
        config_path, "worker", pollers=False, subscribe=False, run_executor=False
    )
    start_logging(engine, log_level, log_format)
    chosen = [q.strip() for q in queues.split(",") if q.strip()] or [DEFAULT_QUEUE]
    app = make_celery(engine.config)
    dispatcher = Dispatcher(app, engine.config).start()
    # Marks a flow makes while it runs (follow-up work) are drained without waiting for a sweep.
    engine.on_marked = dispatcher.request
    runner = DrainRunner(engine, dispatcher)
    register_drain(app, runner)
    timeout = StopTimeout(runner, stop_timeout)

    def shutting_down(**_: object) -> None:
        runner.stopping.set()
        timeout.start()

    worker_shutting_down.connect(shutting_down, weak=False)
    console = console_for(err=True)
    worker_ready.connect(
        lambda sender, **_: console.print(
            f"eventsync worker: ready ({sender.hostname}, queues {','.join(chosen)})"
        ),
        weak=False,
    )
    threads = concurrency or engine.config.engine.workers
    engine.executor.start_heartbeat()
    # While Celery starts: its first drains take the schemas from here rather than describe.
    warm_in_background(engine, chosen)
    argv = [
        "worker",
        "--pool=threads",
        f"--concurrency={threads}",
        f"--queues={','.join(chosen)}",
        f"--hostname=eventsync-worker-{os.getpid()}@%h",
        "--without-mingle",
        "--without-gossip",
        f"--loglevel={(log_level or engine.config.engine.log_level).upper()}",
    ]
    code = EXIT_OK
    try:
        app.worker_main(argv)
    except SystemExit as exc:
        code = EXIT_OK if exc.code in (None, 0) else EXIT_PROBLEMS
    finally:
        timeout.finished.set()
        dispatcher.stop()
        runner.close()
        engine.executor.stop_heartbeat()
        engine.close()
    raise SystemExit(code)
