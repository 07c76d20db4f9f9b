"""What the scale-out commands (``serve``, ``worker``, ``scheduler``) share: refusing a
configuration they cannot run with, and the stop signals."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click

from ..errors import ConfigurationError
from .common import EXIT_USAGE, engine_for, load

__all__ = ["scale_out_engine", "stop_on_signals"]


def scale_out_engine(config_path: str, role: str, **kwargs: Any) -> Any:
    """The engine of ``role`` (``Engine`` keyword arguments in ``kwargs``); exit 2 naming each
    problem when the configuration cannot run it (SQLite state, no broker, no Celery). Its
    plugins are offered locks shared with the other processes (``Engine.shared_locks``)."""
    from ..distributed import StoreLocks, require_scale_out

    config = load(config_path, as_json=False)
    try:
        require_scale_out(config, role)
    except ConfigurationError as exc:
        click.echo(f"eventsync {role}: not starting:", err=True)
        for problem in exc.problems:
            click.echo(f"  error: {problem}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    engine = engine_for(config_path, **kwargs)
    engine.shared_locks = StoreLocks.for_engine(engine)
    return engine


def stop_on_signals() -> threading.Event:
    """An event SIGINT and SIGTERM set (call from the main thread)."""
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    return stop
