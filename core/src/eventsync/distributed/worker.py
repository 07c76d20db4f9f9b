"""The worker role: the ``drain(org, flow)`` task, run by Celery worker threads.

One Engine per worker process, built before Celery starts its thread pool; every task runs
``Executor.run_once`` (lease, run the flow, record the outcomes: the same step as the embedded
threads) until nothing of the pair is due, within the org's concurrency slot
(``limits.OrgSlots``, renewed while the drain runs). After ``MAX_BATCHES`` batches it sends the pair to the back of the queue
instead, so one org's backlog never keeps a thread from the others. Once the worker is told to
stop (SIGTERM: Celery's warm shutdown) a drain ends after its batch in flight is recorded; a
batch still running when the stop timeout passes (``StopTimeout``) has its leases and slot
released and the process ends, so a redeploy never waits for a slow remote system, nor do
other workers wait a full lease for its rows.

A worker describes the CRM objects of the flows it serves when it starts, on a thread of its
own (``warm_in_background``), as ``eventsync run`` does in ``Engine.start``: its first pushes
neither wait for nor pay the describes, and it takes drains meanwhile.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from collections.abc import Callable, Collection
from typing import Any

from ..engine import Engine
from ..logs import fields
from .app import DRAIN_TASK, queue_of
from .dispatch import Dispatcher
from .exclusive import StoreLocks
from .limits import OrgSlots

__all__ = ["DrainRunner", "StopTimeout", "register_drain", "warm_in_background", "MAX_BATCHES"]

log = logging.getLogger("eventsync.distributed")

#: Batches one drain message runs before it re-dispatches the pair (fairness between orgs).
MAX_BATCHES = 5


class DrainRunner:
    """Runs drains on ``engine`` (its executor's ``run_once``), within shared limits."""

    def __init__(self, engine: Engine, dispatcher: Dispatcher) -> None:
        self.engine = engine
        self.dispatcher = dispatcher
        eng = engine.config.engine
        self.slots = OrgSlots(engine.store, eng.org_concurrency, eng.lease_seconds)
        self.stopping = threading.Event()
        self.drains = 0
        self.busy = 0

    def drain(self, org: str, flow: str) -> int:
        """Run due batches of (org, flow) until none is due; returns the rows leased."""
        if org not in self.engine.config.orgs:
            log.warning("drain of %s/%s: no such organisation; ignored", org, flow)
            return 0
        holder = f"worker-{threading.get_ident()}@{socket.gethostname()}:{os.getpid()}"
        slot = self.slots.acquire(org, holder)
        if slot is None:  # every slot's holder drains until nothing is due
            self.busy += 1
            return 0
        self.drains += 1
        leased, more = 0, False
        try:
            for _ in range(MAX_BATCHES):
                # A slot lost (renewed too late: another drain of the org took it) ends the
                # drain; the pair goes back to the queue, to wait for a free slot.
                if self.stopping.is_set() or not self.slots.holds(org, slot, holder):
                    more = True
                    break
                count = self.engine.executor.run_once(holder, org=org, flow=flow)
                if not count:
                    break
                leased += count
            else:
                more = True
        finally:
            self.slots.release(org, slot, holder)
        if more:
            self.dispatcher.send(org, flow)
        if leased:
            log.debug(
                "drained %d rows of %s/%s", leased, org, flow, extra=fields(org=org, flow=flow)
            )
        return leased

    def release_all(self) -> int:
        """Release the leases of every batch in flight, the slots of every drain running and
        the parent locks of their pushes (the stop timeout passed); returns the rows released."""
        released = self.engine.executor.release_inflight()
        self.slots.release_all()
        if isinstance(self.engine.shared_locks, StoreLocks):  # the abandoned pushes' parents
            self.engine.shared_locks.release_all()
        return released

    def close(self) -> None:
        """Stop renewing slots (the worker is ending; any still held end with their lease)."""
        self.slots.close()


class StopTimeout:
    """Ends a stopping worker whose drains outlast ``seconds``: their batches' leases and slots
    are released first (``DrainRunner.release_all``), then the process exits 1, as
    ``eventsync run`` does after releasing at its stop timeout. Celery's warm shutdown alone
    would wait for the slowest remote call.

    :param exit: ends the process (``os._exit``: Celery's pool threads still run the slow calls
        and cannot be cancelled or joined).
    """

    def __init__(
        self, runner: DrainRunner, seconds: float, exit: Callable[[int], None] = os._exit
    ) -> None:
        self.runner = runner
        self.seconds = seconds
        self.exit = exit
        self.finished = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start counting (once the worker is told to stop); returns at once."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="stop-timeout", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        if self.finished.wait(self.seconds):
            return  # every drain ended in time
        released = self.runner.release_all()
        message = (
            f"eventsync worker: stop timeout ({self.seconds:g}s) passed; released {released} "
            "leased rows of unfinished batches for other workers"
        )
        log.warning(message)
        print(message, file=sys.stderr, flush=True)
        for handler in logging.getLogger().handlers:
            handler.flush()
        self.exit(1)


def register_drain(app: Any, runner: DrainRunner) -> Any:
    """Register the ``drain`` task on ``app``, run by ``runner``; returns the task."""

    @app.task(name=DRAIN_TASK, acks_late=True, reject_on_worker_lost=True, ignore_result=True)
    def drain(org: str, flow: str) -> int:
        return runner.drain(org, flow)

    return drain


def warm_in_background(engine: Engine, queues: Collection[str]) -> threading.Thread:
    """Describe, on a thread started now, the CRM objects the enabled flows write of every org
    whose drains go to one of ``queues`` (``Engine.warm_schemas``); returns the thread. Other
    orgs are left alone: this worker never drains them. A describe that fails is logged and
    the first push describes again; nothing here stops the worker."""
    config = engine.config
    others = {
        (org.name, org.crm)
        for org in config.orgs.values()
        if queue_of(config, org.name) not in queues
    }

    def warm() -> None:
        try:
            described = engine.warm_schemas(skip=others)
        except Exception:  # a worker without warm schemas still works: its pushes describe
            log.warning("describing the CRM objects at start failed", exc_info=True)
            return
        log.info("described %d CRM objects of the flows this worker serves", described)

    thread = threading.Thread(target=warm, name="warm-schemas", daemon=True)
    thread.start()
    return thread
