"""Attendance: who attended (and, where mapped, join time, duration, sessions) -> the CRM.

Entities are attendee emails (lower-cased). The CRM record to update is the one the attendee
was invited from: the magic link for that email carries the CRM id (``registrationId``), or
the import flow's link table knows it. The event's magic links and its attendance report are
each read once per batch and cached briefly; unchanged attendance costs no call.

After the event (its end plus ``no_show_after``), invitees who did not attend get
``no_show_value`` when one is configured: the poller marks them as ``noshow:<CRM id>``
entities; an invitee who did attend is never marked a no-show.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from ..config import FieldMapConfig, OrgConfig
from ..errors import MappingError, RetryableError
from ..executor import Outcome
from ..models import (
    Finding,
    Notification,
    PullRequest,
    PushItem,
    Record,
    RecordMapping,
    Watermark,
)
from ..policies import apply_policies, record_policies
from ..settings import setting
from ..store import OutboxItem, content_hash
from . import platform as P
from .base import (
    Flow,
    FlowCheck,
    FlowContext,
    Role,
    mapping_failure,
    push_and_link,
    read_current,
    retry_all,
)

__all__ = ["Attendance", "AttendanceSettings"]

REPORT_TTL = 30.0
REPORT_CACHE = "attendance-report"
INVITEES_CACHE = "attendance-invitees"
#: Entity prefix of an invitee to mark as a no-show.
NO_SHOW = "noshow:"


@attrs.frozen(kw_only=True)
class AttendanceSettings:
    """``[orgs.X.flows.attendance]``: who attended -> the CRM record they were invited from."""

    target_object: str = setting(
        label="Attendance object",
        help="The CRM object that records attendance (default: the CRM plugin's).",
    )
    status_field: str = setting(
        label="Status field", help="The field that receives the attended value."
    )
    attended_value: str = setting(
        label="Attended value", help="Written to the status field of everyone who attended."
    )
    no_show_value: str | None = setting(
        None,
        label="No-show value",
        help="Written, after the event, to invitees who did not attend (leave out: off).",
    )
    no_show_after: float = setting(
        3600.0, label="No-shows after (s)", help="Seconds after the event ends before no-shows."
    )
    fields: tuple[FieldMapConfig, ...] = setting(
        (),
        label="Detail fields",
        help="More target fields from the attendance report (join time, duration, sessions).",
    )
    poll_interval: float = setting(
        300.0, label="Poll interval (s)", help="How often the attendance report is read."
    )
    enabled: bool = setting(True, label="Enabled", help="false turns the flow off.")


class Attendance(Flow):
    """Hopin attendance -> CampaignMember Status "Attended" (and mapped details)."""

    name = "attendance"
    source_role = "platform"
    settings_class = AttendanceSettings

    def schema_objects(self, org: OrgConfig, settings: AttendanceSettings) -> dict[Role, set[str]]:
        """The attendance object and the attendance report."""
        return {"crm": {settings.target_object}, "platform": {P.ATTENDANCE}}

    def check(self, check: FlowCheck) -> list[Finding]:
        """The status field exists and is updateable; detail fields fit the target."""
        settings: AttendanceSettings = check.settings
        findings = check.field(
            "crm", settings.target_object, settings.status_field, "status_field", updateable=True
        )
        if settings.fields:
            findings += check.mapping(
                "platform", P.ATTENDANCE, "crm", settings.target_object, "update"
            )
        return findings

    def poll_request(self, ctx: FlowContext, since: Watermark | None) -> PullRequest:
        """The whole attendance report (level-triggered: unchanged rows cost nothing)."""
        return PullRequest(object=P.ATTENDANCE)

    def entity_of(self, ctx: FlowContext, record: Record) -> str | None:
        """An attendee's email, lower-cased."""
        email = record.get(P.ATTENDEE_EMAIL)
        return str(email).strip().lower() if email else None

    def due_entities(self, ctx: FlowContext) -> list[str]:
        """After the event: every invitee whose email is not in the attendance report."""
        cfg: AttendanceSettings = ctx.settings(self.name)
        if not cfg.no_show_value or not self._event_over(ctx, cfg):
            return []
        report = self.report(ctx)
        return [
            f"{NO_SHOW}{crm_id}"
            for email, crm_id in self.invitees(ctx).items()
            if email not in report
        ]

    def _event_over(self, ctx: FlowContext, cfg: AttendanceSettings) -> bool:
        ends = [e.get(P.EVENT_END) for e in ctx.pull("platform", PullRequest(object=P.EVENT))]
        ends = [
            e
            if isinstance(e, dt.datetime)
            else dt.datetime.fromisoformat(str(e).replace("Z", "+00:00"))
            for e in ends
            if e
        ]
        if not ends:
            return False
        return dt.datetime.now(dt.UTC).timestamp() >= max(ends).timestamp() + cfg.no_show_after

    def entities_from(self, ctx: FlowContext, notification: Notification) -> list[str]:
        """Attendees named by an attendance delivery (a signal whose name mentions attendance).

        The cached report is dropped so the batch reads the attendance just recorded.
        """
        if "attendance" not in notification.kind.lower():
            return []
        ctx.forget(REPORT_CACHE)
        ctx.forget(INVITEES_CACHE)
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

    def invitees(self, ctx: FlowContext) -> dict[str, str]:
        """Invitee email (lower-cased) -> the CRM id the magic link was created for (cached
        briefly; one paged read of the event's magic links)."""

        def load() -> dict[str, str]:
            found: dict[str, str] = {}
            for link in ctx.pull("platform", PullRequest(object=P.MAGIC_LINK)):
                email = str(link.get(P.LINK_EMAIL) or "").strip().lower()
                crm_id = link.get(P.LINK_CRM_ID)
                if not crm_id and link.id:
                    known = ctx.store.find_links_to(ctx.org.name, P.MAGIC_LINK, link.id)
                    crm_id = known[0].source_key if known else None
                if email and crm_id:
                    found[email] = str(crm_id)
            return found

        return ctx.cached(INVITEES_CACHE, REPORT_TTL, load)

    def run_batch(self, ctx: FlowContext, items: Sequence[OutboxItem]) -> list[Outcome]:
        """Write attendance for each attendee of the batch."""
        cfg: AttendanceSettings = ctx.settings(self.name)
        emails = [i.entity for i in items]
        try:
            report = self.report(ctx)
            invitees = self.invitees(ctx)
        except RetryableError as exc:
            return retry_all(items, exc)
        crm_ids = {e: invitees[e] for e in emails if e in report and e in invitees}
        attended_ids = {invitees[e] for e in report if e in invitees}
        target = ctx.describe("crm", cfg.target_object)
        mapping = ctx.mapping(self.name, P.ATTENDANCE, cfg.target_object)
        mine = ctx.store.get_links(ctx.org.name, self.name, emails)
        # One read by id per batch: before mapping when an if_empty policy needs the current
        # values, else of the records about to be written only. A record already holding
        # every value costs no write; the others' writes (and a preview's diffs) carry them.
        read = bool(_if_empty(mapping))
        current: dict[str, Mapping[str, Any]] = {}
        if read:
            no_shows = (e[len(NO_SHOW) :] for e in emails if e.startswith(NO_SHOW))
            try:
                current = _current(ctx, cfg, mapping, [*crm_ids.values(), *no_shows])
            except RetryableError as exc:
                return retry_all(items, exc)
        outcomes: dict[str, Outcome] = {}
        pending: list[tuple[PushItem, str]] = []
        for email in emails:
            if email.startswith(NO_SHOW):
                invitee = email[len(NO_SHOW) :]
                if invitee in attended_ids:
                    outcomes[email] = Outcome.done("attended: not a no-show")
                    continue
                no_show = {cfg.status_field: cfg.no_show_value}
                digest = content_hash([invitee, no_show])
                previous = mine.get(email)
                if previous is not None and previous.hash == digest:
                    outcomes[email] = Outcome.done("unchanged")
                else:
                    pending.append((PushItem(email, no_show, id=invitee), digest))
                continue
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
            # The flow only updates: on_create entries never apply, the others as policies say.
            fields = dict(
                apply_policies(
                    fields, record_policies(mapping, row), current.get(crm_id), creating=False
                ).write
            )
            fields[cfg.status_field] = cfg.attended_value
            digest = content_hash([crm_id, fields])
            previous = mine.get(email)
            if previous is not None and previous.hash == digest:
                outcomes[email] = Outcome.done("unchanged")
                continue
            pending.append((PushItem(email, fields, id=crm_id), digest))
        if not read:  # no if_empty read yet: the records about to be written, once
            try:
                current = _current(ctx, cfg, mapping, (i.id or "" for i, _ in pending))
            except RetryableError as exc:
                return retry_all(items, exc)
        outcomes.update(
            push_and_link(ctx, self.name, "crm", cfg.target_object, "update", pending, current)[0]
        )
        return [outcomes[e] for e in emails]


def _current(
    ctx: FlowContext, cfg: AttendanceSettings, mapping: RecordMapping, ids: Iterable[str]
) -> dict[str, Mapping[str, Any]]:
    """Current values of every field the flow may write to the records ``ids``: one read by
    id (none without ids)."""
    fields = [cfg.status_field, *(f.target for f in mapping.fields)]
    return read_current(ctx, "crm", cfg.target_object, ids, fields)


def _if_empty(mapping: RecordMapping) -> tuple[str, ...]:
    return tuple(f.target for f in mapping.fields if f.policy == "if_empty")
