"""Export registrations: an event-platform registration -> a record of the chosen CRM object.

Per batch: one pull of the registrations by id; each is admitted (``admit_record``), mapped and
hashed; unchanged ones cost no call. Linked ones are updated by id; the rest are upserted on the
match key in one call (the CRM plugin matches with one query per batch), or, with a match
cascade, looked up step by step (one query per step per batch) and the unmatched created in the
last step's object. In update-only mode nothing is created.

Registrations of one batch that share a match-key value (the same email twice) are one write:
sent separately, neither would find the other's record, and the CRM would get two. The latest
registration (by modified time, then id) is written; every one of them is linked to the one
record and gets its outcome.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

import attrs

from ..config import CascadeStep, FieldMapConfig, OrgConfig
from ..errors import MappingError, RetryableError
from ..executor import Outcome
from ..models import (
    Filter,
    Finding,
    Notification,
    PullRequest,
    PushItem,
    PushRequest,
    Record,
    RecordMapping,
    RemoteFailure,
    SystemProfile,
    Watermark,
)
from ..policies import apply_policies, policy_fields, record_policies, same_value
from ..settings import setting
from ..store import ClaimRelease, Link, OutboxItem, content_hash
from .base import (
    Flow,
    FlowCheck,
    FlowContext,
    Role,
    denied,
    mapping_failure,
    marked_since,
    not_older,
    outcome_of,
    person_mapping,
    retry_all,
    retry_outcome,
    snapshot_of,
    usable_snapshot,
)
from .cancellation import cancel, cancel_problems

__all__ = ["ExportRegistrations", "ExportRegistrationsSettings"]

SOURCE = "registration"


@attrs.frozen(kw_only=True)
class ExportRegistrationsSettings:
    """``[orgs.X.flows.export_registrations]``: event-platform registrations -> a CRM object."""

    target_object: str = setting(
        label="Target object",
        help="The CRM object each registration becomes or updates (a lead, contact or custom object).",
    )
    match_key: str = setting(
        label="Match on",
        help="The target field that finds an existing record (an email field, or an external-id "
        "field for a native upsert); default: the CRM's email field.",
    )
    match_cascade: tuple[CascadeStep, ...] = setting(
        (),
        label="Match cascade",
        help="Objects to look in, in order, before creating one in the last of them.",
    )
    update_only: bool = setting(
        False, label="Update only", help="Never create records, only update matched ones."
    )
    refunded: Literal["sync", "skip"] = setting(
        "sync", label="Refunded registrations", help="sync them like any other, or skip them."
    )
    on_cancel: Literal["keep", "mark", "delete", "remove"] = setting(
        "keep",
        label="Cancellations",
        help="What a cancelled, refunded or removed registration does to the CRM record it was "
        "exported to: keep it (refunded then decides), mark it (cancel_field = cancel_value), "
        "delete it, or remove the membership record the person was invited from.",
    )
    cancel_field: str | None = setting(
        None, label="Cancel field", help="For on_cancel = mark: the target field to set."
    )
    cancel_value: str | None = setting(
        None, label="Cancel value", help="For on_cancel = mark: the value it is set to."
    )
    fields: tuple[FieldMapConfig, ...] = setting(
        label="Field mapping",
        help="Target fields and where each value comes from; default: first name, last name "
        "and email.",
    )
    poll_interval: float = setting(
        60.0, label="Poll interval (s)", help="How often the poller catches what webhooks missed."
    )
    trigger_window: float | None = setting(
        None,
        label="Trigger window (s)",
        help="Report changes no notification announced within this many seconds.",
    )
    enabled: bool = setting(True, label="Enabled", help="false turns the flow off.")


def _is_refunded(record: Record | None) -> bool:
    """A cancelled or refunded registration (None, a missing one, is neither)."""
    if record is None:
        return False
    status = str(record.get("status") or "").lower()
    return bool(record.get("refunded")) or status in {"refunded", "cancelled", "canceled"}


class ExportRegistrations(Flow):
    """Hopin registration -> Lead / Contact / CampaignMember / custom object."""

    name = "export_registrations"
    source_role = "platform"
    settings_class = ExportRegistrationsSettings

    def default_settings(
        self, crm: SystemProfile | None, platform: SystemProfile | None
    ) -> dict[str, Any]:
        """The CRM's defaults, plus a person mapping and the CRM's email field as match key."""
        defaults: dict[str, Any] = {}
        if mapping := person_mapping(platform, crm):
            defaults["fields"] = mapping
        if crm is not None and "email" in crm.person_fields:
            defaults["match_key"] = crm.person_fields["email"]
        return {**defaults, **super().default_settings(crm, platform)}

    def settings_problems(self, settings: Any, path: str) -> list[str]:
        """The mapping entries, and ``on_cancel = "mark"`` naming its field and value."""
        return super().settings_problems(settings, path) + cancel_problems(settings, path)

    def schema_objects(
        self, org: OrgConfig, settings: ExportRegistrationsSettings
    ) -> dict[Role, set[str]]:
        """Registrations, the target object and every object of the match cascade."""
        crm = {settings.target_object, *(step.object for step in settings.match_cascade)}
        return {"platform": {SOURCE}, "crm": crm}

    def check(self, check: FlowCheck) -> list[Finding]:
        """The mapping fits the target (for update-only: as an update), and the match key exists."""
        settings: ExportRegistrationsSettings = check.settings
        operation = "update" if settings.update_only else "upsert"
        findings = check.mapping("platform", SOURCE, "crm", settings.target_object, operation)
        findings += check.field("crm", settings.target_object, settings.match_key, "match_key")
        findings += self._external_id_advice(check, settings)
        for i, step in enumerate(settings.match_cascade):
            findings += check.field("crm", step.object, step.match_key, f"match_cascade[{i}]")
        if settings.on_cancel == "mark" and settings.cancel_field:
            findings += check.field(
                "crm",
                settings.target_object,
                settings.cancel_field,
                "cancel_field",
                updateable=True,
            )
        return findings

    def _external_id_advice(
        self, check: FlowCheck, settings: ExportRegistrationsSettings
    ) -> list[Finding]:
        """Matching on a plain field costs a query per batch and can only find a record
        already committed; an external-id field holding the registration id makes every
        create an idempotent upsert. Recommend one when the target has it."""
        crm = check.schemas.get("crm")
        target = crm.object(settings.target_object) if crm is not None else None
        key = target.field(settings.match_key) if target is not None else None
        if target is None or key is None or key.external_id or settings.match_cascade:
            return []
        candidates = [f.name for f in target.fields if f.external_id and f.createable]
        if not candidates:
            return []
        return [
            check.finding(
                "external_id",
                f"{target.name} has the external-id field(s) {', '.join(candidates)}; matching "
                f"on {key.name} needs one query per batch and relies on finding what an "
                f"earlier attempt created",
                key="match_key",
                fix=f"map the registration id to {candidates[0]} and set "
                f'match_key = "{candidates[0]}" for a native, idempotent upsert',
                severity="info",
            )
        ]

    def poll_request(self, ctx: FlowContext, since: Watermark | None) -> PullRequest:
        """Registrations updated since the watermark, oldest first."""
        return PullRequest(object=SOURCE, since=since, overlap=5.0)

    def entities_from(self, ctx: FlowContext, notification: Notification) -> list[str]:
        """Registration ids a platform delivery names."""
        return [e.id for e in notification.entities if e.object == SOURCE]

    def snapshot(self, ctx: FlowContext, record: Record) -> dict[str, Any] | None:
        """Pollers and backfills read whole registrations; keep them for the job."""
        return snapshot_of(record)

    def carried(self, ctx: FlowContext, notification: Notification) -> dict[str, Any]:
        """Registrations a delivery carried whole; the job checks each against the version
        last written (``not_older``) before trusting it."""
        return {
            e.id: snapshot_of(e.record)
            for e in notification.entities
            if e.object == SOURCE and e.record is not None and e.record.id == e.id
        }

    def run_batch(self, ctx: FlowContext, items: Sequence[OutboxItem]) -> list[Outcome]:
        """Export each registration of the batch."""
        cfg: ExportRegistrationsSettings = ctx.settings(self.name)
        ids = [i.entity for i in items]
        links = ctx.store.get_links(ctx.org.name, self.name, ids)
        # A snapshot older than what was last written (a late or re-sent delivery) is read again.
        found = {
            i.entity: r
            for i in items
            if (r := usable_snapshot(i)) is not None and not_older(r, links.get(i.entity))
        }
        stale = tuple(e for e in ids if e not in found)
        try:
            if stale:
                request = PullRequest(object=SOURCE, ids=stale, recent=marked_since(items, stale))
                found.update((r.id, r) for r in ctx.pull("platform", request) if r.id)
        except RetryableError as exc:
            return retry_all(items, exc)
        target = ctx.describe("crm", cfg.target_object)
        mapping = ctx.mapping(self.name, SOURCE, cfg.target_object)

        outcomes: dict[str, Outcome] = {}
        pending: list[tuple[str, dict[str, Any], str]] = []
        cancelled: dict[str, Record | None] = {}
        for entity in ids:
            record = found.get(entity)
            gone = record is None or record.deleted
            if cfg.on_cancel != "keep" and (gone or _is_refunded(record)):
                cancelled[entity] = None if gone else record
                continue
            if record is None or record.deleted:
                outcomes[entity] = Outcome.done("registration no longer exists")
                continue
            if _is_refunded(record) and cfg.refunded == "skip":
                outcomes[entity] = Outcome.done("refunded: skipped")
                continue
            verdict = ctx.admit(self.name, record)
            if not verdict.allow:
                outcomes[entity] = denied(verdict)
                continue
            try:
                fields = ctx.map(record, mapping, target)
            except MappingError as exc:
                outcomes[entity] = mapping_failure(exc)
                continue
            digest = content_hash(fields)
            link = links.get(entity)
            if link is not None and link.hash == digest:
                outcomes[entity] = Outcome.done("unchanged")
                continue
            pending.append((entity, fields, digest))

        if not policy_fields(mapping):
            # Mapped, the source fields are needed no more (only policies read them): let them
            # go before the remote calls, during which six workers' batches are in flight.
            found = {e: _mapped_away(r) for e, r in found.items()}
        if pending:
            keys = _match_keys(cfg)
            writes, write_links, merged = _one_write_per_match(pending, links, found, keys)
            holder = uuid.uuid4().hex
            claimed, busy = self._claim(ctx, cfg, writes, write_links, keys, holder)
            writes = [w for w in writes if w[0] not in busy]
            try:
                written, new_links = self._write(ctx, cfg, writes, write_links, found, mapping)
            except RetryableError as exc:
                outcomes.update((entity, retry_outcome(exc)) for entity, _, _ in pending)
            else:
                written.update((entity, _BUSY) for entity in busy)
                outcomes.update(written)
                digests = {entity: digest for entity, _, digest in pending}
                link_of = {link.source_key: link for link in new_links}
                for entity, writer in merged.items():
                    outcomes[entity] = _merged_outcome(written[writer], writer, keys)
                    if writer in link_of:
                        new_links.append(
                            attrs.evolve(link_of[writer], source_key=entity, hash=digests[entity])
                        )
                # The claims are given up with the links: one transaction for both.
                release = ClaimRelease(ctx.org.name, self._scope(cfg), tuple(claimed), holder)
                ctx.store.put_links(
                    _with_source_modified(new_links, found), release=release if claimed else None
                )
                claimed = set()
            finally:
                if claimed:  # the push or the links failed: the claims go on their own
                    ctx.store.release_claims(ctx.org.name, self._scope(cfg), claimed, holder)
        if cancelled:
            outcomes.update(cancel(ctx, self.name, cfg, cancelled, links))
        return [outcomes[i] for i in ids]

    def _scope(self, cfg: ExportRegistrationsSettings) -> str:
        return f"{self.name}:{cfg.target_object}"

    def _claim(
        self,
        ctx: FlowContext,
        cfg: ExportRegistrationsSettings,
        writes: list[Pending],
        write_links: Mapping[str, Link],
        keys: Sequence[str],
        holder: str,
    ) -> tuple[set[str], set[str]]:
        """Claim the match values of the records this batch may create; returns the claimed
        values and the entities whose value another batch is writing (they are retried, and
        then find that batch's record). Linked entities and update-only never create."""
        if cfg.update_only:
            return set(), set()
        wanted: dict[str, str] = {}
        for entity, fields, _ in writes:
            value = _match_value(fields, keys) if entity not in write_links else None
            if value is not None:
                wanted[entity] = "\x1f".join(v or "" for v in value)
        if not wanted:
            return set(), set()
        seconds = ctx.config.engine.lease_seconds
        claimed = ctx.store.claim(ctx.org.name, self._scope(cfg), wanted.values(), holder, seconds)
        return claimed, {entity for entity, key in wanted.items() if key not in claimed}

    def _write(
        self,
        ctx: FlowContext,
        cfg: ExportRegistrationsSettings,
        pending: list[tuple[str, dict[str, Any], str]],
        links: dict[str, Link],
        records: Mapping[str, Record],
        mapping: RecordMapping,
    ) -> tuple[dict[str, Outcome], list[Link]]:
        """Write ``pending`` (at most one per match-key value); the outcomes and new links.

        For the records an update policy applies to (and in a dry run) the flow matches itself,
        reading the target's current values in the same one query per batch a plugin's upsert
        makes, then updates the matched by id and inserts the rest: the same calls as an upsert.
        The other records of the batch go to the plugin's upsert."""
        outcomes: dict[str, Outcome] = {}
        new_links: list[Link] = []
        by_entity = {entity: (fields, digest) for entity, fields, digest in pending}
        guarded = bool(policy_fields(mapping))

        # 1. Records already linked: update by id (no match query needed).
        linked = [(e, links[e]) for e in by_entity if e in links]
        # 2. The rest: find or create through the match key or the cascade.
        unlinked = [e for e in by_entity if e not in links]

        updates: list[tuple[str, str, str]] = [
            (e, link.target_object, link.target_id) for e, link in linked
        ]
        current: dict[str, Mapping[str, Any]] = {}
        if (guarded or ctx.dry_run) and linked:  # a preview diffs linked records too
            current.update(self._current(ctx, cfg, mapping, linked))
        creates: list[str] = []
        # The flow matches itself for a cascade, update-only and previews, and for the records
        # a policy applies to (it needs their current values); the rest go to the plugin's
        # upsert, one Collections call on an external id. Per record: a default transform
        # that did not fire (the source had a value) guards nothing.
        if cfg.match_cascade or cfg.update_only or ctx.dry_run:
            own, plain = unlinked, []
        elif guarded:
            policed = {e for e in unlinked if record_policies(mapping, records[e])}
            own = [e for e in unlinked if e in policed]
            plain = [e for e in unlinked if e not in policed]
        else:
            own, plain = [], unlinked
        if unlinked:
            if own:
                steps = list(cfg.match_cascade) or [CascadeStep(cfg.target_object, cfg.match_key)]
                remaining = list(own)
                for step in steps:
                    if not remaining:
                        break
                    values = {
                        e: by_entity[e][0].get(step.match_key)
                        for e in remaining
                        if by_entity[e][0].get(step.match_key)
                    }
                    read = _read_fields(ctx, step.object, step.match_key, mapping)
                    matches = self._match(ctx, step.object, step.match_key, values.values(), read)
                    still = []
                    for e in remaining:
                        hit = matches.get(str(values.get(e, "")).lower())
                        if hit is not None and hit.id:
                            updates.append((e, step.object, hit.id))
                            current[e] = hit.fields
                        else:
                            still.append(e)
                    remaining = still
                if cfg.update_only:
                    for e in remaining:
                        outcomes[e] = Outcome.done("update-only: no existing record matched")
                else:
                    creates = remaining
            if plain:
                request = PushRequest(
                    cfg.target_object,
                    "upsert",
                    tuple(PushItem(e, by_entity[e][0]) for e in plain),
                    match_key=cfg.match_key,
                )
                for result in ctx.push("crm", request, flow=self.name):
                    outcomes[result.key] = outcome_of(result)
                    if result.ok and result.id:
                        new_links.append(
                            Link(
                                ctx.org.name,
                                self.name,
                                result.key,
                                cfg.target_object,
                                result.id,
                                by_entity[result.key][1],
                            )
                        )

        # Updates grouped per object (a cascade may update Contacts and Leads in one batch).
        per_object: dict[str, list[tuple[str, str]]] = {}
        for entity, obj, target_id in updates:
            per_object.setdefault(obj, []).append((entity, target_id))
        for obj, rows in per_object.items():
            items: list[PushItem] = []
            held: dict[str, Mapping[str, str]] = {}
            for e, tid in rows:
                fields = _fields_of(ctx, obj, _without(by_entity[e][0], "Id"))
                if guarded:
                    decision = apply_policies(
                        _changed(fields, current.get(e)),
                        record_policies(mapping, records[e]),
                        current.get(e),
                        creating=False,
                    )
                    if not decision.write:
                        outcomes[e] = _unchanged(decision.held)
                        new_links.append(
                            Link(ctx.org.name, self.name, e, obj, tid, by_entity[e][1])
                        )
                        continue
                    fields, held[e] = dict(decision.write), decision.held
                items.append(PushItem(e, fields, id=tid))
            if not items:
                continue
            request = PushRequest(obj, "update", tuple(items))
            targets = dict(rows)
            for result in ctx.push("crm", request, flow=self.name, before=current, held=held):
                outcomes[result.key] = outcome_of(result)
                if result.ok:
                    new_links.append(
                        Link(
                            ctx.org.name,
                            self.name,
                            result.key,
                            obj,
                            result.id or targets[result.key],
                            by_entity[result.key][1],
                        )
                    )
        if creates:
            last = cfg.match_cascade[-1].object if cfg.match_cascade else cfg.target_object
            request = PushRequest(
                last,
                "insert",
                tuple(PushItem(e, _fields_of(ctx, last, by_entity[e][0])) for e in creates),
            )
            for result in ctx.push("crm", request, flow=self.name):
                outcomes[result.key] = outcome_of(result)
                if result.ok and result.id:
                    new_links.append(
                        Link(
                            ctx.org.name,
                            self.name,
                            result.key,
                            last,
                            result.id,
                            by_entity[result.key][1],
                        )
                    )
        return outcomes, new_links

    def _current(
        self,
        ctx: FlowContext,
        cfg: ExportRegistrationsSettings,
        mapping: RecordMapping,
        linked: Sequence[tuple[str, Link]],
    ) -> dict[str, Mapping[str, Any]]:
        """Current values of linked records, for their update policies: one read per object
        by id (linked records need no match query, so this read takes its place)."""
        out: dict[str, Mapping[str, Any]] = {}
        per_object: dict[str, dict[str, str]] = {}
        for entity, link in linked:
            per_object.setdefault(link.target_object, {})[link.target_id] = entity
        for obj, entities in per_object.items():
            read = _read_fields(ctx, obj, cfg.match_key, mapping)
            request = PullRequest(object=obj, fields=read, ids=tuple(entities))
            for record in ctx.pull("crm", request):
                if record.id in entities:
                    out[entities[record.id]] = record.fields
        return out

    def _match(
        self, ctx: FlowContext, obj: str, key: str, values: Iterable[Any], read: Sequence[str]
    ) -> dict[str, Record]:
        """One query: existing ``obj`` records whose ``key`` is among ``values`` (lower-cased),
        with the fields ``read`` (their current values)."""
        wanted = sorted({str(v) for v in values})
        if not wanted:
            return {}
        request = PullRequest(
            object=obj,
            fields=tuple(dict.fromkeys((key, *read))),
            filters=(Filter(key, "in", wanted),),
        )
        found: dict[str, Record] = {}
        for record in ctx.pull("crm", request):
            value = record.get(key)
            if value is not None and record.id:
                found.setdefault(str(value).lower(), record)
        return found


Pending = tuple[str, dict[str, Any], str]  # entity, mapped fields, their digest


#: The outcome of a registration whose match value another batch is writing right now.
_BUSY = Outcome.retry(
    RemoteFailure(
        "MATCH_KEY_BUSY",
        "another batch is writing a record with the same match key; retried once it is done, "
        "when the lookup finds that record",
        retryable=True,
    ),
    retry_after=1.0,
)


def _match_keys(cfg: ExportRegistrationsSettings) -> tuple[str, ...]:
    """The target fields an unlinked registration is matched on (the cascade's, in order)."""
    if cfg.match_cascade:
        return tuple(dict.fromkeys(step.match_key for step in cfg.match_cascade))
    return (cfg.match_key,)


def _match_value(fields: Mapping[str, Any], keys: Sequence[str]) -> tuple[str | None, ...] | None:
    """The values of ``keys`` as the match lookups compare them (ignoring case: an email field,
    and the lookups of the cascade and of upserts, compare so), None when all are empty."""
    values = tuple(
        None if fields.get(key) in (None, "") else str(fields[key]).lower() for key in keys
    )
    return None if all(v is None for v in values) else values


def _one_write_per_match(
    pending: list[Pending],
    links: Mapping[str, Link],
    records: Mapping[str, Record],
    keys: Sequence[str],
) -> tuple[list[Pending], dict[str, Link], dict[str, str]]:
    """Merge the registrations that share a match-key value into one write.

    Returns the writes (in batch order), the links to write them by (a registration merged
    with one already linked is written to that record), and for every registration merged into
    another's write, that writer. Registrations linked to different records stay apart: each
    link says which record it is; the unlinked ones of such a group are one write of their own.
    """
    groups: dict[tuple[str | None, ...], list[Pending]] = {}
    writes: list[Pending] = []
    for entry in pending:
        value = _match_value(entry[1], keys)
        if value is None:
            writes.append(entry)
        else:
            groups.setdefault(value, []).append(entry)
    write_links = dict(links)
    merged: dict[str, str] = {}
    for members in groups.values():
        by_target: dict[tuple[str, str] | None, list[Pending]] = {}
        for entry in members:
            link = links.get(entry[0])
            target = (link.target_object, link.target_id) if link else None
            by_target.setdefault(target, []).append(entry)
        linked = [links[part[0][0]] for target, part in by_target.items() if target is not None]
        parts = [members] if len(linked) <= 1 else list(by_target.values())
        for part in parts:
            writer = max(part, key=lambda entry: _recency(records[entry[0]]))
            writes.append(writer)
            if len(linked) == 1 and writer[0] not in links:
                write_links[writer[0]] = linked[0]
            merged.update((entry[0], writer[0]) for entry in part if entry is not writer)
    order = {entry[0]: n for n, entry in enumerate(pending)}
    return sorted(writes, key=lambda entry: order[entry[0]]), write_links, merged


def _with_source_modified(links: list[Link], records: Mapping[str, Record]) -> list[Link]:
    """The links, each stamped with when its registration changed (``not_older`` compares a
    later snapshot with it)."""
    return [
        attrs.evolve(link, source_modified=record.modified_at)
        if (record := records.get(link.source_key)) is not None
        else link
        for link in links
    ]


_NEVER = dt.datetime.min.replace(tzinfo=dt.UTC)


def _recency(record: Record) -> tuple[dt.datetime, str]:
    """Which registration is the latest: modified time, then id (a record without a modified
    time is the oldest)."""
    modified = record.modified_at or _NEVER
    if modified.tzinfo is None:
        modified = modified.replace(tzinfo=dt.UTC)
    return modified, record.id or ""


def _merged_outcome(outcome: Outcome, writer: str, keys: Sequence[str]) -> Outcome:
    """A merged registration's outcome: its writer's, saying so in the sync log."""
    if outcome.kind != "done":
        return outcome
    note = f"one write with {writer} (same {' / '.join(keys)})"
    return Outcome.done(f"{outcome.message}: {note}" if outcome.message else note)


def _mapped_away(record: Record) -> Record:
    """``record`` without its fields: what a batch keeps of a registration once it was mapped
    (its id and modified time: which of a merged group is the latest, the links' stamp)."""
    return attrs.evolve(record, fields={})


def _fields_of(ctx: FlowContext, obj: str, fields: dict[str, Any]) -> dict[str, Any]:
    """The mapped fields ``obj`` has: one mapping serves every object of a match cascade
    (a Contact has no Company, a Lead does)."""
    described = ctx.describe("crm", obj)
    if described is None:
        return fields
    return {k: v for k, v in fields.items() if described.field(k) is not None}


def _without(fields: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if k != key}


def _read_fields(ctx: FlowContext, obj: str, key: str, mapping: RecordMapping) -> tuple[str, ...]:
    """The fields a match query reads: the key and every mapped field ``obj`` has, so update
    policies and dry-run diffs see the current values."""
    return tuple(_fields_of(ctx, obj, {key: None, **{f.target: None for f in mapping.fields}}))


def _changed(fields: Mapping[str, Any], current: Mapping[str, Any] | None) -> dict[str, Any]:
    """The fields whose value differs from the current one (all of them when unknown)."""
    if current is None:
        return dict(fields)
    now = {k.lower(): v for k, v in current.items()}
    return {k: v for k, v in fields.items() if not same_value(v, now.get(k.lower()))}


def _unchanged(held: Mapping[str, str]) -> Outcome:
    """A matched record that needs no write: its values are current, or policies hold them."""
    if not held:
        return Outcome.done("unchanged")
    return Outcome.done(
        "unchanged: held by policy: " + "; ".join(f"{k} ({v})" for k, v in held.items())
    )
