"""What every flow is made of, and the context a flow runs in.

A flow is level-triggered (docs/architecture.md §3): a trigger or a poller only says "entity X may
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
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, ClassVar, Literal

import attrs

from ..config import Config, OrgConfig
from ..dryrun import PlannedWrite, audit_writes, plan_writes
from ..errors import MappingError, RetryableError
from ..executor import Outcome
from ..hookspecs import Connection, TransformFn
from ..mapping import did_you_mean, resolve_path, validate_mapping
from ..models import (
    PERSON_ROLES,
    Finding,
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
    Schema,
    Severity,
    SystemProfile,
    Verdict,
    Watermark,
)
from ..plugins import Hooks
from ..policies import same_value
from ..store import Link, OutboxItem, StateStore
from .echoes import Echoes

__all__ = [
    "Flow",
    "FlowContext",
    "FlowCheck",
    "RelatedSource",
    "snapshot_of",
    "usable_snapshot",
    "not_older",
    "denied",
    "outcome_of",
    "mapping_failure",
    "retry_outcome",
    "retry_all",
    "push_and_link",
    "read_current",
    "Role",
    "person_mapping",
]

Role = Literal["crm", "platform"]

log = logging.getLogger("eventsync.flows")

#: The flow whose batch this thread runs (the engine's job sets it), so that ``FlowContext.push``
#: records what each record's write changed without every flow passing its name along.
current_flow: ContextVar[str | None] = ContextVar("eventsync_current_flow", default=None)


@attrs.define
class FlowContext:
    """Everything a flow needs for one organisation; built and cached by the engine.

    :ivar connect: returns the live connection of a role (``"crm"`` or ``"platform"``),
        authenticating on first use.
    :ivar describe: returns the ObjectSchema of an object of a role (cached), or None.
    :ivar dry_run: a preview: ``push`` writes nothing and collects ``plans`` instead, and the
        store only reads (``eventsync.dryrun``). Flows that match records themselves read the
        target's current values then, so the plans carry field-by-field diffs.
    """

    config: Config
    org: OrgConfig
    hooks: Hooks
    store: StateStore
    connect: Callable[[Role], Connection]
    describe: Callable[[Role, str], ObjectSchema | None]
    transforms: dict[str, TransformFn]
    #: ``mark(flow, entities, hint=None)``: entity keys, or a mapping of entity to its mark's
    #: payload; ``hint=FOLLOW_ON`` for a batch's entities marked at once.
    mark: Callable[..., int]
    connections: Mapping[str, Connection] = attrs.field(factory=dict)
    #: Told ``(system, "push" or "pull", seconds)`` of every remote call (the engine's metrics).
    observe: Callable[[str, str, float], None] | None = None
    dry_run: bool = False
    plans: list[PlannedWrite] = attrs.field(factory=list)
    #: The echoes of this organisation's own CRM writes, expected (``flows.echoes``).
    echoes: Echoes = attrs.field(factory=Echoes)
    _cache: dict[str, tuple[float, Any]] = attrs.field(factory=dict)
    _cache_lock: threading.Lock = attrs.field(factory=threading.Lock)

    def settings(self, flow: str) -> Any:
        """The flow's own settings (an instance of its ``settings_class``)."""
        return self.org.flows[flow]

    def enabled(self, flow: str) -> bool:
        """True when ``flow`` is configured and enabled for this org."""
        return flow in self.org.flows.enabled()

    def pull(self, role: Role, request: PullRequest) -> Iterator[Record]:
        """Stream records from the system in ``role``."""
        connection = self.connect(role)
        records = self.hooks.pull(connection, request)
        if self.observe is None:
            return records
        return self._timed(connection.system, records)

    def _timed(self, system: str, records: Iterator[Record]) -> Iterator[Record]:
        """The records, telling ``observe`` how long the whole read took (without the time
        the consumer spent between records it asked for)."""
        spent = 0.0
        try:
            while True:
                started = time.perf_counter()
                try:
                    record = next(records)
                except StopIteration:
                    spent += time.perf_counter() - started
                    return
                spent += time.perf_counter() - started
                yield record
        finally:
            if self.observe is not None:
                self.observe(system, "pull", spent)

    def push(
        self,
        role: Role,
        request: PushRequest,
        *,
        flow: str = "",
        before: Mapping[str, Mapping[str, Any]] | None = None,
        held: Mapping[str, Mapping[str, str]] | None = None,
    ) -> list[PushResult]:
        """Write a batch to the system in ``role``, in calls of at most the system's declared
        ``max_batch`` records; one result per item, correlated by key.

        Every record written is entered in the audit trail under ``flow``, with the names of
        the fields that change (``before``: the current values per item key, when the flow
        read them). In a dry run nothing is written: the writes become ``plans`` (with
        ``held``, the fields policies keep per key) and every item is answered as a success.
        """
        connection = self.connect(role)
        if self.dry_run:
            plans, answers = plan_writes(connection.system, request, before, held)
            self.plans.extend(plans)
            return answers
        profile = self.hooks.profile(connection.system)
        limit = max(1, profile.max_batch) if profile is not None else len(request.items) or 1
        chunks = (
            [request]
            if len(request.items) <= limit
            else [
                attrs.evolve(request, items=request.items[start : start + limit])
                for start in range(0, len(request.items), limit)
            ]
        )
        results: list[PushResult] = []
        for chunk in chunks:
            started = time.perf_counter()
            try:
                results.extend(self.hooks.push(connection, chunk))
            finally:
                if self.observe is not None:
                    self.observe(connection.system, "push", time.perf_counter() - started)
        if self.store is not None:  # None only in contexts built to test the facade
            lines = self._journal(connection.system, request, results)
            # A flow that does not name itself is audited under the job's flow.
            flow = flow or current_flow.get() or ""
            # The audit trail and the journal in one transaction: every batch writes both.
            self.store.record_audit(
                audit_writes(self.org.name, flow, connection.system, request, results, before),
                lines=lines,
            )
        return results

    def _journal(
        self, system: str, request: PushRequest, results: list[PushResult]
    ) -> list[tuple[Any, ...]]:
        """A ``wrote`` sync-log line per record written (``eventsync trace`` shows them): the
        target record and the fields written, with their values (shown only on request)."""
        flow = current_flow.get()
        if flow is None or not results:
            return []
        items = {item.key: item for item in request.items}
        lines: list[tuple[Any, ...]] = []
        for result in results:
            item = items.get(result.key)
            if not result.ok or item is None:
                continue
            target = result.id or item.id
            detail = {
                "system": system,
                "object": request.object,
                "operation": request.operation,
                "target": target,
                "created": result.created,
                "fields": _json_safe(dict(item.fields)),
            }
            verb = "created" if result.created else request.operation
            lines.append(
                (
                    self.org.name,
                    flow,
                    result.key,
                    "wrote",
                    f"{verb} {request.object} {target}",
                    detail,
                )
            )
            log.debug(
                "%s/%s %s: %s %s %s",
                self.org.name,
                flow,
                result.key,
                verb,
                request.object,
                target,
                extra={"org": self.org.name, "flow": flow, "entity": result.key, "target": target},
            )
        return lines

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
    """A JSON-safe copy of a record, stamped with when it was read: what a JSON round trip
    (``default=str``) would give, made directly (every webhook delivery makes one)."""
    return {
        "snapshot_at": time.time(),
        "record": {
            "system": record.system,
            "object": record.object,
            "id": record.id,
            "fields": _json_safe(
                record.fields if type(record.fields) is dict else dict(record.fields)
            ),
            "modified_at": record.modified_at.isoformat() if record.modified_at else None,
        },
    }


_PLAIN = (str, int, float, bool, type(None))


def _json_safe(value: Any) -> Any:
    """``json.loads(json.dumps(value, default=str))``: plain values kept, lists and tuples as
    lists, mappings with text keys copied, a datetime as its ``str``; anything else (a key that
    is not text, an enum, a subclass) goes through the JSON round trip itself."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    # Plain items are taken as they are, without a call each (most of a record's fields).
    if kind is dict and all(type(key) is str for key in value):
        return {k: v if type(v) in _PLAIN else _json_safe(v) for k, v in value.items()}
    if kind is list or kind is tuple:
        return [v if type(v) in _PLAIN else _json_safe(v) for v in value]
    if kind is dt.datetime:
        return str(value)
    return json.loads(json.dumps(value, default=str))


def usable_snapshot(item: OutboxItem) -> Record | None:
    """The record a mark carried, when it is still the latest word on the entity: the row was
    never re-marked since (generation 1), never failed, and the snapshot is recent.

    The snapshot is handed over once: it leaves the item's payload with the record returned
    (a second call finds none, and the caller reads the record from the source), so a leased
    batch does not hold every snapshot twice, nor for longer than the flow keeps its records."""
    payload = item.payload
    if (
        not isinstance(payload, dict)
        or not isinstance(payload.get("record"), dict)
        or item.generation != 1
        or item.attempts
    ):
        return None
    if time.time() - float(payload.get("snapshot_at", 0)) > SNAPSHOT_MAX_AGE:
        return None
    raw = payload.pop("record")
    modified = dt.datetime.fromisoformat(raw["modified_at"]) if raw.get("modified_at") else None
    return Record(raw["system"], raw["object"], raw["id"], raw["fields"], modified)


def not_older(record: Record, link: Link | None) -> bool:
    """True when ``record`` is provably no older than the version last written through
    ``link``: nothing was written yet, or both modified times are known and the record's is not
    earlier. A snapshot that fails this is read again from the source."""
    if link is None:
        return True
    if record.modified_at is None or link.source_modified is None:
        return False
    return _aware(record.modified_at) >= _aware(link.source_modified)


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def marked_since(items: Sequence[OutboxItem], entities: Sequence[str]) -> dt.datetime | None:
    """When the oldest of ``entities``' outbox rows was created (UTC): their changes are no
    older, give or take clock skew (``PullRequest.recent``). None when a row has no time."""
    wanted = set(entities)
    times = [i.created_at for i in items if i.entity in wanted]
    if not times or any(t is None for t in times):
        return None
    oldest = min(t for t in times if t is not None)
    return oldest if oldest.tzinfo else oldest.replace(tzinfo=dt.UTC)


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


@attrs.frozen
class FlowCheck:
    """What a flow's ``check`` works with: its settings and the discovered schemas.

    :ivar schemas: the discovered schema of each role (absent when it could not be discovered;
        that failure is already a finding).
    """

    config: Config
    org: OrgConfig
    flow: str
    settings: Any
    schemas: Mapping[Role, Schema]
    transforms: Mapping[str, TransformFn]

    @property
    def path(self) -> str:
        """``$.orgs.ORG.flows.FLOW``."""
        return f"$.orgs.{self.org.name}.flows.{self.flow}"

    def finding(
        self, code: str, message: str, *, key: str = "", fix: str = "", severity: Severity = "error"
    ) -> Finding:
        """A finding about the setting ``key`` of this flow."""
        where = f"{self.path}.{key}" if key else self.path
        return Finding(severity, code, message, source="eventsync", where=where, fix=fix)

    def mapping(
        self,
        source: Role,
        source_object: str,
        target: Role,
        target_object: str,
        operation: str,
        provided: Sequence[str] = (),
    ) -> list[Finding]:
        """Findings of the flow's ``fields`` mapping from ``source_object`` to ``target_object``."""
        source_schema, target_schema = self.schemas.get(source), self.schemas.get(target)
        if source_schema is None or target_schema is None:
            return []
        mapping = self.config.mapping(self.org.name, self.flow, source_object, target_object)
        where = f"{self.path}.fields"
        return [
            Finding(
                "error",
                "mapping",
                problem,
                source="eventsync",
                where=where,
                fix="correct the mapping entry in the config file",
            )
            for problem in validate_mapping(
                mapping,
                source_schema,
                target_schema,
                operation=operation,
                transforms=self.transforms,
                where=where,
                provided=provided,
            )
        ]

    def field(
        self, role: Role, obj: str, path: str, key: str, *, updateable: bool = False, fix: str = ""
    ) -> list[Finding]:
        """Findings when ``obj.path`` does not resolve in ``role`` (or is not updateable)."""
        schema = self.schemas.get(role)
        if schema is None:
            return []
        described = schema.object(obj)
        if described is None:
            return [
                self.finding(
                    key, f"object {obj!r} was not discovered in {schema.system}", key=key, fix=fix
                )
            ]
        if "." in path:
            problem = resolve_path(schema, described, path)[1]
            return [self.finding(key, problem, key=key, fix=fix)] if problem else []
        found = described.field(path)
        if found is None:
            return [
                self.finding(
                    key,
                    f"{obj}.{path} does not exist{did_you_mean(described, path)}",
                    key=key,
                    fix=fix,
                )
            ]
        if updateable and not found.updateable:
            return [
                self.finding(
                    key,
                    f"{obj}.{path} is not updateable by the integration user",
                    key=key,
                    fix="grant edit access to the field",
                )
            ]
        return []


class Flow:
    """Base class of the four flows (and of any flow a plugin registers).

    :cvar name: the flow name used in config, outbox rows and the CLI.
    :cvar source_role: which role the poller reads from.
    """

    name: ClassVar[str]
    source_role: ClassVar[Role]
    #: The frozen attrs class of ``[orgs.X.flows.NAME]`` (attributes made with
    #: ``eventsync.settings.setting``); it must have ``enabled`` and ``poll_interval``.
    settings_class: ClassVar[type]

    def default_settings(
        self, crm: SystemProfile | None, platform: SystemProfile | None
    ) -> dict[str, Any]:
        """Defaults for settings the file leaves out that only the system plugins can know
        (object and field names): by default each profile's ``flow_defaults[name]``."""
        merged: dict[str, Any] = {}
        for profile in (platform, crm):
            if profile is not None:
                merged.update(profile.flow_defaults.get(self.name, {}))
        return merged

    def settings_problems(self, settings: Any, path: str) -> list[str]:
        """Problems of structured settings that types cannot express (default: each mapping
        entry gives exactly one of source, constant and template)."""
        problems = []
        for i, entry in enumerate(getattr(settings, "fields", ()) or ()):
            given = sum(x is not None for x in (entry.source, entry.constant, entry.template))
            if given != 1:
                problems.append(
                    f"{path}.fields[{i}]: give exactly one of source, constant or template "
                    f"for target {entry.target!r}"
                )
        return problems

    def schema_objects(self, org: OrgConfig, settings: Any) -> dict[Role, set[str]]:
        """The objects ``eventsync check`` must describe in each role for this flow."""
        return {}

    def schema_paths(self, settings: Any) -> dict[Role, list[tuple[str, str]]]:
        """Dotted field paths (object, path) whose relationships ``eventsync check`` follows
        and describes too, per role (default: none)."""
        return {}

    def check(self, check: FlowCheck) -> list[Finding]:
        """Findings about this flow's settings against the discovered schemas (default: none)."""
        return []

    def poll_request(self, ctx: FlowContext, since: Watermark | None) -> PullRequest | None:
        """What the poller reads (changes since ``since``); None when the flow has no poller."""
        raise NotImplementedError

    def entity_of(self, ctx: FlowContext, record: Record) -> str | None:
        """The outbox entity a polled record stands for (default: its id); None to skip it."""
        return record.id

    def entities_from(self, ctx: FlowContext, notification: Notification) -> list[str]:
        """The entities of this flow a notification says may have changed."""
        return []

    def carried(self, ctx: FlowContext, notification: Notification) -> dict[str, Any]:
        """Snapshots (``snapshot_of``) of the entities a notification carried whole
        (``EntityRef.record``), by entity, stored with their marks so the job need not read
        them back (default: none)."""
        return {}

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
    current: Mapping[str, Mapping[str, Any]] | None = None,
    results: dict[str, PushResult] | None = None,
) -> tuple[dict[str, Outcome], list[Link]]:
    """Push ``pending`` items (each with the digest of its fields) in one call, record a link
    for each success (to the result's id, else the item's), and return the outcome per key and
    the links written. A call that fails transiently retries every item. ``results``, when
    given, receives each push result by key (what the target answered, e.g. ``returned``).

    ``current``: the target's current values per record id (``read_current``), when the flow
    read them. An item whose record already holds every value is not written ("unchanged",
    linked with its digest so the next run skips it by hash); the others are written with
    their current values, so the audit trail and a preview's diffs name what changes."""
    if not pending:
        return {}, []
    outcomes: dict[str, Outcome] = {}
    links: list[Link] = []
    before: dict[str, Mapping[str, Any]] = {}
    to_push: list[tuple[PushItem, str]] = []
    for item, digest in pending:
        now = (current or {}).get(item.id or "")
        if now is not None and _holds(now, item.fields):
            outcomes[item.key] = Outcome.done("unchanged")
            links.append(Link(ctx.org.name, flow, item.key, obj, item.id or "", digest))
            continue
        if now is not None:
            before[item.key] = now
        to_push.append((item, digest))
    items = tuple(item for item, _ in to_push)
    try:
        answers = (
            ctx.push(role, PushRequest(obj, operation, items), flow=flow, before=before or None)
            if items
            else []
        )
    except RetryableError as exc:
        ctx.store.put_links(links)
        return {**outcomes, **{item.key: retry_outcome(exc) for item in items}}, links
    by_key = {item.key: (item, digest) for item, digest in to_push}
    for result in answers:
        if results is not None:
            results[result.key] = result
        outcomes[result.key] = outcome_of(result)
        item, digest = by_key[result.key]
        target_id = result.id or item.id
        if result.ok and target_id:
            links.append(Link(ctx.org.name, flow, result.key, obj, target_id, digest))
    ctx.store.put_links(links)
    return outcomes, links


def _holds(now: Mapping[str, Any], fields: Mapping[str, Any]) -> bool:
    """True when a record with the values ``now`` already holds every one of ``fields``."""
    lowered = {k.lower(): v for k, v in now.items()}
    return all(same_value(v, lowered.get(k.lower())) for k, v in fields.items())


def read_current(
    ctx: FlowContext, role: Role, obj: str, ids: Iterable[str], fields: Iterable[str]
) -> dict[str, Mapping[str, Any]]:
    """The current values of ``fields`` of the records ``ids``: one read by id (the plugin
    chunks it), none when there is nothing to read."""
    keys = tuple(dict.fromkeys(i for i in ids if i))
    wanted = tuple(dict.fromkeys(fields))
    if not keys or not wanted:
        return {}
    request = PullRequest(object=obj, fields=wanted, ids=keys)
    return {r.id: r.fields for r in ctx.pull(role, request) if r.id}


def retry_outcome(exc: RetryableError) -> Outcome:
    """The retry outcome of a call that failed transiently."""
    return Outcome.retry(
        RemoteFailure(exc.code, exc.message, exc.fields, retryable=True), exc.retry_after
    )


def retry_all(items: Iterable[object], exc: RetryableError) -> list[Outcome]:
    """The same retry outcome for every item (a whole call failed transiently)."""
    return [retry_outcome(exc) for _ in items]


def person_mapping(
    source: SystemProfile | None, target: SystemProfile | None
) -> list[dict[str, str]]:
    """The default ``fields`` of a flow copying a person: each neutral person field
    (``PERSON_ROLES``) the source and target systems both declare, paired."""
    if source is None or target is None:
        return []
    return [
        {"target": target.person_fields[role], "source": source.person_fields[role]}
        for role in PERSON_ROLES
        if role in source.person_fields and role in target.person_fields
    ]
