"""Preview (dry run): what a flow would do to each record, writing nothing.

``preview`` runs the flow's own ``run_batch`` on a dry-run ``FlowContext``
(``eventsync.dryrun``): the source and the target are read as a real run reads them (within the
API budget), every write is collected instead of sent, and the state store is left as it was.
Each record is then one of:

* ``create`` / ``update``: the write, with a field-by-field diff against the target's current
  values (for an update, only the fields that change) and the fields a policy holds back;
* ``skip``: nothing to write, because the record is unchanged, a policy holds every changed
  field, a plugin's verdict denies it, or the flow skips it (a refund, update-only ...);
* ``fail``: the record cannot be mapped, or a write would break a rule of the target's schema
  (a required field left empty, a value too long), which the remote system would refuse.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

import attrs

from .dryrun import PlannedWrite, ReadOnlyStore
from .executor import Outcome
from .models import ObjectSchema
from .policies import is_empty
from .store import OutboxItem, StateStore

if TYPE_CHECKING:
    from .engine import Engine

__all__ = ["Preview", "PreviewRecord", "preview", "ACTIONS"]

Action = Literal["create", "update", "skip", "fail"]
ACTIONS: tuple[Action, ...] = ("create", "update", "skip", "fail")


@attrs.frozen
class PreviewRecord:
    """What a run would do to one source entity.

    :ivar reason: why it is skipped or fails (also a note on a create or update, e.g. merged).
    :ivar writes: the writes it would make (an entity may write to more than one record).
    """

    entity: str
    action: Action
    reason: str = ""
    code: str = ""
    writes: tuple[PlannedWrite, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (docs/schemas/preview.schema.json)."""
        return {
            "entity": self.entity,
            "action": self.action,
            "reason": self.reason,
            "code": self.code,
            "writes": [
                {
                    "system": w.system,
                    "object": w.object,
                    "operation": w.operation,
                    "record_id": w.record_id,
                    "changes": {k: dict(v) for k, v in w.changes.items()},
                    "held": dict(w.held),
                }
                for w in self.writes
            ],
        }


@attrs.frozen
class Preview:
    """A flow's preview for one organisation.

    :ivar complete: False when the API budget stopped it before every record was seen.
    """

    org: str
    flow: str
    records: tuple[PreviewRecord, ...]
    complete: bool = True
    stopped: str = ""

    def summary(self) -> dict[str, int]:
        """How many records would be created, updated, skipped and would fail."""
        counts: dict[str, int] = dict.fromkeys(ACTIONS, 0)
        for record in self.records:
            counts[record.action] += 1
        return counts

    def record(self, entity: str) -> PreviewRecord | None:
        """The prediction for one entity, if it was previewed."""
        return next((r for r in self.records if r.entity == entity), None)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (docs/schemas/preview.schema.json)."""
        return {
            "org": self.org,
            "flow": self.flow,
            "complete": self.complete,
            "stopped": self.stopped,
            "summary": self.summary(),
            "records": [r.as_dict() for r in self.records],
        }


def preview(
    engine: Engine,
    org_name: str,
    flow_name: str,
    *,
    entities: Sequence[str] = (),
    limit: int | None = None,
    budget_share: float | None = None,
) -> Preview:
    """Preview ``flow_name`` for ``org_name``: the given ``entities``, or the flow's source
    (what a backfill reads), at most ``limit`` records. Stops at the API budget (``[engine]
    backfill_budget_share`` unless given) and says so."""
    flow = engine.require_flow(org_name, flow_name)
    base = engine.context(org_name)
    ctx = attrs.evolve(
        base,
        store=cast(StateStore, ReadOnlyStore(engine.store)),
        mark=lambda *args, **kwargs: 0,
        dry_run=True,
        plans=[],
    )
    share = engine.config.engine.backfill_budget_share if budget_share is None else budget_share
    size = engine.config.engine.batch_size
    records: list[PreviewRecord] = []
    for batch in _batches(_items(engine, ctx, flow, org_name, flow_name, entities, limit), size):
        usage = ctx.hooks.api_usage(engine.connection(org_name, "crm"))
        if usage is not None and usage.share >= share:
            stopped = (
                f"stopped: {usage.used}/{usage.limit} API calls used (budget {share:.0%}); "
                f"{len(records)} record(s) previewed"
            )
            return Preview(org_name, flow_name, tuple(records), False, stopped)
        ctx.plans.clear()
        outcomes = flow.run_batch(ctx, batch)
        schemas = {w.object: engine.describe(org_name, "crm", w.object) for w in ctx.plans}
        for item, outcome in zip(batch, outcomes, strict=True):
            writes = tuple(w for w in ctx.plans if w.entity == item.entity)
            records.append(_judge(item.entity, outcome, writes, schemas))
    return Preview(org_name, flow_name, tuple(records))


def _items(
    engine: Engine,
    ctx: Any,
    flow: Any,
    org_name: str,
    flow_name: str,
    entities: Sequence[str],
    limit: int | None,
) -> Iterator[OutboxItem]:
    """Outbox-like items for the entities to preview: given ids (the flow reads them), or the
    flow's source, read as a backfill reads it (with the snapshot a backfill would keep)."""
    now = dt.datetime.now(dt.UTC)
    if entities:
        for n, entity in enumerate(dict.fromkeys(entities)):
            if limit is not None and n >= limit:
                return
            yield OutboxItem(0, org_name, flow_name, entity, 1, 0, created_at=now)
        return
    request = flow.backfill_request(ctx)
    if request is None:
        return
    seen: set[str] = set()
    for record in ctx.pull(flow.source_role, request):
        entity = flow.entity_of(ctx, record)
        if not entity or entity in seen:
            continue
        if limit is not None and len(seen) >= limit:
            return
        seen.add(entity)
        yield OutboxItem(
            0, org_name, flow_name, entity, 1, 0, flow.snapshot(ctx, record), created_at=now
        )


def _batches(items: Iterable[OutboxItem], size: int) -> Iterator[list[OutboxItem]]:
    batch: list[OutboxItem] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def _judge(
    entity: str,
    outcome: Outcome,
    writes: tuple[PlannedWrite, ...],
    schemas: dict[str, ObjectSchema | None],
) -> PreviewRecord:
    """One entity's prediction from its outcome in the dry run and the writes it planned."""
    if outcome.kind != "done":
        failure = outcome.failure
        code = failure.code if failure else "UNKNOWN"
        prefix = "" if outcome.kind == "dead" else "would be retried: "
        return PreviewRecord(entity, "fail", prefix + (failure.message if failure else ""), code)
    for write in writes:
        problem = schema_problem(schemas.get(write.object), write)
        if problem is not None:
            return PreviewRecord(entity, "fail", problem[1], problem[0], writes)
    if writes:
        creating = any(w.operation == "insert" for w in writes)
        return PreviewRecord(
            entity, "create" if creating else "update", outcome.message, "", writes
        )
    return PreviewRecord(entity, "skip", outcome.message or "nothing to write")


def schema_problem(schema: ObjectSchema | None, write: PlannedWrite) -> tuple[str, str] | None:
    """The rule of the target's schema ``write`` would break, as (code, message), or None:
    a required field left empty on a create, or emptied on an update; a text too long."""
    if schema is None:
        return None
    values = {name: change.get("after") for name, change in write.changes.items()}
    for name, value in values.items():
        field = schema.field(name)
        if field is None:
            continue
        if field.length and isinstance(value, str) and len(value) > field.length:
            return "STRING_TOO_LONG", f"{name}: {len(value)} characters (max {field.length})"
        if not field.nillable and field.type != "boolean" and is_empty(value):
            return "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{field.name}]"
    if write.operation == "insert":
        missing = [
            f.name for f in schema.fields if f.required_on_create and is_empty(values.get(f.name))
        ]
        if missing:
            return "REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]"
    return None
