"""The ``ticket_campaigns`` flow: keep one CRM record per ticket of the event.

A flow is a plugin like any other: it registers itself through ``register_flows``, declares
its settings class (``[orgs.NAME.flows.ticket_campaigns]``, checked strictly when the file is
read) and checks its settings against the CRM's schema in ``eventsync check``. It calls the
systems only through ``FlowContext`` with the roles ``"crm"`` and ``"platform"``, so it runs
on any CRM plugin. Each ticket becomes (or updates) the record whose ``code_field`` holds the
ticket's integration code, the same code the import flow reads to choose a ticket.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
from eventsync import hookimpl
from eventsync.config import OrgConfig
from eventsync.errors import RetryableError
from eventsync.executor import Outcome
from eventsync.flows.base import Flow, FlowCheck, FlowContext, Role, outcome_of, retry_all
from eventsync.models import Finding, PullRequest, PushItem, PushRequest, Watermark
from eventsync.settings import setting
from eventsync.store import Link, OutboxItem, content_hash

TICKET = "ticket"


@attrs.frozen(kw_only=True)
class TicketCampaignsSettings:
    """``[orgs.NAME.flows.ticket_campaigns]``."""

    target_object: str = setting(
        label="Target object", help="The CRM object that gets one record per ticket."
    )
    name_field: str = setting(label="Name field", help="Receives the ticket's name.")
    code_field: str = setting(
        label="Code field",
        help="Receives the ticket's integration code; existing records are matched on it.",
    )
    poll_interval: float = setting(
        300.0, label="Poll interval (s)", help="How often tickets are read."
    )
    enabled: bool = setting(True, label="Enabled", help="false turns the flow off.")


class TicketCampaigns(Flow):
    """Event-platform tickets -> CRM records matched on the integration code."""

    name = "ticket_campaigns"
    source_role = "platform"
    settings_class = TicketCampaignsSettings

    def schema_objects(
        self, org: OrgConfig, settings: TicketCampaignsSettings
    ) -> dict[Role, set[str]]:
        """Tickets, and the target object."""
        return {"platform": {TICKET}, "crm": {settings.target_object}}

    def check(self, check: FlowCheck) -> list[Finding]:
        """Both target fields exist on the target object."""
        settings: TicketCampaignsSettings = check.settings
        return [
            *check.field("crm", settings.target_object, settings.name_field, "name_field"),
            *check.field("crm", settings.target_object, settings.code_field, "code_field"),
        ]

    def poll_request(self, ctx: FlowContext, since: Watermark | None) -> PullRequest:
        """Every ticket of the event (an event has few)."""
        return PullRequest(object=TICKET)

    def run_batch(self, ctx: FlowContext, items: Sequence[OutboxItem]) -> list[Outcome]:
        """Upsert one record per ticket of the batch, matched on the code field."""
        cfg: TicketCampaignsSettings = ctx.settings(self.name)
        ids = [item.entity for item in items]
        try:
            tickets = {t.id: t for t in ctx.pull("platform", PullRequest(object=TICKET)) if t.id}
        except RetryableError as exc:
            return retry_all(items, exc)
        outcomes: dict[str, Outcome] = {}
        pending: list[PushItem] = []
        digests: dict[str, str] = {}
        links = ctx.store.get_links(ctx.org.name, self.name, ids)
        for entity in ids:
            ticket = tickets.get(entity)
            code = ticket.get("integrationCode") if ticket else None
            if ticket is None or not code:
                outcomes[entity] = Outcome.done("no such ticket, or it has no integration code")
                continue
            fields = {cfg.name_field: ticket.get("name"), cfg.code_field: code}
            digests[entity] = content_hash(fields)
            link = links.get(entity)
            if link is not None and link.hash == digests[entity]:
                outcomes[entity] = Outcome.done("unchanged")
                continue
            pending.append(PushItem(entity, fields))
        if pending:
            request = PushRequest(
                cfg.target_object, "upsert", tuple(pending), match_key=cfg.code_field
            )
            try:
                results = ctx.push("crm", request, flow=self.name)
            except RetryableError as exc:
                return retry_all(items, exc)
            new_links = []
            for result in results:
                outcomes[result.key] = outcome_of(result)
                if result.ok and result.id:
                    new_links.append(
                        Link(
                            ctx.org.name,
                            self.name,
                            result.key,
                            cfg.target_object,
                            result.id,
                            digests[result.key],
                        )
                    )
            ctx.store.put_links(new_links)
        return [outcomes[entity] for entity in ids]


@hookimpl
def register_flows(register: Callable[[Any], None]) -> None:
    """Register the ticket_campaigns flow."""
    register(TicketCampaigns())
