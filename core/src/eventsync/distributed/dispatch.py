"""Sending "drain org X, flow F" to the workers, coalesced and off the request path.

A burst of notifications marks the same (org, flow) hundreds of times a second; one drain
message per pending (org, flow) is enough, as a drain leases until nothing is due. Marks only
note their (org, flow) in a set; one thread sends a message per noted pair, so the notification
is acknowledged without waiting for the broker. A message that cannot be sent (the broker is
down) is logged and dropped: the scheduler's sweep sends it again.

Written here rather than with Celery's own batching because the one thing needed (a set and a
thread) is smaller than any library wrapping it.
"""

from __future__ import annotations

import logging
import random
import threading
from typing import Any

from ..config import Config
from .app import DRAIN_TASK, queue_of

__all__ = ["Dispatcher"]

log = logging.getLogger("eventsync.distributed")


class Dispatcher:
    """Sends drain messages through ``app`` for the pairs ``request`` noted.

    :param app: the Celery application (``make_celery``).
    :param config: the configuration (each org's queue).
    """

    def __init__(self, app: Any, config: Config) -> None:
        self.app = app
        self.config = config
        self.sent = 0
        self.failed = 0
        self._due: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._probe: Any = None
        self._probe_lock = threading.Lock()

    def request(self, org: str, flow: str) -> None:
        """Note that (org, flow) has rows to drain; returns at once (any thread)."""
        with self._lock:
            self._due.add((org, flow))
        self._wake.set()

    def send(self, org: str, flow: str) -> bool:
        """Send one drain message now; False (logged) when the broker refused it."""
        try:
            self.app.send_task(DRAIN_TASK, args=[org, flow], queue=queue_of(self.config, org))
        except Exception as exc:  # the sweep sends it again
            self.failed += 1
            log.warning("could not dispatch a drain of %s/%s: %s", org, flow, exc)
            return False
        self.sent += 1
        return True

    def waiting(self, queue: str) -> int | None:
        """How many drain messages wait in ``queue`` for a worker (0 when the broker has no such
        queue: never declared, or emptied on Redis); None when the broker cannot say (down),
        which the sweep takes as "send". One connection kept for these questions."""
        with self._probe_lock:
            try:
                if self._probe is None:
                    self._probe = self.app.connection_for_read()
                channel = self._probe.default_channel
                try:
                    return int(channel.queue_declare(queue=queue, passive=True).message_count)
                except self._probe.channel_errors:
                    if not getattr(channel, "is_open", True):  # AMQP closes it on NOT_FOUND
                        self._drop_probe()
                    return 0
            except Exception as exc:
                self._drop_probe()
                log.warning("could not read the length of the queue %s: %s", queue, exc)
                return None

    def _drop_probe(self) -> None:
        probe, self._probe = self._probe, None
        if probe is not None:
            try:
                probe.close()
            except Exception:  # it is being dropped for failing already
                log.debug("closing the queue probe failed", exc_info=True)

    def start(self) -> Dispatcher:
        """Start the sending thread; returns self."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="dispatcher", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Send what is noted, then stop the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with self._probe_lock:
            self._drop_probe()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                due, self._due = self._due, set()
            # In no fixed order: with many orgs due at once, none always goes last.
            for org, flow in random.sample(sorted(due), len(due)):
                self.send(org, flow)
            if self._stop.is_set():
                return
