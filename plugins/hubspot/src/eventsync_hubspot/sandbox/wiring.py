"""The HubSpot sandbox wired for eventsync's flows, the demo and the tests.

The contact properties the integration asks a HubSpot admin to create (the ticket code that
makes a contact an invitation, the magic link, its status and the attendance), the app's
webhook target URL pointing at the engine, HubSpot's part of a sandbox organisation's flow
configuration, and the demo's operations on HubSpot. The hooks in ``.hooks`` hand them to core;
tests import the property names from here. Nothing here imports the sandbox server.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eventsync.models import Filter, PullRequest, PushItem, PushRequest
from eventsync.sandbox_env import DemoAction, DemoPerson, SandboxFlows

from ..client import HubSpotConnection
from ..pull import pull
from ..push import push
from ..settings import SYSTEM

__all__ = [
    "SYSTEM",
    "TICKET_CODE_FIELD",
    "LINK_FIELD",
    "STATUS_FIELD",
    "ATTENDANCE_FIELD",
    "SECONDS_FIELD",
    "PROPERTIES",
    "FLOWS",
    "sandbox_options",
    "connection_options",
    "HubSpotDemo",
]

TICKET_CODE_FIELD = "hopin_ticket_code"
LINK_FIELD = "hopin_magic_link"
STATUS_FIELD = "hopin_link_status"
ATTENDANCE_FIELD = "hopin_attendance_status"
SECONDS_FIELD = "hopin_attended_seconds"

#: The custom contact properties, as an admin creates them (Settings > Properties).
PROPERTIES: list[dict[str, Any]] = [
    {"name": TICKET_CODE_FIELD, "type": "string", "label": "Hopin ticket integration code"},
    {"name": LINK_FIELD, "type": "string", "label": "Hopin magic link"},
    {
        "name": STATUS_FIELD,
        "type": "enumeration",
        "fieldType": "select",
        "label": "Hopin status",
        "options": ["Invited", "Registered"],
    },
    {
        "name": ATTENDANCE_FIELD,
        "type": "enumeration",
        "fieldType": "select",
        "label": "Hopin attendance",
        "options": ["Attended", "No-show"],
    },
    {"name": SECONDS_FIELD, "type": "number", "label": "Seconds attended"},
]


def sandbox_options(notify_url: str | None) -> dict[str, Any]:
    """The ``start_sandbox`` options: the custom properties and, with ``notify_url``, the
    app's webhook target URL."""
    options: dict[str, Any] = {"properties": {"contacts": PROPERTIES}}
    if notify_url:
        options["webhook_url"] = notify_url
    return options


def connection_options(notify_url: str | None) -> dict[str, Any]:
    """The settings that point the connection at the endpoint: the signed target URL."""
    return {"webhook_url": notify_url} if notify_url else {}


#: Registrations become contacts matched on email; contacts carrying the ticket code are
#: invitations; the link, its status and attendance are written to the contact.
FLOWS = SandboxFlows(
    settings={
        "export_registrations": {"target_object": "contacts", "match_key": "email"},
        "import_registrations": {
            "source_object": "contacts",
            "ticket_code_field": TICKET_CODE_FIELD,
            "source_filter": [{"field": TICKET_CODE_FIELD, "op": "not_empty"}],
        },
        "magic_links": {"link_field": LINK_FIELD, "status_field": STATUS_FIELD},
        "attendance": {
            "target_object": "contacts",
            "status_field": ATTENDANCE_FIELD,
            "attended_value": "Attended",
        },
    },
    fields={
        "export_registrations": {
            "first_name": {"target": "firstname"},
            "last_name": {"target": "lastname", "transforms": ["strip"]},
            "email": {"target": "email", "transforms": ["strip", "lower"]},
            "company": {"target": "company"},
            "website": {"target": "website"},
        },
        "import_registrations": {
            "email": {"source": "email"},
            "first_name": {"source": "firstname"},
            "last_name": {"source": "lastname"},
        },
    },
)


class HubSpotDemo:
    """The demo's operations on the HubSpot sandbox (eventsync's ``CrmDemo``): the invitee is
    a contact carrying the ticket code; exports land on contacts."""

    titles: Mapping[str, str] = {
        "link_written": "magic link written to the HubSpot contact",
        "exported": "exported to a HubSpot contact",
        "registered": "status Registered on the HubSpot contact",
        "attended": "attendance Attended on the HubSpot contact",
    }

    def __init__(self, connection: HubSpotConnection) -> None:
        self.connection = connection
        self.contact: str | None = None

    def invite(self, code: str, person: DemoPerson) -> Sequence[DemoAction]:
        """A contact for ``person`` carrying ``code`` in ``hopin_ticket_code``."""

        def contact() -> str:
            fields = {
                "email": person.email,
                "firstname": person.first_name,
                "lastname": person.last_name,
                "company": person.company,
                TICKET_CODE_FIELD: code,
            }
            request = PushRequest(
                "contacts", "upsert", (PushItem("invitee", fields),), match_key="email"
            )
            [result] = push(self.connection, request)
            if not result.ok:
                raise RuntimeError(f"contact upsert failed: {result.error}")
            self.contact = str(result.id)
            return f"contact {self.contact} with {TICKET_CODE_FIELD} = {code!r}"

        return (DemoAction("HubSpot contact created carrying that code", contact),)

    def invitee(self, fields: Sequence[str]) -> Mapping[str, Any] | None:
        """The contact's ``fields``."""
        if self.contact is None:
            return None
        rows = list(
            pull(
                self.connection, PullRequest("contacts", ids=(self.contact,), fields=tuple(fields))
            )
        )
        return {field: rows[0].get(field) for field in fields} if rows else None

    def find_person(self, email: str) -> str | None:
        """The contact with ``email`` and its company."""
        request = PullRequest(
            "contacts", fields=("email", "company"), filters=(Filter("email", "=", email),)
        )
        rows = list(pull(self.connection, request))
        return f"contact {rows[0].id} (company = {rows[0].get('company')!r})" if rows else None
