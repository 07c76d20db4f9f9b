"""The plugin's ``preflight`` checks: what only Salesforce knows about an org's flows.

Outbound Messages must be authenticated by the URL token: an org that imports from Salesforce
without ``outbound_token_env`` trusts any message naming its (public) org id.

Attendance is written as a CampaignMember Status, and Salesforce refuses a status label the
member's Campaign does not offer; so every Campaign carrying a ticket code must offer the
attended (and no-show) labels. One query for the campaigns, one for their member statuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eventsync.models import Filter, Finding, PullRequest

from . import pull as pull_mod
from .connection import SalesforceConnection
from .settings import SYSTEM

__all__ = ["campaign_status_findings", "outbound_token_findings"]


def campaign_status_findings(org: Any, connections: Mapping[str, Any]) -> list[Finding]:
    """Campaigns carrying a ticket code must offer the attendance status labels."""
    attendance = org.flows.get("attendance")
    imports = org.flows.get("import_registrations")
    conn = connections.get(SYSTEM) if org.crm == SYSTEM else None
    if (
        attendance is None
        or not getattr(attendance, "enabled", True)
        or imports is None
        or not isinstance(conn, SalesforceConnection)
        or attendance.target_object.lower() != "campaignmember"
        or attendance.status_field.lower() != "status"
        or not imports.ticket_code_field.lower().startswith("campaign.")
    ):
        return []
    code_field = imports.ticket_code_field.split(".", 1)[1]
    wanted = [v for v in (attendance.attended_value, attendance.no_show_value) if v]
    request = PullRequest(
        "Campaign", fields=("Id", "Name"), filters=(Filter(code_field, "!=", None),)
    )
    campaigns = {str(c.id): c.get("Name") for c in pull_mod.pull(conn, request)}
    if not campaigns:
        return []
    labels: dict[str, set[str]] = {cid: set() for cid in campaigns}
    statuses = PullRequest(
        "CampaignMemberStatus",
        fields=("Id", "CampaignId", "Label"),
        filters=(Filter("CampaignId", "in", sorted(campaigns)),),
    )
    for status in pull_mod.pull(conn, statuses):
        labels.setdefault(str(status.get("CampaignId")), set()).add(str(status.get("Label")))
    return [
        Finding(
            severity="error",
            code="campaign_status",
            message=f"Campaign {name!r} ({cid}) has no member status {label!r}, "
            f"so attendance cannot be written",
            source=SYSTEM,
            where=f"$.orgs.{org.name}.flows.attendance",
            fix=f"in Salesforce, open the Campaign, Advanced Setup, and add the member status "
            f"{label!r}",
        )
        for cid, name in campaigns.items()
        for label in wanted
        if label not in labels.get(cid, set())
    ]


def outbound_token_findings(org: Any) -> list[Finding]:
    """A warning when the org imports from Salesforce (where Outbound Messages trigger) and its
    endpoint has no token, so messages are trusted on the org id alone."""
    imports = org.flows.get("import_registrations")
    options = org.systems.get(SYSTEM)
    if (
        org.crm != SYSTEM
        or options is None
        or imports is None
        or not getattr(imports, "enabled", True)
        or options.get("outbound_token_env")
    ):
        return []
    return [
        Finding(
            severity="warning",
            code="outbound_token",
            message="Outbound Messages are trusted on the org id alone, which is no secret: "
            "anyone reaching the endpoint can post them",
            source=SYSTEM,
            where=f"$.orgs.{org.name}.systems.{SYSTEM}.outbound_token_env",
            fix="generate a token (python -c 'import secrets; print(secrets.token_urlsafe(32))'), "
            "name its variable in outbound_token_env and end each Outbound Message's endpoint "
            f"URL with it: /hooks/{org.name}/{SYSTEM}/TOKEN",
        )
    ]
