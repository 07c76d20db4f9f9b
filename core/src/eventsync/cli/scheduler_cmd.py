"""``eventsync scheduler``: pollers, upkeep and sweeps, one active instance
(docs/scale-out.md)."""

from __future__ import annotations

import functools
import logging
import time

import click

from .common import EXIT_OK, EXIT_PROBLEMS, config_option, console_for, log_options, start_logging
from .roles_common import scale_out_engine, stop_on_signals

log = logging.getLogger("eventsync.distributed")


@click.command("scheduler")
@config_option("Config file.")
@click.option(
    "--no-pollers", is_flag=True, help="Do not poll sources (sweeps and upkeep still run)."
)
@click.option(
    "--lock-seconds",
    type=click.FloatRange(min=1.0),
    default=30.0,
    show_default=True,
    help="Lease of the scheduler lock: how soon a standby takes over from a dead scheduler.",
)
@log_options
def scheduler_command(
    config_path: str,
    no_pollers: bool,
    lock_seconds: float,
    log_level: str | None,
    log_format: str | None,
) -> None:
    """Run the pollers, the upkeep (subscriptions, log pruning) and the sweeps, until
    SIGINT/SIGTERM.

    Exactly one scheduler is active: it holds a lock in the shared state database, renewed on the
    database's clock; start a second one as a standby and it takes over within --lock-seconds of
    the active one's end. Every [engine] sweep_interval seconds the active one dispatches a
    drain for every organisation and flow with rows in the outbox, so a lost broker message
    delays a record by one sweep at most. Exit 1 when the lock was lost (restart it).
    """
    from ..distributed import Dispatcher, SchedulerLock, Sweeper, make_celery
    from ..distributed.app import queue_of

    engine = scale_out_engine(
        config_path, "scheduler", pollers=not no_pollers, subscribe=True, run_executor=False
    )
    start_logging(engine, log_level, log_format)
    console = console_for(err=True)
    stop = stop_on_signals()
    lock = SchedulerLock(engine.store, lock_seconds)
    if not lock.wait_for(stop):
        engine.close()
        raise SystemExit(EXIT_OK)
    console.print(f"eventsync scheduler: active ({lock.holder})")
    dispatcher = Dispatcher(make_celery(engine.config), engine.config).start()
    engine.on_marked = dispatcher.request
    engine.start()
    sweeper = Sweeper(
        engine.store,
        dispatcher.request,
        waiting=dispatcher.waiting,
        queue_of=functools.partial(queue_of, engine.config),
    )
    interval, renew_every = engine.config.engine.sweep_interval, lock_seconds / 3
    tick = min(renew_every, interval)
    code, next_sweep, next_renewal = EXIT_OK, 0.0, 0.0
    while True:
        try:
            # Three renewals per lease, however short the sweep interval: not one per sweep.
            if time.monotonic() >= next_renewal:
                if not lock.try_acquire():
                    log.error("the scheduler lock was taken over by another scheduler; stopping")
                    code = EXIT_PROBLEMS
                    break
                next_renewal = time.monotonic() + renew_every
            if time.monotonic() >= next_sweep:
                sweeper.sweep()
                next_sweep = time.monotonic() + interval
        except Exception as exc:  # the database or broker is down: try again next tick
            log.warning("scheduler: %s", exc)
        if stop.wait(tick):
            break
    console.print("stopping: pollers and upkeep")
    engine.stop()
    dispatcher.stop()
    if code == EXIT_OK:
        lock.release()
    engine.close()
    raise SystemExit(code)
