"""Watching the Salesforce sandbox for records to appear (shared by the real-time benchmarks)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import psutil
import requests


class Watcher:
    """Every 50 ms, reads ``url`` (the sandbox admin API's records of one object) and notes
    when ``key_of(row)`` first returns each key; samples ``process``'s peak RSS meanwhile.

    ``new_only``: read only the records created since the last read (``?skip=``), for keys
    that a record has from its creation: re-reading every record 20 times a second costs the
    sandboxes' process, which sends the webhooks, CPU that delays the very deliveries timed.
    """

    def __init__(
        self,
        session: requests.Session,
        url: str,
        tls: dict[str, Any],
        key_of: Callable[[dict[str, Any]], str | None],
        process: psutil.Process,
        *,
        new_only: bool = False,
    ) -> None:
        self.seen: dict[str, float] = {}
        self.peak_rss = 0
        self._stop = threading.Event()

        def watch() -> None:
            read = 0
            while not self._stop.is_set():
                rows = session.get(url, params={"skip": read} if new_only else None, **tls).json()
                read += len(rows)
                for row in rows:
                    key = key_of(row)
                    if key and key not in self.seen:
                        self.seen[key] = time.monotonic()
                self.peak_rss = max(self.peak_rss, process.memory_info().rss)
                self._stop.wait(0.05)

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop watching."""
        self._stop.set()
        self._thread.join()
