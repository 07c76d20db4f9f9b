"""Import registrations: a CRM record (e.g. CampaignMember) -> a magic-link invitation.

The ticket is the one whose integration code equals the value of ``ticket_code_field``, read
from the record itself or through a relationship path (``Campaign.Hopin_Ticket_Code__c``).
A code that matches no ticket is a record error saying so. The invitation is created with
look-before-create in the platform plugin, so a retried batch never invites anyone twice; the
link (CRM id -> magic link id) is stored and the ``magic_links`` flow is marked to write the
link back.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import attrs

from ..config import FieldMapConfig, FilterConfig, OrgConfig
from ..errors import MappingError, RetryableError
from ..executor import Outcome
from ..mapping import template_paths
from ..models import (
    Filter,
    Finding,
    Notification,
    PullRequest,
    PushItem,
    PushRequest,
    PushResult,
    Record,
    RemoteFailure,
    SystemProfile,
    Watermark,
)
from ..settings import setting
from ..store import FOLLOW_ON, Link, OutboxItem, content_hash
from . import platform as P
from .base import (
    Flow,
    FlowCheck,
    FlowContext,
    RelatedSource,
    Role,
    denied,
    mapping_failure,
    outcome_of,
    person_mapping,
    push_and_link,
    retry_all,
    retry_outcome,
)
from .cancellation import GONE_CODES
from .magic_links import answered_link

__all__ = ["ImportRegistrations", "ImportRegistrationsSettings"]

TICKETS_TTL = 60.0


@attrs.frozen(kw_only=True)
class ImportRegistrationsSettings:
    """``[orgs.X.flows.import_registrations]``: CRM records -> magic-link invitations."""

    source_object: str = setting(
        label="Invitation object",
        help="The CRM object whose records are invitations (default: the CRM plugin's).",
    )
    ticket_code_field: str = setting(
        label="Integration code field",
        help="The field, on the record or through a relationship path, holding the integration "
        "code of the ticket to invite on (the part after '=' of the ticket's registration URL).",
    )
    source_filter: tuple[FilterConfig, ...] = setting(
        (),
        label="Source filter",
        help="Conditions a record must meet to be an invitation, e.g. "
        '{ field = "...", op = "not_empty" }; the others are never invited nor dead-lettered.',
    )
    fields: tuple[FieldMapConfig, ...] = setting(
        label="Field mapping",
        help="Invitation fields and where each value comes from; default: email, first and "
        "last name.",
    )
    on_delete: Literal["keep", "delete"] = setting(
        "keep",
        label="Deleted invitations",
        help="What deleting an invitation record in the CRM does to the magic link eventsync "
        "created for it: keep it, or delete (revoke) it; the poller then also reads deleted "
        "records, where the CRM can list them.",
    )
    poll_interval: float = setting(
        60.0, label="Poll interval (s)", help="How often the poller catches what triggers missed."
    )
    trigger_window: float | None = setting(
        None,
        label="Trigger window (s)",
        help="Report changes no notification (e.g. an outbound message) announced in this time.",
    )
    enabled: bool = setting(True, label="Enabled", help="false turns the flow off.")

    def filters(self) -> tuple[Filter, ...]:
        """The source filter as pull filters."""
        return tuple(condition.to_model() for condition in self.source_filter)


class ImportRegistrations(Flow):
    """CRM registration record -> Hopin magic link on the coded ticket."""

    name = "import_registrations"
    source_role = "crm"
    settings_class = ImportRegistrationsSettings

    def default_settings(
        self, crm: SystemProfile | None, platform: SystemProfile | None
    ) -> dict[str, Any]:
        """The CRM's defaults (its invitation object and code field), plus a person mapping."""
        defaults: dict[str, Any] = {}
        if mapping := person_mapping(crm, platform):
            defaults["fields"] = mapping
        return {**defaults, **super().default_settings(crm, platform)}

    def schema_objects(
        self, org: OrgConfig, settings: ImportRegistrationsSettings
    ) -> dict[Role, set[str]]:
        """The invitation object, the objects its paths reach, tickets and magic links."""
        return {"crm": {settings.source_object}, "platform": {P.TICKET, P.MAGIC_LINK}}

    def schema_paths(
        self, settings: ImportRegistrationsSettings
    ) -> dict[Role, list[tuple[str, str]]]:
        """The code field, mapped sources and filter fields: their relationships are followed."""
        paths = [
            settings.ticket_code_field,
            *(entry.source for entry in settings.fields if entry.source),
            *(condition.field for condition in settings.source_filter),
        ]
        return {"crm": [(settings.source_object, path) for path in paths]}

    def check(self, check: FlowCheck) -> list[Finding]:
        """The mapping fits a magic link; the code field and the filter's fields resolve."""
        settings: ImportRegistrationsSettings = check.settings
        findings = check.mapping(
            "crm",
            settings.source_object,
            "platform",
            P.MAGIC_LINK,
            "insert",
            provided=(P.LINK_TICKET, P.LINK_CRM_ID),
        )
        findings += check.field(
            "crm",
            settings.source_object,
            settings.ticket_code_field,
            "ticket_code_field",
            fix="name the field (or relationship path) that holds the ticket's integration code",
        )
        for i, condition in enumerate(settings.source_filter):
            findings += check.field(
                "crm", settings.source_object, condition.field, f"source_filter[{i}]"
            )
        return findings

    def _fields(self, ctx: FlowContext, cfg: ImportRegistrationsSettings) -> tuple[str, ...]:
        wanted: dict[str, None] = {cfg.ticket_code_field: None}
        for entry in cfg.fields:
            if entry.source:
                wanted[entry.source] = None
            if entry.template:
                wanted.update(dict.fromkeys(template_paths(entry.template)))
        wanted.update(
            dict.fromkeys(ctx.hooks.required_fields(self.name, cfg.source_object, ctx.org))
        )
        return tuple(wanted)

    def poll_request(self, ctx: FlowContext, since: Watermark | None) -> PullRequest:
        """CRM registration records modified since the watermark."""
        cfg: ImportRegistrationsSettings = ctx.settings(self.name)
        return PullRequest(
            object=cfg.source_object,
            since=since,
            overlap=5.0,
            filters=cfg.filters(),
            ids_only=True,
            include_deleted=cfg.on_delete != "keep",
        )

    def entities_from(self, ctx: FlowContext, notification: Notification) -> list[str]:
        """Record ids of the configured object named by a CRM outbound message, but for the
        echo of eventsync's own write-back (``flows.echoes``): its invitation is made, and any
        other change to the record is announced by a notification of its own."""
        cfg: ImportRegistrationsSettings = ctx.settings(self.name)
        return [
            e.id
            for e in notification.entities
            if e.object.lower() == cfg.source_object.lower()
            and not ctx.echoes.consume(e.object, e.id, e.fields)
        ]

    def related_sources(self, ctx: FlowContext) -> list[RelatedSource]:
        """Parents reached through the gate's and the ticket code's relationship paths.

        When a Lead's opt-out or a Campaign's ticket code changes, the CampaignMembers that
        point at it are marked again, so a denied record is admitted once the person changes.
        """
        cfg: ImportRegistrationsSettings = ctx.settings(self.name)
        described = ctx.describe("crm", cfg.source_object)
        if described is None:
            return []
        paths = [
            cfg.ticket_code_field,
            *ctx.hooks.required_fields(self.name, cfg.source_object, ctx.org),
        ]
        sources = []
        for head in dict.fromkeys(p.split(".", 1)[0] for p in paths if "." in p):
            relation = described.relationship(head)
            if relation is None or not relation.reference_to:
                continue
            sources.append(
                RelatedSource(
                    name=f"{cfg.source_object}.{head}",
                    request=functools.partial(_changed_since, relation.reference_to[0]),
                    entities=functools.partial(self._children, ctx, cfg, relation.name),
                )
            )
        return sources

    def _children(
        self, ctx: FlowContext, cfg: ImportRegistrationsSettings, ref: str, parents: list[Record]
    ) -> list[str]:
        ids = sorted({p.id for p in parents if p.id})
        if not ids:
            return []
        request = PullRequest(
            object=cfg.source_object,
            filters=(Filter(ref, "in", ids), *cfg.filters()),
            ids_only=True,
        )
        return [r.id for r in ctx.pull("crm", request) if r.id]

    def tickets(self, ctx: FlowContext) -> dict[str, str]:
        """Integration code -> ticket id for the org's event (cached for a minute)."""

        def load() -> dict[str, str]:
            return {
                str(t.get(P.TICKET_CODE)): t.id
                for t in ctx.pull("platform", PullRequest(object=P.TICKET))
                if t.get(P.TICKET_CODE) and t.id
            }

        return ctx.cached("tickets", TICKETS_TTL, load)

    def run_batch(self, ctx: FlowContext, items: Sequence[OutboxItem]) -> list[Outcome]:
        """Invite each record of the batch on its ticket."""
        cfg: ImportRegistrationsSettings = ctx.settings(self.name)
        ids = [i.entity for i in items]
        try:
            records = {
                r.id: r
                for r in ctx.pull(
                    "crm",
                    PullRequest(
                        object=cfg.source_object,
                        fields=self._fields(ctx, cfg),
                        ids=tuple(ids),
                        filters=cfg.filters(),
                        include_deleted=cfg.on_delete != "keep",
                    ),
                )
            }
            tickets = self.tickets(ctx)
        except RetryableError as exc:
            return retry_all(items, exc)
        mapping = ctx.mapping(self.name, cfg.source_object, P.MAGIC_LINK)
        target = ctx.describe("platform", P.MAGIC_LINK)
        links = ctx.store.get_links(ctx.org.name, self.name, ids)
        outcomes: dict[str, Outcome] = {}
        pending: list[tuple[PushItem, str]] = []
        revoke: dict[str, Link] = {}
        unchanged: list[str] = []
        for entity in ids:
            record = records.get(entity)
            deleted = record.deleted if record is not None else not cfg.source_filter
            if cfg.on_delete == "delete" and deleted and entity in links:
                revoke[entity] = links[entity]
                continue
            if record is None or record.deleted:
                outcomes[entity] = Outcome.done(
                    f"{cfg.source_object} {entity} does not match the source filter: not an "
                    f"invitation"
                    if cfg.source_filter
                    else f"{cfg.source_object} no longer exists"
                )
                continue
            verdict = ctx.admit(self.name, record)
            if not verdict.allow:
                outcomes[entity] = denied(verdict)
                continue
            code = record.get(cfg.ticket_code_field)
            if code in (None, ""):
                outcomes[entity] = Outcome.dead(
                    RemoteFailure(
                        "NO_INTEGRATION_CODE",
                        f"{cfg.source_object} {entity} has no integration code in {cfg.ticket_code_field}; "
                        f"set it to the code shown after '=' in the ticket's registration URL",
                        (cfg.ticket_code_field,),
                    )
                )
                continue
            ticket_id = tickets.get(str(code))
            if ticket_id is None:
                ctx.forget("tickets")  # a ticket created a moment ago is found on retry
                outcomes[entity] = Outcome.dead(
                    RemoteFailure(
                        "UNKNOWN_INTEGRATION_CODE",
                        f"integration code {code!r} (from {cfg.source_object}.{cfg.ticket_code_field}) "
                        f"matches no ticket of the event; known codes: {', '.join(sorted(tickets)) or 'none'}",
                        (cfg.ticket_code_field,),
                    )
                )
                continue
            try:
                fields: dict[str, Any] = ctx.map(record, mapping, target)
            except MappingError as exc:
                outcomes[entity] = mapping_failure(exc)
                continue
            fields[P.LINK_TICKET] = ticket_id
            fields[P.LINK_CRM_ID] = entity
            digest = content_hash(fields)
            link = links.get(entity)
            if link is not None and link.hash == digest:
                outcomes[entity] = Outcome.done("unchanged")
                unchanged.append(entity)
                continue
            pending.append((PushItem(entity, fields), digest))

        answers: dict[str, PushResult] = {}
        written, new_links = push_and_link(
            ctx, self.name, "platform", P.MAGIC_LINK, "upsert", pending, results=answers
        )
        outcomes.update(written)
        if revoke:
            outcomes.update(self._revoke(ctx, cfg, revoke))
        if ctx.enabled("magic_links"):
            # Each mark carries the link as the platform just answered with it, so the
            # write-back need not read it again while nothing changed it since.
            system = ctx.connect("platform").system if new_links else ""
            follow: dict[str, Any] = {
                link.source_key: answered_link(system, link.target_id, answers.get(link.source_key))
                for link in new_links
            }
            # An invitation made by an earlier try whose follow-on mark was lost with it (the job
            # failed after the links were saved) still needs its link written back.
            if unchanged:
                written_back = ctx.store.get_links(ctx.org.name, "magic_links", unchanged)
                follow.update(dict.fromkeys(e for e in unchanged if e not in written_back))
            if follow:
                # Marked together: the write-back's worker need not linger for more.
                ctx.mark("magic_links", follow, hint=FOLLOW_ON)
        return [outcomes[i] for i in ids]

    def _revoke(
        self, ctx: FlowContext, cfg: ImportRegistrationsSettings, links: Mapping[str, Link]
    ) -> dict[str, Outcome]:
        """Delete the magic links of invitations deleted in the CRM, and their links."""
        items = tuple(PushItem(e, {}, id=link.target_id) for e, link in links.items())
        try:
            results = ctx.push(
                "platform", PushRequest(P.MAGIC_LINK, "delete", items), flow=self.name
            )
        except RetryableError as exc:
            return {e: retry_outcome(exc) for e in links}
        outcomes: dict[str, Outcome] = {}
        for result in results:
            gone = result.error is not None and result.error.code in GONE_CODES
            outcomes[result.key] = (
                Outcome.done(
                    f"{cfg.source_object} deleted in the CRM: magic link "
                    f"{links[result.key].target_id} revoked"
                )
                if result.ok or gone
                else outcome_of(result)
            )
        done = [e for e, outcome in outcomes.items() if outcome.kind == "done"]
        ctx.store.delete_links(ctx.org.name, self.name, done)
        return outcomes


def _changed_since(obj: str, since: Watermark) -> PullRequest:
    """Ids of ``obj`` records changed since ``since`` (with a small overlap)."""
    return PullRequest(object=obj, since=since, overlap=5.0, ids_only=True)
