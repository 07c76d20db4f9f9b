"""Magic links back to the CRM: the link URL and its status written to the registration record.

Entities are CRM record ids. The magic link is found through the link the import flow stored
(CRM id -> magic link id). Status follows Hopin's rules: a link sent from the CRM stays
"invited" until the invitee accepts, then it is "registered"; the configured values are
written (default "Invited" / "Registered"). Platform deliveries and the poller name magic
links; they are turned back into CRM ids through the link table or the link's registrationId.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..config import MagicLinksConfig
from ..errors import RetryableError
from ..executor import Outcome
from ..models import Notification, PullRequest, PushItem, Record, Watermark
from ..store import OutboxItem, content_hash
from . import platform as P
from .base import Flow, FlowContext, push_and_link, retry_all

__all__ = ["MagicLinks"]


class MagicLinks(Flow):
    """Hopin magic link + status -> fields of the CRM record it was created for."""

    name = "magic_links"
    source_role = "platform"

    def crm_object(self, ctx: FlowContext) -> str:
        """The CRM object the links belong to (the import flow's source object)."""
        imports = ctx.org.flows.import_registrations
        return imports.source_object if imports else "CampaignMember"

    def poll_request(self, ctx: FlowContext, since: Watermark | None) -> PullRequest:
        """Magic links changed since the watermark."""
        return PullRequest(object=P.MAGIC_LINK, since=since, overlap=5.0)

    def entity_of(self, ctx: FlowContext, record: Record) -> str | None:
        """The CRM id a magic link was created for."""
        return self._crm_id(ctx, record.id, record.get(P.LINK_CRM_ID))

    def _crm_id(self, ctx: FlowContext, link_id: str | None, registration_id: object) -> str | None:
        if link_id:
            for link in ctx.store.find_links_to(ctx.org.name, P.MAGIC_LINK, link_id):
                if link.flow == "import_registrations":
                    return link.source_key
        return str(registration_id) if registration_id else None

    def entities_from(self, ctx: FlowContext, notification: Notification) -> list[str]:
        """CRM ids behind the magic links (or registrations on them) a delivery names."""
        found = []
        for entity in notification.entities:
            if entity.object == P.MAGIC_LINK:
                crm_id = self._crm_id(ctx, entity.id, entity.fields.get(P.LINK_CRM_ID))
            elif entity.object == P.REGISTRATION:
                crm_id = entity.fields.get(P.LINK_CRM_ID) or None
            else:
                crm_id = None
            if crm_id:
                found.append(str(crm_id))
        return found

    def run_batch(self, ctx: FlowContext, items: Sequence[OutboxItem]) -> list[Outcome]:
        """Write the link and status of each CRM record of the batch."""
        cfg: MagicLinksConfig = ctx.settings(self.name)
        crm_object = self.crm_object(ctx)
        ids = [i.entity for i in items]
        imports = ctx.store.get_links(ctx.org.name, "import_registrations", ids)
        mine = ctx.store.get_links(ctx.org.name, self.name, ids)
        link_ids = tuple(sorted({link.target_id for link in imports.values()}))
        try:
            magic = (
                {
                    r.id: r
                    for r in ctx.pull("platform", PullRequest(object=P.MAGIC_LINK, ids=link_ids))
                }
                if link_ids
                else {}
            )
        except RetryableError as exc:
            return retry_all(items, exc)
        outcomes: dict[str, Outcome] = {}
        pending: list[tuple[PushItem, str]] = []
        for entity in ids:
            link = imports.get(entity)
            record = magic.get(link.target_id) if link else None
            if record is None:
                outcomes[entity] = Outcome.done("no magic link for this record yet")
                continue
            registered = str(record.get(P.LINK_STATUS) or "").lower() == "registered"
            fields = {cfg.link_field: record.get(P.LINK_URL)}
            if cfg.status_field:
                fields[cfg.status_field] = cfg.registered_value if registered else cfg.invited_value
            digest = content_hash(fields)
            previous = mine.get(entity)
            if previous is not None and previous.hash == digest:
                outcomes[entity] = Outcome.done("unchanged")
                continue
            pending.append((PushItem(entity, fields, id=entity), digest))
        outcomes.update(push_and_link(ctx, self.name, "crm", crm_object, "update", pending)[0])
        return [outcomes[i] for i in ids]
