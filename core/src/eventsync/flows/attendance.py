"""Attendance: who attended (and, where mapped, join time, duration, sessions) -> the CRM.

Entities are attendee emails (lower-cased). The CRM record to update is the one the attendee
was invited from: the magic link for that email carries the CRM id (``registrationId``), or the
import flow's link table knows it. The attendance report is read once per batch and cached
briefly; unchanged attendance costs no call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..config import AttendanceConfig
from ..errors import MappingError, RetryableError
from ..executor import Outcome
from ..models import Filter, Notification, PullRequest, PushItem, Record, Watermark
from ..store import OutboxItem, content_hash
from . import platform as P
from .base import Flow, FlowContext, mapping_failure, push_and_link, retry_all

__all__ = ["Attendance"]

REPORT_TTL = 30.0
REPORT_CACHE = "attendance-report"


class Attendance(Flow):
    """Hopin attendance -> CampaignMember Status "Attended" (and mapped details)."""

    name = "attendance"
    source_role = "platform"

    def poll_request(self, ctx: FlowContext, since: Watermark | None) -> PullRequest:
        """The whole attendance report (level-triggered: unchanged rows cost nothing)."""
        return PullRequest(object=P.ATTENDANCE)

    def entity_of(self, ctx: FlowContext, record: Record) -> str | None:
        """An attendee's email, lower-cased."""
        email = record.get(P.ATTENDEE_EMAIL)
        return str(email).strip().lower() if email else None

    def entities_from(self, ctx: FlowContext, notification: Notification) -> list[str]:
        """Attendees named by an attendance delivery (a signal whose name mentions attendance).

        The cached report is dropped so the batch reads the attendance just recorded.
        """
        if "attendance" not in notification.kind.lower():
            return []
        ctx.forget(REPORT_CACHE)
        emails = (e.fields.get(P.ATTENDEE_EMAIL) for e in notification.entities)
        return [str(email).strip().lower() for email in emails if email]

    def report(self, ctx: FlowContext) -> dict[str, Record]:
        """Attendance rows by lower-cased email (cached briefly)."""

        def load() -> dict[str, Record]:
            rows: dict[str, Record] = {}
            for row in ctx.pull("platform", PullRequest(object=P.ATTENDANCE)):
                email = self.entity_of(ctx, row)
                if email:
                    rows[email] = row
            return rows

        return ctx.cached(REPORT_CACHE, REPORT_TTL, load)

    def _crm_ids(self, ctx: FlowContext, emails: Sequence[str]) -> dict[str, str]:
        found: dict[str, str] = {}
        for email in emails:
            for link in ctx.pull("platform", PullRequest(object=P.MAGIC_LINK, filters=(Filter(P.LINK_EMAIL, "=", email),))):
                crm_id = link.get(P.LINK_CRM_ID)
                if not crm_id:
                    for known in ctx.store.find_links_to(ctx.org.name, P.MAGIC_LINK, link.id or ""):
                        crm_id = known.source_key
                if crm_id:
                    found[email] = str(crm_id)
                    break
        return found

    def run_batch(self, ctx: FlowContext, items: Sequence[OutboxItem]) -> list[Outcome]:
        """Write attendance for each attendee of the batch."""
        cfg: AttendanceConfig = ctx.settings(self.name)
        emails = [i.entity for i in items]
        try:
            report = self.report(ctx)
            crm_ids = self._crm_ids(ctx, [e for e in emails if e in report])
        except RetryableError as exc:
            return retry_all(items, exc)
        target = ctx.describe("crm", cfg.target_object)
        mapping = ctx.mapping(self.name, P.ATTENDANCE, cfg.target_object)
        mine = ctx.store.get_links(ctx.org.name, self.name, emails)
        outcomes: dict[str, Outcome] = {}
        pending: list[tuple[PushItem, str]] = []
        for email in emails:
            row = report.get(email)
            crm_id = crm_ids.get(email)
            if row is None:
                outcomes[email] = Outcome.done("not in the attendance report")
                continue
            if crm_id is None:
                outcomes[email] = Outcome.done("attendee was not invited from the CRM")
                continue
            try:
                fields: dict[str, Any] = ctx.map(row, mapping, target) if mapping.fields else {}
            except MappingError as exc:
                outcomes[email] = mapping_failure(exc)
                continue
            fields[cfg.status_field] = cfg.attended_value
            digest = content_hash([crm_id, fields])
            previous = mine.get(email)
            if previous is not None and previous.hash == digest:
                outcomes[email] = Outcome.done("unchanged")
                continue
            pending.append((PushItem(email, fields, id=crm_id), digest))
        outcomes.update(push_and_link(ctx, self.name, "crm", cfg.target_object, "update", pending)[0])
        return [outcomes[e] for e in emails]
