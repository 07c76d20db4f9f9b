"""What every flow is made of, and the context a flow runs in.

A flow is level-triggered (DESIGN.md section 4): a trigger or a poller only says "entity X may
have changed"; ``run_batch`` reads the current state of up to 200 such entities from the source
and makes the target match, returning one Outcome per item. Flows call remote systems only
through the hooks, with the CRM and the event platform as roles, so a new CRM plugin gets every
flow unchanged.

The event-platform objects flows rely on (``registration``, ``ticket``, ``magicLink``,
``attendance``) and their fields are listed in ``docs/flows.md``.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, ClassVar, Literal

import attrs

from ..config import Config, OrgConfig
from ..errors import MappingError, RetryableError
from ..executor import Outcome
from ..hookspecs import Connection, TransformFn
from ..models import (
    Notification,
    ObjectSchema,
    Operation,
    PullRequest,
    PushItem,
    PushRequest,
    PushResult,
    Record,
    RecordMapping,
    RemoteFailure,
    Verdict,
    Watermark,
)
from ..plugins import Hooks
from ..store import Link, OutboxItem, StateStore

__all__ = [
    "Flow",
    "FlowContext",
    "RelatedSource",
    "snapshot_of",
    "usable_snapshot",
    "denied",
    "outcome_of",
    "mapping_failure",
    "retry_outcome",
    "retry_all",
    "push_and_link",
    "Role",
]

Role = Literal["crm", "platform"]


@attrs.define
class FlowContext:
    """Everything a flow needs for one organisation; built and cached by the engine.

    :ivar connect: returns the live connection of a role (``"crm"`` or ``"platform"``),
        authenticating on first use.
    :ivar describe: returns the ObjectSchema of an object of a role (cached), or None.
    """

    config: Config
    org: OrgConfig
    hooks: Hooks
    store: StateStore
    connect: Callable[[Role], Connection]
    describe: Callable[[Role, str], ObjectSchema | None]
    transforms: dict[str, TransformFn]
    mark: Callable[[str, Sequence[str]], int]
    connections: Mapping[str, Connection] = attrs.field(factory=dict)
    _cache: dict[str, tuple[float, Any]] = attrs.field(factory=dict)
    _cache_lock: threading.Lock = attrs.field(factory=threading.Lock)

    def settings(self, flow: str) -> Any:
        """The flow's own configuration section."""
        return getattr(self.org.flows, flow)

    def enabled(self, flow: str) -> bool:
        """True when ``flow`` is configured and enabled for this org."""
        return flow in self.org.flows.enabled()

    def pull(self, role: Role, request: PullRequest) -> Iterator[Record]:
        """Stream records from the system in ``role``."""
        return self.hooks.pull(self.connect(role), request)

    def push(self, role: Role, request: PushRequest) -> list[PushResult]:
        """Write a batch to the system in ``role``."""
        return self.hooks.push(self.connect(role), request)

    def admit(self, flow: str, record: Record) -> Verdict:
        """Ask the ``admit_record`` hook; a denial is written to the sync log with its reason."""
        verdict = self.hooks.admit_record(flow, record, self.org, self.connections)
        if not verdict.allow and record.id:
            self.store.log(
                self.org.name, flow, record.id, "denied", f"{verdict.source}: {verdict.reason}"
            )
        return verdict

    def mapping(self, flow: str, source: str, target: str) -> RecordMapping:
        """The flow's configured field mapping."""
        return self.config.mapping(self.org.name, flow, source, target)

    def map(
        self, record: Record, mapping: RecordMapping, target: ObjectSchema | None
    ) -> dict[str, Any]:
        """Map one record through the ``map_record`` hook."""
        return self.hooks.map_record(record, mapping, target, self.transforms)

    def cached(self, key: str, ttl: float, load: Callable[[], Any]) -> Any:
        """``load()``'s value, reused for ``ttl`` seconds (e.g. the ticket list of an event)."""
        now = time.monotonic()
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None and now - hit[0] < ttl:
                return hit[1]
        value = load()
        with self._cache_lock:
            self._cache[key] = (now, value)
        return value

    def forget(self, key: str) -> None:
        """Drop a cached value (after it was found stale)."""
        with self._cache_lock:
            self._cache.pop(key, None)


#: A snapshot older than this is not trusted; the job reads the record again.
SNAPSHOT_MAX_AGE = 600.0


def snapshot_of(record: Record) -> dict[str, Any]:
    """A JSON-safe copy of a record, stamped with when it was read."""
    return {
        "snapshot_at": time.time(),
        "record": json.loads(
            json.dumps(
                {
                    "system": record.system,
                    "object": record.object,
                    "id": record.id,
                    "fields": dict(record.fields),
                    "modified_at": record.modified_at.isoformat() if record.modified_at else None,
                },
                default=str,
            )
        ),
    }


def usable_snapshot(item: OutboxItem) -> Record | None:
    """The record a mark carried, when it is still the latest word on the entity: the row was
    never re-marked since (generation 1), never failed, and the snapshot is recent."""
    payload = item.payload
    if (
        not isinstance(payload, dict)
        or "record" not in payload
        or item.generation != 1
        or item.attempts
    ):
        return None
    if time.time() - float(payload.get("snapshot_at", 0)) > SNAPSHOT_MAX_AGE:
        return None
    raw = payload["record"]
    modified = dt.datetime.fromisoformat(raw["modified_at"]) if raw.get("modified_at") else None
    return Record(raw["system"], raw["object"], raw["id"], raw["fields"], modified)


def denied(verdict: Verdict) -> Outcome:
    """The outcome of a denied record: done (nothing to sync now), with the reason logged."""
    return Outcome.done(f"denied by {verdict.source or 'a plugin'}: {verdict.reason}")


def outcome_of(result: PushResult) -> Outcome:
    """The executor outcome of one push result: done, retry (transient) or dead (record error)."""
    if result.ok:
        return Outcome.done("created" if result.created else "updated")
    failure = result.error or RemoteFailure("UNKNOWN", "the remote system gave no error text")
    return Outcome.retry(failure) if failure.retryable else Outcome.dead(failure)


def mapping_failure(exc: MappingError) -> Outcome:
    """A record that cannot be mapped is dead-lettered with every reason."""
    return Outcome.dead(RemoteFailure("MAPPING_FAILED", "; ".join(exc.problems)))


@attrs.frozen
class RelatedSource:
    """Records whose changes matter to a flow's entities (e.g. the Lead behind a CampaignMember).

    :ivar name: a stable name (it keys the watermark).
    :ivar request: the pull request for changes since a watermark.
    :ivar entities: the flow entities a batch of changed related records affects.
    """

    name: str
    request: Callable[[Watermark], PullRequest]
    entities: Callable[[list[Record]], list[str]]


class Flow:
    """Base class of the four flows (and of any flow a plugin registers).

    :cvar name: the flow name used in config, outbox rows and the CLI.
    :cvar source_role: which role the poller reads from.
    """

    name: ClassVar[str]
    source_role: ClassVar[Role]

    def poll_request(self, ctx: FlowContext, since: Watermark | None) -> PullRequest | None:
        """What the poller reads (changes since ``since``); None when the flow has no poller."""
        raise NotImplementedError

    def entity_of(self, ctx: FlowContext, record: Record) -> str | None:
        """The outbox entity a polled record stands for (default: its id); None to skip it."""
        return record.id

    def entities_from(self, ctx: FlowContext, notification: Notification) -> list[str]:
        """The entities of this flow a notification says may have changed."""
        return []

    def due_entities(self, ctx: FlowContext) -> list[str]:
        """Entities the poller marks on every run besides what changed (default: none)."""
        return []

    def related_sources(self, ctx: FlowContext) -> list[RelatedSource]:
        """Related records the poller also watches (default: none)."""
        return []

    def snapshot(self, ctx: FlowContext, record: Record) -> dict[str, Any] | None:
        """What a poller or backfill stores with the mark so the job need not read the record
        again (None: the job reads it). See ``snapshot_of`` and ``usable_snapshot``."""
        return None

    def backfill_request(self, ctx: FlowContext) -> PullRequest | None:
        """What a backfill reads (default: the poll request from the beginning)."""
        return self.poll_request(ctx, None)

    def run_batch(self, ctx: FlowContext, items: Sequence[OutboxItem]) -> list[Outcome]:
        """Make the target match the source for each item; one Outcome per item, in order."""
        raise NotImplementedError


def push_and_link(
    ctx: FlowContext,
    flow: str,
    role: Role,
    obj: str,
    operation: Operation,
    pending: Sequence[tuple[PushItem, str]],
) -> tuple[dict[str, Outcome], list[Link]]:
    """Push ``pending`` items (each with the digest of its fields) in one call, record a link
    for each success (to the result's id, else the item's), and return the outcome per key and
    the links written. A call that fails transiently retries every item."""
    if not pending:
        return {}, []
    items = tuple(item for item, _ in pending)
    try:
        results = ctx.push(role, PushRequest(obj, operation, items))
    except RetryableError as exc:
        return {item.key: retry_outcome(exc) for item in items}, []
    by_key = {item.key: (item, digest) for item, digest in pending}
    outcomes: dict[str, Outcome] = {}
    links: list[Link] = []
    for result in results:
        outcomes[result.key] = outcome_of(result)
        item, digest = by_key[result.key]
        target_id = result.id or item.id
        if result.ok and target_id:
            links.append(Link(ctx.org.name, flow, result.key, obj, target_id, digest))
    ctx.store.put_links(links)
    return outcomes, links


def retry_outcome(exc: RetryableError) -> Outcome:
    """The retry outcome of a call that failed transiently."""
    return Outcome.retry(
        RemoteFailure(exc.code, exc.message, exc.fields, retryable=True), exc.retry_after
    )


def retry_all(items: Iterable[object], exc: RetryableError) -> list[Outcome]:
    """The same retry outcome for every item (a whole call failed transiently)."""
    return [retry_outcome(exc) for _ in items]
