"""Magic links back to the CRM: the link URL and its status written to the registration record.

Entities are CRM record ids. The magic link is found through the link the import flow stored
(CRM id -> magic link id). Status follows Hopin's rules: a link sent from the CRM stays
"invited" until the invitee accepts, then it is "registered"; the configured values are
written (default "Invited" / "Registered"). Platform deliveries and the poller name magic
links; they are turned back into CRM ids through the link table or the link's registrationId.
The records about to be written are read once per batch: one already holding its link and
status costs no write, and the others' writes carry their current values (audit, preview).
A link the import flow just created comes with its mark (``answered_link``) and is not read
back from the platform while that mark is the row's only one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import attrs

from ..config import OrgConfig
from ..errors import ConfigurationError, RetryableError
from ..executor import Outcome
from ..models import (
    Finding,
    Notification,
    PullRequest,
    PushItem,
    PushResult,
    Record,
    Watermark,
)
from ..settings import setting
from ..store import OutboxItem, content_hash
from . import platform as P
from .base import (
    Flow,
    FlowCheck,
    FlowContext,
    Role,
    marked_since,
    push_and_link,
    read_current,
    retry_all,
    snapshot_of,
    usable_snapshot,
)

__all__ = ["MagicLinks", "MagicLinksSettings"]

IMPORTS = "import_registrations"


@attrs.frozen(kw_only=True)
class MagicLinksSettings:
    """``[orgs.X.flows.magic_links]``: each magic link and its status -> CRM record fields."""

    link_field: str = setting(
        label="Magic link field", help="The field of the CRM record that receives the link URL."
    )
    status_field: str | None = setting(
        None, label="Status field", help="The field that receives Invited / Registered (optional)."
    )
    invited_value: str = setting("Invited", label="Invited value", help="Written while invited.")
    registered_value: str = setting(
        "Registered", label="Registered value", help="Written once the invitee registered."
    )
    on_revoke: Literal["keep", "mark", "clear"] = setting(
        "keep",
        label="Revoked links",
        help="When a magic link written to a record no longer exists (revoked or deleted on the "
        "event platform): keep the fields, mark (status_field = revoked_value, link emptied) "
        "or clear (link and status emptied).",
    )
    revoked_value: str = setting(
        "Revoked", label="Revoked value", help="Written by on_revoke = mark."
    )
    crm_object: str | None = setting(
        None,
        label="CRM object",
        help="The object the links are written to; default: the import flow's source object.",
    )
    poll_interval: float = setting(
        60.0, label="Poll interval (s)", help="How often the poller reads changed magic links."
    )
    enabled: bool = setting(True, label="Enabled", help="false turns the flow off.")


def answered_link(system: str, link_id: str, result: PushResult | None) -> dict[str, Any] | None:
    """The mark payload of a magic link the platform just answered with (created, or found
    by look-before-create): a snapshot of its URL and status, which the write-back uses instead
    of reading the link again while the mark is the row's only one (``usable_snapshot``).
    None when the answer does not carry both (the write-back then reads it)."""
    answer = result.returned if result is not None and result.ok else None
    if result is None or not answer or not answer.get(P.LINK_URL) or P.LINK_STATUS not in answer:
        return None
    return {
        **snapshot_of(Record(system, P.MAGIC_LINK, link_id, dict(answer))),
        "created": bool(result.created),
    }


def _crm_object(org: OrgConfig, settings: MagicLinksSettings) -> str | None:
    if settings.crm_object:
        return settings.crm_object
    imports = org.flows.get(IMPORTS)
    return getattr(imports, "source_object", None)


class MagicLinks(Flow):
    """Hopin magic link + status -> fields of the CRM record it was created for."""

    name = "magic_links"
    source_role = "platform"
    settings_class = MagicLinksSettings

    def crm_object(self, ctx: FlowContext) -> str:
        """The CRM object the links belong to (``crm_object``, else the import flow's source)."""
        found = _crm_object(ctx.org, ctx.settings(self.name))
        if not found:
            raise ConfigurationError(
                [
                    f"$.orgs.{ctx.org.name}.flows.magic_links.crm_object: name the CRM object the "
                    f"links are written to (there is no import_registrations flow to take it from)"
                ]
            )
        return found

    def schema_objects(self, org: OrgConfig, settings: MagicLinksSettings) -> dict[Role, set[str]]:
        """The CRM object the links are written to, and magic links."""
        obj = _crm_object(org, settings)
        return {"crm": {obj} if obj else set(), "platform": {P.MAGIC_LINK}}

    def check(self, check: FlowCheck) -> list[Finding]:
        """The CRM object is known and the link and status fields exist and are updateable."""
        settings: MagicLinksSettings = check.settings
        obj = _crm_object(check.org, settings)
        if not obj:
            return [
                check.finding(
                    "magic_links",
                    "no CRM object to write the links to",
                    key="crm_object",
                    fix="set crm_object, or configure import_registrations",
                )
            ]
        findings = []
        for key in ("link_field", "status_field"):
            name = getattr(settings, key)
            if name is not None:
                findings += check.field(
                    "crm",
                    obj,
                    name,
                    key,
                    updateable=True,
                    fix=f"create the field on {obj}, or correct the name",
                )
        return findings

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
        """CRM ids behind the magic links (or registrations on them) a delivery names.

        A link's creation is not one of them: only links the import flow created are written
        back, and it marks each itself, with the link as created; a second mark racing it
        would only make the write-back read the link again."""
        if notification.kind == P.LINK_CREATED:
            return []
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
        cfg: MagicLinksSettings = ctx.settings(self.name)
        crm_object = self.crm_object(ctx)
        ids = [i.entity for i in items]
        imports = ctx.store.get_links(ctx.org.name, "import_registrations", ids)
        mine = ctx.store.get_links(ctx.org.name, self.name, ids)
        # A link the import just created (or found) came with its mark: while that mark is the
        # row's only one, nothing changed the link since, and it is not read again.
        magic: dict[str, Record] = {}
        minted: set[str] = set()
        for item in items:
            link = imports.get(item.entity)
            answered = usable_snapshot(item)
            if link is not None and answered is not None and answered.id == link.target_id:
                magic[link.target_id] = answered
                if item.payload.get("created"):
                    minted.add(item.entity)
        link_ids = tuple(sorted({link.target_id for link in imports.values()} - set(magic)))
        try:
            if link_ids:
                unread = [e for e, link in imports.items() if link.target_id in link_ids]
                magic.update(
                    (r.id, r)
                    for r in ctx.pull(
                        "platform",
                        # Most were created or accepted just before their mark: the plugin may
                        # read them from the list of recent changes, not one by one.
                        PullRequest(
                            object=P.MAGIC_LINK, ids=link_ids, recent=marked_since(items, unread)
                        ),
                    )
                    if r.id
                )
        except RetryableError as exc:
            return retry_all(items, exc)
        outcomes: dict[str, Outcome] = {}
        pending: list[tuple[PushItem, str]] = []
        for entity in ids:
            link = imports.get(entity)
            record = magic.get(link.target_id) if link else None
            if record is None:
                written = mine.get(entity)
                if link is None or written is None or cfg.on_revoke == "keep":
                    outcomes[entity] = Outcome.done("no magic link for this record yet")
                    continue
                revoked: dict[str, str | None] = {cfg.link_field: None}
                if cfg.status_field:
                    marked = cfg.on_revoke == "mark"
                    revoked[cfg.status_field] = cfg.revoked_value if marked else None
                digest = content_hash(revoked)
                if written.hash == digest:
                    outcomes[entity] = Outcome.done("unchanged")
                    continue
                pending.append((PushItem(entity, revoked, id=entity), digest))
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
        # One read by id per batch: a record already holding its link and status costs no
        # write, and the others' writes (and a preview's diffs) carry their current values.
        # A link created just now is not read for: no record can hold a URL minted by that
        # create (its audit entry names every field written).
        wanted = [cfg.link_field] + ([cfg.status_field] if cfg.status_field else [])
        unsure = (i.id or "" for i, _ in pending if i.key not in minted)
        try:
            current = read_current(ctx, "crm", crm_object, unsure, wanted)
        except RetryableError as exc:
            return retry_all(items, exc)
        # Said before writing: the CRM's automation may announce the write before it returns.
        # The import then does not re-run for that announcement (``flows.echoes``).
        if not ctx.dry_run:
            ctx.echoes.expect(crm_object, {i.id or "": i.fields for i, _ in pending})
        answers: dict[str, PushResult] = {}
        outcomes.update(
            push_and_link(
                ctx, self.name, "crm", crm_object, "update", pending, current, results=answers
            )[0]
        )
        if not ctx.dry_run:
            pushed = {key for key, result in answers.items() if result.ok}
            ctx.echoes.withdraw(crm_object, (i.id or "" for i, _ in pending if i.key not in pushed))
        return [outcomes[i] for i in ids]
