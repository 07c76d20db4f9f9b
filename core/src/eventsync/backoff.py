"""Exponential backoff with jitter, and one switch that removes the waits in tests.

Every retry loop in eventsync and its plugins computes delays with ``delay()`` and waits with
``wait()``; ``disabled()`` (used by the ``no_backoff`` fixture of ``eventsync.testing``) turns
every wait into a no-op so fault-injection tests run at full speed while still exercising the
same code path.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator

__all__ = ["delay", "wait", "disabled", "scale"]

_global_scale = 1.0


def scale() -> float:
    """The factor applied to every wait (1.0 normally, 0.0 when disabled)."""
    return _global_scale


def delay(attempt: int, base: float = 1.0, cap: float = 300.0, jitter: float = 0.25) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): ``base * 2**(attempt-1)``,
    capped at ``cap``, with +/- ``jitter`` proportional randomisation so retries spread out."""
    raw = min(cap, base * (2 ** max(0, attempt - 1)))
    spread = raw * jitter
    return max(0.0, raw + random.uniform(-spread, spread))


def wait(seconds: float) -> None:
    """Sleep ``seconds`` times the current scale."""
    seconds *= scale()
    if seconds > 0:
        time.sleep(seconds)


@contextlib.contextmanager
def disabled() -> Iterator[None]:
    """Within this block, in every thread, ``wait()`` returns at once."""
    global _global_scale
    previous = _global_scale
    _global_scale = 0.0
    try:
        yield
    finally:
        _global_scale = previous
