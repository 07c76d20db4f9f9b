"""The Hopin sandbox wired for eventsync's flows and the demo.

Its seed (an organisation, an event and a ticket with an integration code), the webhook URL its
dataSubscription delivers to, Hopin's part of a sandbox organisation's flow configuration, and
the demo's operations on Hopin (its API for reading, its admin API for acting as attendees).
The hooks in ``.hooks`` hand them to core.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from eventsync.models import Filter, PullRequest
from eventsync.sandbox_env import DemoPerson, SandboxFlows

from ..auth import HopinConnection
from ..pull import pull_records

__all__ = ["SYSTEM", "FLOWS", "sandbox_options", "connection_options", "HopinDemo"]

SYSTEM = "hopin"


def sandbox_options(registrations: int = 0) -> dict[str, Any]:
    """The seed: the demo organisation, event and coded ticket, and ``registrations``
    registrations on it."""
    return {"seed": True, "seed_registrations": registrations}


def connection_options(notify_url: str | None) -> dict[str, Any]:
    """The connection's ``webhook_url``: the plugin subscribes the event's deliveries to it."""
    return {"webhook_url": notify_url} if notify_url else {}


#: Hopin's halves of the field mappings: a registration's person fields (and Hopin as the
#: origin) when exporting, the invitation's when importing.
FLOWS = SandboxFlows(
    fields={
        "export_registrations": {
            "first_name": {"source": "firstName"},
            "last_name": {"source": "lastName"},
            "email": {"source": "email"},
            "company": {
                "source": "headline",
                "transforms": [{"name": "default", "value": "Hopin attendee"}],
            },
            "website": {"source": "website"},
            "origin": {"constant": "Hopin"},
        },
        "import_registrations": {
            "email": {"target": "email"},
            "first_name": {"target": "firstName"},
            "last_name": {"target": "lastName"},
        },
    }
)


class HopinDemo:
    """The demo's operations on the Hopin sandbox (eventsync's ``PlatformDemo``)."""

    titles: Mapping[str, str] = {
        "ticket_code": "Hopin ticket carries an integration code",
        "invitation": "invitation appears among Hopin's magic links",
        "register": "someone registers on Hopin",
        "accept": "invitee accepts the magic link",
        "attend": "invitee attends",
    }

    def __init__(self, connection: HopinConnection, info: Mapping[str, Any]) -> None:
        self.connection = connection
        self.admin_url = str(info["admin_url"])
        self.event_id = str(info["event_id"])
        self.ticket_id: str | None = None
        self.http = requests.Session()

    def _admin(self, path: str, body: Mapping[str, Any] | None = None) -> None:
        self.http.post(f"{self.admin_url}{path}", json=body, timeout=10).raise_for_status()

    def ticket_code(self) -> tuple[str, str]:
        """The first ticket with an integration code."""
        coded = [
            t
            for t in pull_records(self.connection, PullRequest("ticket"))
            if t.get("integrationCode")
        ]
        if not coded:
            raise LookupError("the Hopin event has no ticket with an integration code")
        code, self.ticket_id = str(coded[0].get("integrationCode")), coded[0].id
        return code, f"ticket {self.ticket_id} has integration code {code!r}"

    def _magic_link(self, email: str) -> Any:
        request = PullRequest("magicLink", filters=(Filter("email", "=", email),))
        return next(iter(pull_records(self.connection, request)), None)

    def invitation(self, email: str) -> str | None:
        """The magic link of ``email``, once the import flow created it."""
        link = self._magic_link(email)
        return f"magic link {link.id}: {link.get('magicLink')}" if link is not None else None

    def register(self, person: DemoPerson) -> str:
        """A registration on the coded ticket, through the admin API."""
        self._admin(
            f"/events/{self.event_id}/registrations",
            {
                "ticketId": self.ticket_id,
                "email": person.email,
                "firstName": person.first_name,
                "lastName": person.last_name,
                "headline": person.company,
                "website": person.website,
            },
        )
        return f"{person.email} registered on ticket {self.ticket_id}"

    def accept(self, email: str) -> str:
        """Accept ``email``'s magic link, as the invitee would."""
        link = self._magic_link(email)
        if link is None:
            raise LookupError(f"no magic link for {email}")
        self._admin(f"/magicLinks/{link.id}/accept")
        return f"magic link {link.id} accepted"

    def attend(self, email: str) -> str:
        """Record 45 minutes of attendance for ``email``."""
        self._admin("/attendance", {"email": email, "durationSeconds": 2700})
        return f"{email} attended for 45 minutes"
