"""Waiting for an effect to become visible (demo steps, tests, benchmarks)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["wait_until"]

T = TypeVar("T")


def wait_until(
    what: str, probe: Callable[[], T], timeout: float = 30.0, interval: float = 0.05
) -> T:
    """Call ``probe`` until it returns something truthy and return that.

    :raises TimeoutError: naming ``what`` when ``timeout`` seconds pass first.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)
