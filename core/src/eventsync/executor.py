"""The embedded executor: worker threads that drain the outbox (docs/state-store.md).

Each worker leases a batch of up to 200 due rows of one (org, flow), calls the job function with
it and records one ``Outcome`` per item: ``done`` completes the row (unless it was re-marked
meanwhile), ``retry`` backs off, ``dead`` makes a dead letter. Every outcome is written to the
sync log. Idle workers poll every ``poll_interval`` seconds and wake at once on ``wake()``, which
the store triggers after every mark when ``wake_on_mark`` is on.

A job that raises never loses rows: the class of the exception decides what becomes of the
batch (``decisions.decide``, table in docs/errors.md). Record and fatal errors are dead-lettered
at once with the remote code; retryable errors and bugs back off and end in dead letters after
``max_attempts``; an authentication failure pauses the organisation (rows back to pending, no
attempt counted, leased again after ``auth_pause`` seconds, until a batch of it succeeds); a
configuration or discovery error stops the (org, flow) until the executor restarts, its rows
pending.

Shutdown (``stop()``, or SIGINT/SIGTERM once ``install_signal_handlers()`` ran): workers stop
leasing, an in-flight batch finishes and is recorded; a batch still running when the stop timeout
passes has its leases released so another process may take it (the job's late result is then
ignored, as the lease is no longer ours). A crash instead of a clean stop loses nothing either:
the leases expire and another worker takes the rows over.

Leases end by the database's clock, never this process's (``eventsync.store.base``), so engines
on machines whose clocks disagree never take over each other's live leases; the heartbeat and
the auth pause measure intervals with the monotonic clock.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, Literal

import attrs

from .decisions import Decision, decide
from .logs import fields
from .models import RemoteFailure
from .store import MAX_BATCH, Failed, OutboxItem, StateStore
from .store.outbox import completion_lines

__all__ = ["Outcome", "Job", "Executor", "ExecutorStats"]

log = logging.getLogger("eventsync.executor")


def _check_failure(instance: Outcome, _attr: Any, value: RemoteFailure | None) -> None:
    if instance.kind != "done" and value is None:
        raise ValueError(f"a {instance.kind!r} outcome needs the remote failure")


@attrs.frozen
class Outcome:
    """What became of one item of a batch. Build with ``done()``, ``retry()`` or ``dead()``."""

    kind: Literal["done", "retry", "dead"]
    failure: RemoteFailure | None = attrs.field(default=None, validator=_check_failure)
    retry_after: float | None = None
    message: str = ""

    @classmethod
    def done(cls, message: str = "") -> Outcome:
        """The target now matches the source; ``message`` goes to the sync log."""
        return cls("done", message=message)

    @classmethod
    def retry(cls, failure: RemoteFailure, retry_after: float | None = None) -> Outcome:
        """A transient failure: back off (at least ``retry_after`` seconds) and try again."""
        return cls("retry", failure, retry_after)

    @classmethod
    def dead(cls, failure: RemoteFailure) -> Outcome:
        """A failure retrying cannot fix (a record error): dead-letter with the remote text."""
        return cls("dead", failure)


#: The job function: one outcome per item, in the same order.
Job = Callable[[list[OutboxItem]], Sequence[Outcome]]


@attrs.define
class ExecutorStats:
    """Counters since start (read them for tests and metrics)."""

    batches: int = 0
    done: int = 0
    requeued: int = 0
    retried: int = 0
    dead: int = 0
    lost: int = 0
    released: int = 0
    job_errors: int = 0
    paused: int = 0
    stopped: int = 0


class Executor:
    """Worker threads that lease outbox batches from ``store`` and run ``job`` on them.

    :param workers: number of worker threads.
    :param batch_size: rows per lease (at most 200).
    :param lease_seconds: lease length; a heartbeat extends leases of long-running batches.
    :param poll_interval: how long an idle worker waits before leasing again (unless woken).
    :param org, flow: only work on this org and/or flow.
    :param wake_on_mark: wake idle workers whenever this store instance commits a mark.
    :param linger: wait up to this many seconds after a row was marked for more rows to join
        its batch (fewer, fuller remote calls at a small latency cost); 0 leases at once.
        Adaptive: the wait ends early once no row joined for ``linger_quiet`` seconds while
        fewer than a tenth of ``batch_size`` wait, so a lone change waits only that long, while
        in a burst (rows keep joining) the batch gathers for the whole ``linger`` or until it
        is full.
    :param linger_quiet: see ``linger``; default half of it.
    :param auth_pause: seconds an organisation's work waits after its credentials were refused.
    :param on_outcomes: called with ``(org, flow, [(outcome, error_class), ...])`` for every
        batch recorded (the engine's metrics; ``eventsync.metrics.ERROR_CLASSES``).
    """

    def __init__(
        self,
        store: StateStore,
        job: Job,
        *,
        workers: int = 2,
        batch_size: int = MAX_BATCH,
        lease_seconds: float = 60.0,
        poll_interval: float = 0.5,
        org: str | None = None,
        flow: str | None = None,
        name: str = "eventsync-worker",
        wake_on_mark: bool = True,
        linger: float = 0.0,
        linger_quiet: float | None = None,
        auth_pause: float = 60.0,
        on_outcomes: Callable[[str, str, list[tuple[str, str]]], None] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("an executor needs at least one worker")
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH}")
        self.store = store
        self.job = job
        self.workers = workers
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        self.poll_interval = poll_interval
        self.org = org
        self.flow = flow
        self.name = name
        self.wake_on_mark = wake_on_mark
        self.linger = linger
        self.linger_quiet = linger / 2 if linger_quiet is None else linger_quiet
        self._lingering = threading.local()  # per worker: the due count at its last look
        # One worker gathers a batch at a time; the others wait their turn. Two idle workers
        # lingering on the same rows both lease when it is old enough: one takes the batch,
        # the other the few rows that arrived in between, a remote call of their own.
        self._gathering = threading.Lock()
        self.auth_pause = auth_pause
        self.on_outcomes = on_outcomes
        self.stats = ExecutorStats()
        self._stopping = threading.Event()
        self._beat_stop = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._inflight: dict[str, list[OutboxItem]] = {}
        self._previous_handlers: dict[int, Any] = {}
        self._started = False
        # org -> monotonic time its pause ends; kept after that until a batch of it succeeds.
        self._paused: dict[str, float] = {}
        # (org, flow) -> why it stopped; cleared only by a restart.
        self._stopped: dict[tuple[str, str], str] = {}

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Executor:
        """Start the worker threads (and the lease heartbeat); returns self."""
        if self._started:
            raise RuntimeError("executor already started")
        self._started = True
        self._stopped.clear()  # a restart tries stopped flows again
        self._stopping.clear()
        if self.wake_on_mark:
            self.store.add_mark_listener(self.wake)
        for n in range(self.workers):
            worker_id = f"{self.name}-{n}@{_host_pid()}"
            thread = threading.Thread(
                target=self._work, args=(worker_id,), name=worker_id, daemon=True
            )
            self._threads.append(thread)
            thread.start()
        self.start_heartbeat()
        return self

    def start_heartbeat(self) -> None:
        """Start the thread extending the leases of in-flight batches (``start()`` does it; a
        process that calls ``run_once`` from threads of its own calls it once)."""
        self._beat_stop.clear()
        self._beat = threading.Thread(
            target=self._heartbeat, name=f"{self.name}-heartbeat", daemon=True
        )
        self._beat.start()

    def stop_heartbeat(self) -> None:
        """Stop the lease heartbeat started by ``start_heartbeat``."""
        self._beat_stop.set()
        if getattr(self, "_beat", None) is not None:
            self._beat.join(5.0)

    def wake(self) -> None:
        """Wake idle workers now instead of at their next poll (cheap; safe from any thread)."""
        self._wake.set()

    def request_stop(self) -> None:
        """Ask the workers to stop after their current batch; returns at once (signal-safe)."""
        self._stopping.set()
        self._wake.set()

    @property
    def stopping(self) -> bool:
        """True once a stop was requested."""
        return self._stopping.is_set()

    @property
    def paused_orgs(self) -> frozenset[str]:
        """Organisations whose credentials were refused and that have not succeeded since."""
        with self._lock:
            return frozenset(self._paused)

    @property
    def stopped_flows(self) -> dict[tuple[str, str], str]:
        """The (org, flow) pairs stopped by a configuration or discovery error, with why."""
        with self._lock:
            return dict(self._stopped)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop and wait up to ``timeout`` seconds for in-flight batches to be recorded.

        Batches still running after the timeout have their leases released. Returns True when
        every worker finished cleanly. Restores signal handlers installed by this executor.
        """
        self.request_stop()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        clean = not any(t.is_alive() for t in self._threads)
        if not clean:
            self.release_inflight()
        self.stop_heartbeat()
        if self.wake_on_mark:
            self.store.remove_mark_listener(self.wake)
        self.restore_signal_handlers()
        self._threads = [t for t in self._threads if t.is_alive()]
        self._started = False
        return clean

    def release_inflight(self) -> int:
        """Release the leases of every batch still running (a stop timeout passed), so another
        process may take their rows now; their late results are ignored. Returns how many."""
        with self._lock:
            stuck = [item for items in self._inflight.values() for item in items]
            self._inflight.clear()
        if not stuck:
            return 0
        released = self.store.release(stuck)
        self._count(released=released)
        log.warning("stop timeout: released %d leased rows of unfinished batches", released)
        return released

    def run(self, *, stop_timeout: float = 30.0) -> bool:
        """Start, handle SIGINT/SIGTERM (from the main thread), block until stopped, stop."""
        if threading.current_thread() is threading.main_thread():
            self.install_signal_handlers()
        self.start()
        while not self._stopping.wait(0.2):
            pass
        return self.stop(stop_timeout)

    def install_signal_handlers(self) -> None:
        """Make SIGINT and SIGTERM request a clean stop. Must be called from the main thread."""
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("install_signal_handlers() must be called from the main thread")

        def _handler(signum: int, _frame: FrameType | None) -> None:
            log.info("received %s: stopping after in-flight batches", signal.Signals(signum).name)
            self.request_stop()

        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous_handlers[sig] = signal.signal(sig, _handler)

    def restore_signal_handlers(self) -> None:
        """Put back the handlers ``install_signal_handlers`` replaced (main thread only)."""
        if not self._previous_handlers or threading.current_thread() is not threading.main_thread():
            return
        for sig, previous in self._previous_handlers.items():
            signal.signal(sig, previous)
        self._previous_handlers.clear()

    def __enter__(self) -> Executor:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ workers
    def _skips(self) -> tuple[frozenset[str], tuple[tuple[str, str], ...]]:
        """The organisations still in their pause and the stopped flows: not to be leased."""
        now = time.monotonic()
        with self._lock:
            orgs = frozenset(org for org, until in self._paused.items() if until > now)
            return orgs, tuple(self._stopped)

    def _linger(self, org: str | None = None, flow: str | None = None) -> bool:
        """True when the due batch (of ``org``/``flow`` when given) is partial, young and still
        growing: wait a little for it to fill. A small batch that gained no row during the last
        wait (``linger_quiet``) is quiet and goes at once; one that keeps growing waits up to
        ``linger``."""
        orgs, flows = self._skips()
        # The batch's age on the database's clock: a process clock behind the one that marked
        # the rows would otherwise linger for as long as the clocks disagree.
        count, age = self.store.peek_due(
            org=org or self.org,
            flow=flow or self.flow,
            limit=self.batch_size,
            skip_orgs=orgs,
            skip_flows=flows,
        )
        before, self._lingering.count = getattr(self._lingering, "count", 0), 0
        self._lingering.empty = not count
        if not count or count >= self.batch_size or age is None:
            return False
        left = self.linger - age
        # Old enough, or quiet: nothing joined during the last wait and the batch is small
        # (a burst stalled for a moment, with a tenth of a batch waiting, still gathers). A
        # count that fell means another worker leased meanwhile: the rest is a new batch, not
        # a quiet one (taking it at once made a burst's batches a handful of rows each).
        if left <= 0 or (0 < before == count and count * 10 < self.batch_size):
            return False
        self._lingering.count = count
        self._stopping.wait(min(left, self.linger_quiet, self.poll_interval))
        return True

    def _gather(self, worker_id: str) -> list[OutboxItem]:
        """Linger (when configured) and lease the next batch, one worker at a time."""
        if self.linger <= 0:
            return self._lease(worker_id, self.org, self.flow)
        with self._gathering:
            while not self._stopping.is_set() and self._linger():
                pass
            if getattr(self._lingering, "empty", False):
                # Nothing was due: rows committed since are a new batch, to gather (not to
                # take at once, a handful of them, as a lease now would).
                return []
            return self._lease(worker_id, self.org, self.flow)

    def _work(self, worker_id: str) -> None:
        while not self._stopping.is_set():
            try:
                items = self._gather(worker_id)
            except Exception:
                log.exception(
                    "%s: leasing failed; retrying in %.1fs", worker_id, self.poll_interval
                )
                self._stopping.wait(self.poll_interval)
                continue
            if not items:
                self._wake.wait(self.poll_interval)
                self._wake.clear()
                continue
            if self._stopping.is_set():
                self._count(released=self.store.release(items))
                break
            self._run_batch(worker_id, items)
            # Let the batch go before leasing the next: held through the lease, six workers'
            # finished batches (their snapshots) were alive beside the new ones.
            del items

    def run_once(self, worker_id: str, *, org: str | None = None, flow: str | None = None) -> int:
        """Lease one batch of due rows (of ``org`` and ``flow`` when given), run the job on it
        and record its outcomes: the step every worker thread repeats, public for workers that
        are not this executor's threads (``eventsync.distributed``). Returns how many rows were
        leased (0: nothing due). Lingers as the threads do (``linger``). The lease heartbeat
        must run (``start_heartbeat``)."""
        # The quiet test compares counts of one batch: this thread's last drain may have been
        # another org's.
        self._lingering.count = 0
        while self.linger > 0 and self._linger(org, flow):
            pass
        if self.linger > 0 and getattr(self._lingering, "empty", False):
            return 0  # nothing was due (see _gather)
        items = self._lease(worker_id, org or self.org, flow or self.flow)
        if items:
            self._run_batch(worker_id, items)
        return len(items)

    def _lease(self, worker_id: str, org: str | None, flow: str | None) -> list[OutboxItem]:
        orgs, flows = self._skips()
        return self.store.lease(
            worker_id,
            self.batch_size,
            self.lease_seconds,
            org=org,
            flow=flow,
            skip_orgs=orgs,
            skip_flows=flows,
        )

    def _run_batch(self, worker_id: str, items: list[OutboxItem]) -> None:
        with self._lock:
            self._inflight[worker_id] = items
        try:
            result = self._call_job(items)
            with self._lock:
                still_ours = self._inflight.pop(worker_id, None) is not None
            if still_ours:
                self._apply(items, result)
        except BaseException:
            with self._lock:
                leftover = self._inflight.pop(worker_id, None)
            if leftover:
                self._count(released=self.store.release(leftover))
            raise
        finally:
            self._count(batches=1)

    def _count(self, **increments: int) -> None:
        with self._lock:
            for name, n in increments.items():
                setattr(self.stats, name, getattr(self.stats, name) + n)

    def _apply(self, items: list[OutboxItem], result: list[Outcome] | Decision) -> None:
        """Record the job's outcomes, or carry out the decision for what it raised."""
        if not isinstance(result, Decision):
            self._resume(items)
            self._record_safely(items, result)
        elif result.action == "dead":
            self._record_safely(items, [Outcome.dead(result.failure)] * len(items))
        elif result.action == "retry":
            outcome = Outcome.retry(result.failure, result.retry_after)
            self._record_safely(items, [outcome] * len(items), "bug" if result.bug else None)
        else:
            self._hold_safely(items, result)

    def _record_safely(
        self, items: list[OutboxItem], outcomes: list[Outcome], error_class: str | None = None
    ) -> None:
        for attempt in range(1, 4):
            try:
                self._record(items, outcomes, error_class)
                return
            except Exception:
                log.exception("recording %d outcomes failed (attempt %d of 3)", len(items), attempt)
                time.sleep(0.2 * attempt)
        log.error(
            "gave up recording %d outcomes; their leases expire in %.0fs and the rows are retried",
            len(items),
            self.lease_seconds,
        )

    def _call_job(self, items: list[OutboxItem]) -> list[Outcome] | Decision:
        """The job's outcomes, or the decision for the exception it raised."""
        try:
            outcomes = list(self.job(list(items)))
            if len(outcomes) != len(items):
                raise RuntimeError(
                    f"job returned {len(outcomes)} outcomes for {len(items)} items (one per item, in order)"
                )
            return outcomes
        except Exception as exc:
            self._count(job_errors=1)
            decision = decide(exc)
            where = f"{len(items)} items of {items[0].org}/{items[0].flow}"
            context = fields(org=items[0].org, flow=items[0].flow, count=len(items))
            if decision.bug:
                log.exception(
                    "job failed on %s (a bug; retried with backoff)", where, extra=context
                )
            else:
                log.warning(
                    "job failed on %s (%s): %s: %s",
                    where,
                    decision.action,
                    decision.failure.code,
                    decision.failure.message,
                    extra={**context, "code": decision.failure.code},
                )
            return decision

    def _hold_safely(self, items: list[OutboxItem], decision: Decision) -> None:
        """Hold the batch back without an attempt: a paused org or a stopped flow."""
        org, flow = items[0].org, items[0].flow
        failure = decision.failure
        pause = decision.action == "pause_org"
        with self._lock:
            if pause:
                # Other batches of the org are not leased meanwhile: one refused login per
                # pause, not one per batch (repeated refusals can lock the remote user out).
                self._paused[org] = time.monotonic() + self.auth_pause
            else:
                self._stopped[(org, flow)] = failure.message
        context = fields(org=org, flow=flow, count=len(items), code=failure.code)
        if pause:
            log.warning(
                "%s: credentials refused (%s); its work pauses %gs",
                org,
                failure.message,
                self.auth_pause,
                extra=context,
            )
        else:
            log.error("%s/%s stopped until restart: %s", org, flow, failure.message, extra=context)
        # A stopped flow's rows are due at once, for whoever restarts: this executor skips them.
        delay = self.auth_pause if pause else 0.0
        outcome = "paused" if pause else "stopped"
        for attempt in range(1, 4):
            try:
                self.store.defer(items, delay, failure)
                break
            except Exception:
                log.exception("holding %d rows failed (attempt %d of 3)", len(items), attempt)
                time.sleep(0.2 * attempt)
        else:  # the leases expire and the rows are taken again; none is lost
            return
        self._count(**{outcome: len(items)})
        self._log_safely([_line(item, outcome, failure.message) for item in items])
        klass = "authentication" if pause else "configuration"
        self._observe(org, flow, [(outcome, klass)] * len(items))

    def _resume(self, items: list[OutboxItem]) -> None:
        """A batch of the org succeeded: its pause (if any) is over."""
        org = items[0].org
        with self._lock:
            was_paused = self._paused.pop(org, None) is not None
        if was_paused:
            log.info("%s: authenticated again; its work resumes", org, extra=fields(org=org))
            self._log_safely([(org, items[0].flow, "", "resumed", "a batch succeeded again")])

    def _log_safely(self, lines: Sequence[tuple[Any, ...]]) -> None:
        try:
            self.store.log_many(lines)
        except Exception:  # the outcome is recorded; a missing log line must not stop the worker
            log.exception("could not write %d sync-log lines", len(lines))

    def _observe(self, org: str, flow: str, outcomes: list[tuple[str, str]]) -> None:
        if self.on_outcomes is None or not outcomes:
            return
        try:
            self.on_outcomes(org, flow, outcomes)
        except Exception:  # metrics must never stop a worker
            log.exception("could not count the outcomes of a batch")

    def _record(
        self, items: list[OutboxItem], outcomes: list[Outcome], error_class: str | None = None
    ) -> None:
        lines: list[tuple[Any, ...]] = []
        done_lines: list[tuple[Any, ...]] = []
        classes: list[tuple[str, str]] = []
        done = [(i, o) for i, o in zip(items, outcomes, strict=True) if o.kind == "done"]
        failed = [(i, o) for i, o in zip(items, outcomes, strict=True) if o.kind != "done"]
        if done:
            # The sync log's lines of the completed items are written with them.
            finished, messages = [i for i, _ in done], [o.message for _, o in done]
            result = self.store.complete(finished, messages)
            done_lines = completion_lines(finished, messages, result)
            classes.extend((line[3], "none") for line in done_lines)
            self._count(
                done=len(result.completed),
                requeued=len(result.requeued),
                lost=len(done) - len(result.completed) - len(result.requeued),
            )
        if failed:
            results = self.store.fail_many(
                [
                    Failed(i, o.failure, retryable=o.kind == "retry", retry_after=o.retry_after)
                    for i, o in failed
                    if o.failure is not None
                ]
            )
            for (item, outcome), fate in zip(failed, results, strict=True):
                assert outcome.failure is not None
                text = f"{outcome.failure.code}: {outcome.failure.message}"
                detail = {"attempt": item.attempts + 1, "code": outcome.failure.code}
                if outcome.failure.fields:
                    detail["fields"] = list(outcome.failure.fields)
                lines.append((*_line(item, fate, text), detail))
                classes.append((fate, error_class or _error_class(outcome)))
                self._count(**{_STAT[fate]: 1})
        if lines:
            self._log_safely(lines)
        _log_outcomes(done_lines + lines)
        if items:
            self._observe(items[0].org, items[0].flow, classes)

    def _heartbeat(self) -> None:
        interval = max(0.05, self.lease_seconds / 3)
        while not self._beat_stop.wait(interval):
            self._extend_inflight()

    def _extend_inflight(self) -> None:
        """Extend the leases of the batches in flight now. A call of its own: the list of
        them must not outlive the beat, or every batch that finished meanwhile (its snapshots)
        stayed alive until the next one, a third of a lease later."""
        with self._lock:
            inflight = [item for items in self._inflight.values() for item in items]
        if inflight:
            try:
                self.store.extend(inflight, self.lease_seconds)
            except Exception:
                log.exception("could not extend %d leases", len(inflight))


_STAT = {"retry": "retried", "dead": "dead", "requeued": "requeued", "lost": "lost"}


def _error_class(outcome: Outcome) -> str:
    """The ``error_class`` metric label of a failed outcome."""
    if outcome.kind == "retry":
        return "retryable"
    if outcome.failure is not None and outcome.failure.code == "MAPPING_FAILED":
        return "mapping"
    return "record"


def _log_outcomes(lines: list[tuple[Any, ...]]) -> None:
    """One INFO line for the batch's outcomes, one WARNING line per dead letter, and a DEBUG
    line per record (its retry errors included)."""
    if not lines:
        return
    org, flow = lines[0][0], lines[0][1]
    tally: dict[str, int] = {}
    per_record = log.isEnabledFor(logging.DEBUG)  # else only dead letters get a line each
    for _, _, entity, outcome, message, *_detail in lines:
        tally[outcome] = tally.get(outcome, 0) + 1
        if outcome != "dead" and not per_record:
            continue
        context = fields(org=org, flow=flow, entity=entity, outcome=outcome)
        if outcome == "dead":
            code = message.partition(":")[0]
            log.warning(
                "%s/%s %s dead-lettered: %s",
                org,
                flow,
                entity,
                message,
                extra={**context, "code": code},
            )
        else:
            log.debug("%s/%s %s %s: %s", org, flow, entity, outcome, message, extra=context)
    summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(tally.items()))
    log.info(
        "batch of %s/%s: %s", org, flow, summary, extra=fields(org=org, flow=flow, count=len(lines))
    )


def _line(item: OutboxItem, outcome: str, message: str) -> tuple[str, str, str, str, str]:
    return (item.org, item.flow, item.entity, outcome, message)


def _host_pid() -> str:
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"
