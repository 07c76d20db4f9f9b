"""Look-before-create for a whole batch of invitations.

Hopin documents ``email`` ``in`` as a filter of a ticket's magic-link list, so the existing
invitations of a batch are read a page per call (up to ``EMAILS_PER_CALL`` emails a filter)
instead of one filtered read per invitation, those calls at once (within ``max_parallel``).
What the look did not cover (an email Hopin's filter syntax cannot carry, a look that failed)
is looked up per item as before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs
from eventsync.errors import AuthenticationError, RemoteError
from eventsync.models import Filter, PushItem

from . import filters as flt
from .auth import HopinConnection
from .convert import Resource, parse_list
from .pull import parallel_map

#: Emails per filtered list call: keeps the query string well under common URL limits.
EMAILS_PER_CALL = 50


def _key(ticket_id: str, email: str) -> tuple[str, str]:
    return ticket_id, email.strip().lower()


@attrs.define
class Looked:
    """The existing invitations of the emails a batch look covered, by (ticket, email).

    An invitation created afterwards is added (``add``), so a later item sharing its email
    finds it without another call."""

    _covered: set[tuple[str, str]] = attrs.field(factory=set)
    _found: dict[tuple[str, str], Resource] = attrs.field(factory=dict)
    _lock: threading.Lock = attrs.field(factory=threading.Lock)

    def covers(self, ticket_id: str, email: str) -> bool:
        """True when the look answered for this email on this ticket."""
        with self._lock:
            return _key(ticket_id, email) in self._covered

    def get(self, ticket_id: str, email: str) -> Resource | None:
        """The existing invitation of this email on this ticket, if the look (or a create
        since) found one."""
        with self._lock:
            return self._found.get(_key(ticket_id, email))

    def add(self, ticket_id: str, email: str, resource: Resource) -> None:
        """Record an invitation just created (or found): it now exists."""
        with self._lock:
            self._covered.add(_key(ticket_id, email))
            self._found.setdefault(_key(ticket_id, email), resource)


def look_batch(
    connection: HopinConnection,
    items: Iterable[PushItem],
    ticket_of: Callable[[Mapping[str, Any]], str],
) -> Looked:
    """The existing invitations of ``items``' emails, per ticket (``ticket_of(fields)`` names
    an item's ticket; an item it refuses is left to fail on its own). A failed list call leaves
    its emails uncovered, to be looked up per item; refused credentials are raised."""
    wanted: dict[str, dict[str, str]] = {}
    for item in items:
        email = str(item.fields.get("email") or "").strip()
        if not email or "," in email:  # ``in`` values are comma-separated on the wire
            continue
        try:
            ticket_id = ticket_of(item.fields)
        except AuthenticationError:
            raise
        except RemoteError:  # the item fails, or looks, on its own
            continue
        wanted.setdefault(ticket_id, {}).setdefault(email.lower(), email)
    chunks: dict[str, tuple[str, list[str]]] = {}
    for ticket_id, emails in wanted.items():
        spelled = list(emails.values())
        for start in range(0, len(spelled), EMAILS_PER_CALL):
            chunks[f"{ticket_id}\x00{start}"] = (
                ticket_id,
                spelled[start : start + EMAILS_PER_CALL],
            )

    def look(key: str) -> Mapping[str, Resource] | None:
        ticket_id, chunk = chunks[key]
        try:
            return _list(connection, ticket_id, chunk)
        except AuthenticationError:
            raise
        except RemoteError:
            return None

    # The chunks' list calls run at once: a batch of 200 waits for one round trip, not four.
    looked = Looked()
    for key, found in parallel_map(connection, list(chunks), look).items():
        ticket_id, chunk = chunks[key]
        for email in chunk:
            looked._covered.add(_key(ticket_id, email))
        for email, resource in found.items():
            looked._found.setdefault(_key(ticket_id, email), resource)
    return looked


def _list(connection: HopinConnection, ticket_id: str, emails: list[str]) -> Mapping[str, Resource]:
    """The invitations on ``ticket_id`` of ``emails`` (by lowercased email; the first listed)."""
    options = connection.options
    params, body = flt.encode([Filter("email", "in", tuple(emails))], options.filter_encoding)
    params[options.page_size_param] = str(options.page_size)
    wanted = {e.lower() for e in emails}
    found: dict[str, Resource] = {}
    url: str | None = f"/v1/tickets/{ticket_id}/magicLinks"
    first = True
    while url:
        page = parse_list(
            connection.http.get_json(url, params=params if first else None, json_body=body)
        )
        for resource in page.data:
            email = str(resource.attributes.get("email", "")).lower()
            if email in wanted:
                found.setdefault(email, resource)
        url, first = page.links.next, False
    return found
