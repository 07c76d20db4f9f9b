"""Reading flow sources: pollers, backfills, related records and missed triggers.

A scan streams a flow's source from its saved ``(timestamp, id)`` position, marks what it finds
in chunks (with a snapshot of each record, see ``Flow.snapshot``) and saves the position after
each chunk, so an interrupted poll or backfill resumes where it stopped. Pollers also remember
the changes they saw, to tell ``trigger_missed`` about those no notification announced in time.

Idle means idle: a poll re-reads a few seconds before its watermark (the request's overlap, for
late commits), so each poller remembers the version (modified time) of every record its last
scan returned and marks a record again only when its version is new (or, once, when the version
was the newest of its read and a same-second change could hide behind it: ``scan_memory``). A dead letter is marked
by a poll only when its source changed after the last failure (a notification or ``eventsync
retry`` still retries it). Due entities (``Flow.due_entities``) are marked once each while they
stay due. The memory is per process: after a restart the first poll marks the overlap once.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import attrs

from .budget import Budget
from .flows.base import Flow
from .logs import fields
from .models import Record, Watermark
from .scan_memory import ScanMemory, SeenVersion, unsettled
from .store import MAX_BATCH

if TYPE_CHECKING:
    from .engine import Engine

log = logging.getLogger("eventsync.polling")

__all__ = ["BackfillResult", "SourceScanner", "MARK_CHUNK"]

log = logging.getLogger("eventsync.polling")

MARK_CHUNK = 500
#: A backfill watermark at the epoch means "start from the beginning".
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@attrs.frozen
class BackfillResult:
    """What a backfill did: entities marked, and whether it finished or paused (budget)."""

    marked: int
    finished: bool
    reason: str = ""


class SourceScanner:
    """Reads the sources of one engine's flows and marks what changed."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._notified: dict[tuple[str, str, str], float] = {}
        self._awaiting: dict[tuple[str, str], dict[str, Any]] = {}
        # (org, flow, source) -> {entity or record id: version} of the last scan (see above).
        self._versions: dict[tuple[str, str, str], dict[str, SeenVersion]] = {}
        # (org, flow) -> the due entities already marked while they stay due.
        self._due: dict[tuple[str, str], set[str]] = {}
        #: (org, flow) -> polls finished (tests and bench/idle.py wait for polls with it).
        self.polls: dict[tuple[str, str], int] = {}

    def notified(self, org_name: str, flow_name: str, entities: Iterable[str]) -> None:
        """Remember that a notification announced these entities (for trigger drift)."""
        now = time.time()
        with self._lock:
            for entity in entities:
                self._notified[(org_name, flow_name, entity)] = now

    def scan(
        self,
        org_name: str,
        flow_name: str,
        request_for: Callable[[Watermark | None], Any],
        source_key: Callable[[str], str],
        progress: Callable[[int], None] | None = None,
        should_pause: Callable[[], str] | None = None,
        seen: Callable[[str, Any], None] | None = None,
        remember: bool = False,
        chunk_size: int = MARK_CHUNK,
    ) -> BackfillResult:
        """Stream a flow's source from its saved position and mark what it finds, in chunks;
        the position is saved after each chunk, so an interrupted scan resumes. With
        ``remember`` (pollers), a record whose version the last scan saw is not marked again,
        nor a dead letter whose source did not change since it failed. ``chunk_size`` is how
        many marks one chunk (one transaction, one saved position) takes."""
        flow = self.engine.require_flow(org_name, flow_name)
        ctx = self.engine.context(org_name)
        request = request_for(None)
        if request is None:
            return BackfillResult(0, True, "this flow has no source to read")
        watermark_key = source_key(request.object)
        since = self.engine.store.get_watermark(org_name, flow_name, watermark_key)
        request = request_for(since)
        marked = 0
        chunk: dict[str, Any] = {}
        changed: dict[str, dt.datetime] = {}
        last: Watermark | None = None
        memory = (org_name, flow_name, watermark_key)
        seen_now = ScanMemory(self._versions.get(memory, {}) if remember else {})

        def flush() -> None:
            nonlocal marked, chunk, changed
            if remember and changed:
                failed = self.engine.store.dead_letter_times(org_name, flow_name, list(changed))
                for entity, at in failed.items():
                    if changed[entity] <= at:
                        chunk.pop(entity, None)
            position = (watermark_key, last) if last is not None else None
            if chunk:
                # The marks and the position they reach are saved in one transaction.
                marked += self.engine.store.mark_many(
                    org_name, flow_name, chunk, hint="poll", watermark=position
                )
                if progress:
                    progress(len(chunk))
                chunk = {}
            elif position is not None:
                self.engine.store.set_watermark(org_name, flow_name, *position)
            changed = {}

        for record in ctx.pull(flow.source_role, request):
            entity = flow.entity_of(ctx, record)
            version = _version(record)
            if entity and remember and version is not None:
                modified = _aware(record.modified_at) if record.modified_at is not None else None
                if not seen_now.should_mark(entity, version, modified):
                    entity = ""  # read again in the overlap: nothing changed
                elif modified is not None:
                    changed[entity] = modified
            if entity:
                # A snapshot of what was just read spares the job a second read (see Flow.snapshot).
                chunk[entity] = flow.snapshot(ctx, record)
                if seen is not None and since is not None:
                    seen(entity, record)
            if record.modified_at is not None and record.id:
                last = Watermark(record.modified_at, record.id)
            if len(chunk) >= chunk_size:
                flush()
                reason = should_pause() if should_pause else ""
                if reason:
                    return BackfillResult(marked, False, reason)
        flush()
        if remember:
            self._versions[memory] = seen_now.result()
        return BackfillResult(marked, True)

    def poll_once(self, org_name: str, flow_name: str) -> int:
        """Read the flow's source since its watermark and mark what changed; returns the count.

        With the flow's ``trigger_window`` set, changes the poller saw are remembered, and those
        no notification announced within the window are reported through ``trigger_missed``.
        """
        flow = self.engine.flows[flow_name]
        ctx = self.engine.context(org_name)
        if self._over_poll_budget(org_name, flow):
            return 0
        window = getattr(
            getattr(self.engine.config.org(org_name).flows, flow_name), "trigger_window", None
        )
        awaiting = self._awaiting.setdefault((org_name, flow_name), {})

        def seen(entity: str, record: Any) -> None:
            if (
                record.modified_at is not None
                and record.modified_at.timestamp() >= self.engine.started_at
            ):
                awaiting.setdefault(entity, record)

        result = self.scan(
            org_name,
            flow_name,
            lambda since: flow.poll_request(ctx, since),
            lambda obj: f"poll:{obj}",
            seen=seen if window is not None else None,
            remember=True,
        )
        if window is not None:
            self.report_missed_triggers(org_name, flow_name, window, awaiting)
        due_now = set(flow.due_entities(ctx))
        marked_due = self._due.get((org_name, flow_name), set())
        due = self.engine.mark(org_name, flow_name, sorted(due_now - marked_due), hint="due")
        self._due[(org_name, flow_name)] = due_now
        total = result.marked + due + self.poll_related(org_name, flow)
        with self._lock:
            self.polls[(org_name, flow_name)] = self.polls.get((org_name, flow_name), 0) + 1
        if total:
            log.info(
                "poll of %s/%s found %d changed",
                org_name,
                flow_name,
                total,
                extra=fields(org=org_name, flow=flow_name, count=total),
            )
        return total

    def _over_poll_budget(self, org_name: str, flow: Flow) -> bool:
        """True when a system of the organisation has used its poll share of the daily allowance (``eventsync.budget``): the run is skipped, real time goes on."""
        for budget in self.engine.budgets(org_name):
            if not budget.allows("poll"):
                log.info(
                    "org %s, flow %s: poll skipped: %s", org_name, flow.name, budget.describe()
                )
                return True
        return False

    def poll_related(self, org_name: str, flow: Flow) -> int:
        """Re-mark entities whose related records changed (e.g. the Lead behind a CampaignMember
        whose opt-out changed), each related source with its own watermark. A related source
        seen for the first time starts from now: the main poller already covered the past."""
        ctx = self.engine.context(org_name)
        marked = 0
        for related in flow.related_sources(ctx):
            key = f"related:{related.name}"
            since = self.engine.store.get_watermark(org_name, flow.name, key)
            if since is None:
                now = dt.datetime.now(dt.UTC)
                self.engine.store.set_watermark(org_name, flow.name, key, Watermark(now, ""))
                continue
            last: Watermark | None = None
            batch: list[Any] = []
            memory = (org_name, flow.name, key)
            seen_now = ScanMemory(self._versions.get(memory, {}))
            for record in ctx.pull(flow.source_role, related.request(since)):
                version = _version(record)
                if record.id and version is not None:
                    modified = _aware(record.modified_at) if record.modified_at else None
                    if not seen_now.should_mark(record.id, version, modified):
                        continue  # read again in the overlap: nothing changed
                batch.append(record)
                if record.modified_at is not None and record.id:
                    last = Watermark(record.modified_at, record.id)
                if len(batch) >= 200:
                    marked += self.engine.mark(
                        org_name, flow.name, related.entities(batch), hint="related"
                    )
                    batch = []
            if batch:
                marked += self.engine.mark(
                    org_name, flow.name, related.entities(batch), hint="related"
                )
            if last is not None:
                self.engine.store.set_watermark(org_name, flow.name, key, last)
            self._versions[memory] = seen_now.result()
        return marked

    def settling(self, org_name: str, flow_name: str) -> int:
        """How many records the flow's pollers will still mark once more, their versions not
        yet settled (``eventsync.scan_memory``); 0 once a source has been quiet for a while."""
        return sum(
            unsettled(memory)
            for key, memory in list(self._versions.items())
            if key[:2] == (org_name, flow_name)
        )

    def forget(self, org_name: str, flow_name: str) -> None:
        """Forget what the pollers of a flow saw (its next poll marks the overlap again)."""
        for key in [k for k in self._versions if k[:2] == (org_name, flow_name)]:
            del self._versions[key]
        self._due.pop((org_name, flow_name), None)

    def report_missed_triggers(
        self, org_name: str, flow_name: str, window: float, awaiting: dict[str, Any]
    ) -> None:
        """Report, through ``trigger_missed``, changes no notification announced in time."""
        now = time.time()
        ctx = self.engine.context(org_name)
        for entity, record in list(awaiting.items()):
            changed = record.modified_at.timestamp()
            with self._lock:
                notified = self._notified.get((org_name, flow_name, entity), 0.0)
            if notified >= changed - 1.0:
                del awaiting[entity]
            elif now - changed >= window:
                del awaiting[entity]
                waited = now - changed
                self.engine.store.log(
                    org_name,
                    flow_name,
                    entity,
                    "trigger_missed",
                    f"no notification within {window:.0f}s of the change; synced by the poller",
                )
                for finding in ctx.hooks.trigger_missed(flow_name, record, ctx.org, waited):
                    self.engine.store.log(
                        org_name,
                        flow_name,
                        entity,
                        "finding",
                        f"{finding.source}: {finding.message} Fix: {finding.fix}".strip(),
                    )
        with self._lock:  # forget notifications older than an hour
            for key in [k for k, at in self._notified.items() if now - at > 3600]:
                del self._notified[key]

    def backfill(
        self,
        org_name: str,
        flow_name: str,
        *,
        restart: bool = False,
        progress: Callable[[int], None] | None = None,
        budget_share: float | None = None,
        max_pending: int | None = None,
    ) -> BackfillResult:
        """Mark every source entity of a flow, resumably, within the API budget.

        Progress is saved after each chunk, so an interrupted backfill resumes where it stopped
        (``restart`` starts over). It pauses when the CRM reports more than ``budget_share`` of
        its daily allowance used, and waits while more than ``max_pending`` rows of the flow are
        queued so real-time work is never stuck behind a whole backfill.
        """
        flow = self.engine.require_flow(org_name, flow_name)
        ctx = self.engine.context(org_name)
        share = (
            self.engine.config.engine.backfill_budget_share
            if budget_share is None
            else budget_share
        )
        ceiling = max_pending or self.engine.config.engine.batch_size * 4 * max(
            1, self.engine.config.engine.workers
        )
        if restart:
            request = flow.backfill_request(ctx)
            if request is not None:
                self.engine.store.set_watermark(
                    org_name,
                    flow_name,
                    f"backfill:{request.object}",
                    Watermark(_EPOCH, ""),
                    force=True,
                )

        def usage() -> Budget | None:
            return self.engine.budget_of(org_name, self.engine.connection(org_name, "crm"))

        # The usage the last check saw (at first: of a live connection, without connecting: a
        # backfill needing no CRM call need not sign in), and whether the CRM reports none.
        crm = self.engine.config.org(org_name).crm
        live = [b for b in self.engine.budgets(org_name) if b.system == crm]
        seen: dict[str, Any] = {"usage": live[0] if live else None, "silent": False}

        def fresh_usage() -> Budget | None:
            """The CRM's usage once an answer since the last check reported it. The usage is
            the one the last answer carried, and only this process's workers' calls bring it
            up to date: a full, fast chunk could otherwise be marked before any answer to the
            work already queued, and the backfill run ahead of its budget. Waits (up to a
            lease) only while work of the flow is queued; a CRM whose queue drained without
            reporting any usage reports none, and is not waited for again."""
            budget, before = usage(), seen["usage"]
            deadline = time.monotonic() + self.engine.config.engine.lease_seconds
            while (
                not seen["silent"]
                and self.engine.executor_running
                and _same_usage(budget, before)
                and time.monotonic() < deadline
            ):
                status = self.engine.store.flow_status(org_name, flow_name)
                if not status.pending + status.leased:
                    seen["silent"] = budget is None
                    break
                if self.engine.stopping.wait(0.05):
                    break
                budget = usage()
            seen["usage"] = budget
            return budget

        # Checked after each chunk, not before the first: the usage is the one the last answer
        # reported, and only calls made since (the chunk's own work) bring it up to date.
        def over_budget() -> str:
            budget = fresh_usage()
            if budget is not None and budget.share >= share:
                return (
                    f"paused: {budget.used}/{budget.limit} API calls used "
                    f"(budget {share:.0%}); run the backfill again later to resume"
                )
            return ""

        def should_pause() -> str:
            if reason := over_budget():
                return reason
            while (
                self.engine.executor_running
                and self.engine.store.flow_status(org_name, flow_name).pending > ceiling
            ):
                # Several batches are queued: a coarse look is enough (each costs a query).
                if self.engine.stopping.wait(0.2):
                    return "stopped"
            return ""

        def request_for(since: Watermark | None) -> Any:
            base = flow.backfill_request(ctx)
            if base is None or since is None or since.timestamp <= _EPOCH:
                return base
            return attrs.evolve(base, since=since, overlap=0.0)

        # A chunk is at least a whole lease, marked in one transaction: every batch a worker
        # leases is then full, and the CRM plugin packs it into the fewest calls (Composite).
        chunk_size = min(MAX_BATCH, max(MARK_CHUNK, self.engine.config.engine.batch_size))
        return self.scan(
            org_name,
            flow_name,
            request_for,
            lambda obj: f"backfill:{obj}",
            progress=progress,
            should_pause=should_pause,
            chunk_size=chunk_size,
        )


def _same_usage(one: Budget | None, other: Budget | None) -> bool:
    """Whether two readings of a system's usage are the same answer's (any call moves it)."""
    if one is None or other is None:
        return one is other
    return (one.used, one.limit) == (other.used, other.limit)


def _version(record: Record) -> str | None:
    """What tells two reads of a record apart: its modified time, and whether it is deleted (a
    deletion need not move the time); None when it has no time."""
    if record.modified_at is None:
        return None
    return record.modified_at.isoformat() + ("|deleted" if record.deleted else "")


def _aware(at: dt.datetime) -> dt.datetime:
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
