"""Trigger drift: a CRM change the poller found that no Outbound Message announced.

The record still syncs through the poller; the finding names the likely causes, from the Hopin
guide's "things to consider" and Salesforce's documentation, and where to look.
"""

from __future__ import annotations

from eventsync.config import OrgConfig
from eventsync.models import Finding, Record

from .options import GuardOptions, permission_label
from .preflight import finding

__all__ = ["missed_trigger_finding"]


def missed_trigger_finding(
    options: GuardOptions, flow: str, record: Record, org: OrgConfig, waited: float
) -> Finding | None:
    """A Finding for a CRM record whose outbound message never arrived; None for other systems."""
    if record.system != org.crm:
        return None
    users = (
        "; ".join(
            f"{u.role} {u.username} ({', '.join(permission_label(p) for p in options.permissions_for(u))})"
            for u in options.automation_users
        )
        or "none configured in pardot_guard's automation_users"
    )
    message = (
        f"{record.object} {record.id} changed {waited:.0f}s ago but no Outbound Message announced it "
        f"(flow {flow}); the poller synced it instead, later than real time. Likely causes: "
        f"(1) it was loaded with the Data Import Wizard without 'Trigger workflow rules and processes "
        f"for new and updated records' ticked, so no workflow rule, process or flow ran; "
        f"(2) the automation user that made the change, or the outbound message's user to send as, is "
        f"inactive or lacks a permission the automation needs (checked: {users}); "
        f"(3) the outbound message rule or flow is inactive or its criteria did not match."
    )
    return finding(
        "warning",
        "trigger_missed",
        message,
        where=(
            f"Salesforce: Setup > Outbound Messages and Setup > Environments > Monitoring > Outbound "
            f"Messages (delivery status); Setup > Data Import Wizard (recent imports); the "
            f"{record.object}'s Last Modified By"
        ),
        fix=(
            "re-run imports with 'Trigger workflow rules and processes' ticked; run `eventsync check` "
            "to verify the automation users; make sure the outbound message's rule or flow is active"
        ),
    )
