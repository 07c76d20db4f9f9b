"""The Salesforce sandbox wired for eventsync's flows, the demo and the tests.

The custom fields the integration guide asks a Salesforce admin to create, an Outbound Message
rule posting CampaignMember changes to the engine (its URL ending with a generated token),
Salesforce's part of a sandbox organisation's flow configuration, and the demo's operations on
Salesforce. The hooks in
``.hooks`` hand them to core; tests import the field names from here.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from eventsync.models import Filter, PullRequest, PushItem, PushRequest
from eventsync.sandbox_env import DemoAction, DemoPerson, SandboxFlows

from ..connection import SalesforceConnection
from ..pull import pull
from ..push import push

__all__ = [
    "SYSTEM",
    "TICKET_CODE_FIELD",
    "LINK_FIELD",
    "STATUS_FIELD",
    "REGISTRATION_ID_FIELD",
    "OUTBOUND_RULE",
    "FLOWS",
    "outbound_url",
    "sandbox_options",
    "sandbox_config",
    "SalesforceDemo",
]

SYSTEM = "salesforce"
TICKET_CODE_FIELD = "Hopin_Ticket_Code__c"
LINK_FIELD = "Hopin_Magic_Link__c"
STATUS_FIELD = "Hopin_Status__c"
#: An external-id field on Lead for upserts keyed on the Hopin registration id.
REGISTRATION_ID_FIELD = "Hopin_Registration_Id__c"
OUTBOUND_RULE = "eventsync_campaign_member"


def outbound_url(notify_url: str, token: str) -> str:
    """The Outbound Message endpoint URL: the engine's URL for the org and system, ended by the
    organisation's token (``outbound_token_env``)."""
    return f"{notify_url.rstrip('/')}/{token}"


def sandbox_options(notify_url: str | None) -> dict[str, Any]:
    """The ``start_sandbox`` options: the sandbox config and, with ``notify_url``, a freshly
    generated ``outbound_token`` its Outbound Message rule's URL ends with (the sandbox's
    settings then name it as ``outbound_token_env``)."""
    if not notify_url:
        return {"config": sandbox_config(None)}
    token = secrets.token_urlsafe(32)
    return {"config": sandbox_config(outbound_url(notify_url, token)), "outbound_token": token}


def sandbox_config(notify_url: str | None) -> dict[str, Any]:
    """The sandbox config (``start_sandbox`` option ``config``): the guide's custom fields and,
    when ``notify_url`` is given, an Outbound Message rule on CampaignMember posting to it."""
    config: dict[str, Any] = {
        "custom_fields": {
            "Campaign": [
                {
                    "name": TICKET_CODE_FIELD,
                    "type": "string",
                    "length": 80,
                    "label": "Hopin ticket integration code",
                }
            ],
            "Lead": [
                {
                    "name": REGISTRATION_ID_FIELD,
                    "type": "string",
                    "length": 32,
                    "external_id": True,
                    "label": "Hopin registration id",
                }
            ],
            "CampaignMember": [
                {"name": LINK_FIELD, "type": "url", "length": 255, "label": "Hopin magic link"},
                {
                    "name": STATUS_FIELD,
                    "type": "picklist",
                    "values": ["Invited", "Registered"],
                    "label": "Hopin status",
                },
            ],
        },
    }
    if notify_url:
        config["outbound_messages"] = [
            {
                "name": OUTBOUND_RULE,
                "object": "CampaignMember",
                "endpoint_url": notify_url,
                # The write-back's fields too: eventsync then recognises the message its
                # own write causes and does not re-run the import for it.
                "fields": ["Id", "CampaignId", "Email", LINK_FIELD, STATUS_FIELD],
                "events": ["create", "update"],
            }
        ]
    return config


#: Registrations become Leads matched on Email; CampaignMembers of a Campaign carrying the
#: ticket code become invitations; links, statuses and attendance land on the CampaignMember.
FLOWS = SandboxFlows(
    settings={
        "export_registrations": {"target_object": "Lead", "match_key": "Email"},
        "import_registrations": {
            "source_object": "CampaignMember",
            "ticket_code_field": f"Campaign.{TICKET_CODE_FIELD}",
        },
        "magic_links": {"link_field": LINK_FIELD, "status_field": STATUS_FIELD},
        "attendance": {
            "target_object": "CampaignMember",
            "status_field": "Status",
            "attended_value": "Attended",
        },
    },
    fields={
        "export_registrations": {
            "first_name": {"target": "FirstName"},
            "last_name": {"target": "LastName", "transforms": ["strip", {"name": "truncate"}]},
            "email": {"target": "Email", "transforms": ["strip", "lower"]},
            # Lead.Company is required: a constant stands in when the platform has no company.
            "company": {
                "target": "Company",
                "constant": "Event attendee",
                "transforms": [{"name": "truncate"}],
            },
            "website": {"target": "Website"},
            "origin": {"target": "LeadSource"},
        },
        "import_registrations": {
            "email": {"source": "Email"},
            "first_name": {"source": "FirstName"},
            "last_name": {"source": "LastName"},
        },
    },
)


class SalesforceDemo:
    """The demo's operations on the Salesforce sandbox (eventsync's ``CrmDemo``): the invitee
    is a CampaignMember of a Campaign carrying the ticket code; exports land on Leads."""

    titles: Mapping[str, str] = {
        "link_written": "magic link written back to the CampaignMember",
        "exported": "exported to a Salesforce Lead",
        "registered": "status Registered in Salesforce",
        "attended": "CampaignMember Status Attended",
    }

    def __init__(self, connection: SalesforceConnection) -> None:
        self.connection = connection
        self.campaign: str | None = None
        self.member: str | None = None

    def _insert(self, sobject: str, fields: Mapping[str, Any]) -> str:
        [result] = push(
            self.connection, PushRequest(sobject, "insert", (PushItem(sobject, dict(fields)),))
        )
        if not result.ok:
            raise RuntimeError(f"{sobject} insert failed: {result.error}")
        return str(result.id)

    def invite(self, code: str, person: DemoPerson) -> Sequence[DemoAction]:
        """A Campaign carrying ``code`` (with an Attended member status), then ``person`` as a
        Lead and CampaignMember of it."""

        def campaign() -> str:
            self.campaign = self._insert(
                "Campaign", {"Name": "Hopin demo event", TICKET_CODE_FIELD: code, "IsActive": True}
            )
            self._insert(
                "CampaignMemberStatus",
                {"CampaignId": self.campaign, "Label": "Attended", "HasResponded": True},
            )
            return f"Campaign {self.campaign} with {TICKET_CODE_FIELD} = {code!r}"

        def member() -> str:
            lead = self._insert(
                "Lead",
                {
                    "FirstName": person.first_name,
                    "LastName": person.last_name,
                    "Company": person.company or "Event attendee",
                    "Email": person.email,
                },
            )
            self.member = self._insert(
                "CampaignMember", {"CampaignId": self.campaign, "LeadId": lead}
            )
            return f"CampaignMember {self.member} for Lead {lead}"

        return (
            DemoAction("Salesforce Campaign created carrying that code", campaign),
            DemoAction("CampaignMember created in Salesforce", member),
        )

    def invitee(self, fields: Sequence[str]) -> Mapping[str, Any] | None:
        """The CampaignMember's ``fields``."""
        if self.member is None:
            return None
        request = PullRequest("CampaignMember", ids=(self.member,), fields=("Id", *fields))
        rows = list(pull(self.connection, request))
        return {field: rows[0].get(field) for field in fields} if rows else None

    def find_person(self, email: str) -> str | None:
        """The Lead with ``email`` and its Company."""
        request = PullRequest(
            "Lead", fields=("Id", "Email", "Company"), filters=(Filter("Email", "=", email),)
        )
        rows = list(pull(self.connection, request))
        return f"Lead {rows[0].id} (Company = {rows[0].get('Company')!r})" if rows else None
