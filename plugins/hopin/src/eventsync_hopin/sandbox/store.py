"""The sandbox's state: every resource, kept in memory behind one lock, optionally saved as JSON.

Resources are plain dicts ``{"id": ..., "attributes": {...}}`` grouped by collection name; the
JSON:API layer (``jsonapi.py``) turns them into wire documents. Changes that Hopin would announce
through a dataSubscription are passed to ``on_signal(signal, event_id, collection, resource)``.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import tempfile
import threading
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .ids import iso, new_id, now, parse_iso

COLLECTIONS = (
    "organizations",
    "events",
    "tickets",
    "bankQuestions",
    "registrations",
    "magicLinks",
    "attendance",
    "reports",
    "dataSubscriptions",
    "apiKeys",
    "oauthCodes",
    "oauthTokens",
)

#: JSON:API ``type`` of the resources of each public collection.
TYPES = {
    "organizations": "organization",
    "events": "event",
    "tickets": "ticket",
    "bankQuestions": "bankQuestion",
    "registrations": "registration",
    "magicLinks": "magicLink",
    "reports": "report",
    "dataSubscriptions": "dataSubscription",
}

#: The registration attributes a registration URL's query (and the browser's Referer) fill.
TRACKING_ATTRIBUTES = {
    "utmSource": "utm_source",
    "utmMedium": "utm_medium",
    "utmCampaign": "utm_campaign",
    "utmTerm": "utm_term",
    "utmContent": "utm_content",
    "referrer": None,
}

SignalListener = Callable[[str, str, str, Mapping[str, Any]], None]


class NotFound(KeyError):
    """A resource id that does not exist in a collection."""


class Store:
    """All sandbox resources, thread-safe; saved to ``state_file`` after each change when set."""

    def __init__(self, base_url: str = "", state_file: str | None = None) -> None:
        self.base_url = base_url
        self.state_file = state_file
        self.lock = threading.RLock()
        self.data: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in COLLECTIONS}
        self.listeners: list[SignalListener] = []
        #: Bumped by every change: lists remembered at an older version are stale.
        self.version = 0
        self._listings: dict[Hashable, tuple[int, Any]] = {}
        if state_file and os.path.exists(state_file):
            with open(state_file, encoding="utf-8") as handle:
                loaded = json.load(handle)
            for name in COLLECTIONS:
                self.data[name] = loaded.get(name, {})

    # --- plumbing -----------------------------------------------------------------------

    @contextmanager
    def changing(self) -> Iterator[None]:
        """Hold the lock for a change and save the state afterwards."""
        with self.lock:
            try:
                yield
            finally:
                self.version += 1
            self._save()

    def _save(self) -> None:
        if not self.state_file:
            return
        directory = os.path.dirname(os.path.abspath(self.state_file))
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".hopin-sandbox-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(self.data, handle)
        os.replace(tmp, self.state_file)

    def _emit(
        self, signal: str, event_id: str, collection: str, resource: Mapping[str, Any]
    ) -> None:
        snapshot = copy.deepcopy(dict(resource))
        for listener in list(self.listeners):
            listener(signal, event_id, collection, snapshot)

    def is_empty(self) -> bool:
        """True when nothing has been created yet (no organisation)."""
        with self.lock:
            return not self.data["organizations"]

    def get(self, collection: str, resource_id: str) -> dict[str, Any]:
        """A deep copy of one resource; NotFound when absent."""
        with self.lock:
            found = self.data[collection].get(resource_id)
            if found is None:
                raise NotFound(f"{TYPES.get(collection, collection)} {resource_id} not found")
            return copy.deepcopy(found)

    def find(
        self,
        collection: str,
        where: Callable[[dict[str, Any]], bool] | None = None,
        *,
        copy_items: bool = True,
    ) -> list[dict[str, Any]]:
        """The matching resources, oldest first (createdAt, then id): deep copies, or with
        ``copy_items=False`` the stored dicts themselves (read-only; lists copy just their page,
        which keeps paging through a large event linear)."""
        with self.lock:
            items = [
                item for item in self.data[collection].values() if where is None or where(item)
            ]
            items.sort(key=lambda item: (item["attributes"].get("createdAt", ""), item["id"]))
            return [copy.deepcopy(item) for item in items] if copy_items else items

    def listing(self, key: Hashable, produce: Callable[[], Any]) -> Any:
        """``produce()`` (e.g. a filtered, sorted list of stored dicts), remembered under ``key``
        until the next change: paging through a large event re-reads one page, not the
        whole collection, per request."""
        with self.lock:
            hit = self._listings.get(key)
            if hit is not None and hit[0] == self.version:
                return hit[1]
            items = produce()
            if len(self._listings) >= 32:
                self._listings.clear()
            self._listings[key] = (self.version, items)
            return items

    def _put(
        self, collection: str, attributes: dict[str, Any], resource_id: str | None = None
    ) -> dict[str, Any]:
        stamp = iso(now())
        attributes.setdefault("createdAt", stamp)
        attributes.setdefault("updatedAt", stamp)
        key = resource_id or new_id()
        resource: dict[str, Any] = {"id": key, "attributes": attributes}
        self.data[collection][key] = resource
        return resource

    def _touch(self, resource: dict[str, Any], *, by_user: bool = False) -> None:
        stamp = iso(now())
        resource["attributes"]["updatedAt"] = stamp
        if by_user:
            resource["attributes"]["userUpdatedAt"] = stamp

    # --- organisations, events, tickets, questions ----------------------------------------

    def create_organization(self, name: str, resource_id: str | None = None) -> dict[str, Any]:
        """Create an organisation."""
        with self.changing():
            return copy.deepcopy(self._put("organizations", {"name": name}, resource_id))

    def create_event(
        self, organization_id: str, attributes: Mapping[str, Any], resource_id: str | None = None
    ) -> dict[str, Any]:
        """Create an event in an organisation (defaults: published, Rails time zone ``UTC``)."""
        self.get("organizations", organization_id)
        attrs = {
            "name": "Event",
            "slug": new_id().lower()[:12],
            "published": True,
            "status": "live",
            "timezone": "UTC",
            "timeStart": iso(now()),
            "timeEnd": iso(now()),
            "eventType": "public_event",
        }
        attrs.update(attributes)
        attrs["organizationId"] = organization_id
        with self.changing():
            return copy.deepcopy(self._put("events", attrs, resource_id))

    def create_ticket(
        self, event_id: str, attributes: Mapping[str, Any], resource_id: str | None = None
    ) -> dict[str, Any]:
        """Create a ticket type; its integration code is the ``code=`` part of its registration URL."""
        event = self.get("events", event_id)
        code = attributes.get("code") or new_id()
        attrs = {"name": "General admission", "hidden": False, "price": 0, "currency": "usd"}
        attrs.update({k: v for k, v in attributes.items() if k != "code"})
        attrs["eventId"] = event_id
        attrs["registrationUrl"] = (
            f"{self.base_url}/events/{event['attributes']['slug']}/registration?code={code}"
        )
        with self.changing():
            return copy.deepcopy(self._put("tickets", attrs, resource_id))

    def create_question(self, ticket_id: str, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """Create a registration-form ("bank") question on a ticket."""
        self.get("tickets", ticket_id)
        attrs = {"title": "Question", "questionType": "text", "required": False, "options": []}
        attrs.update(attributes)
        attrs["ticketId"] = ticket_id
        with self.changing():
            return copy.deepcopy(self._put("bankQuestions", attrs))

    # --- registrations -------------------------------------------------------------------

    def create_registration(self, event_id: str, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """Register someone for an event on a ticket; announces ``registrationCreated``."""
        self.get("events", event_id)
        ticket = self.get("tickets", str(attributes.get("ticketId") or ""))
        if ticket["attributes"]["eventId"] != event_id:
            raise ValueError("ticketId does not belong to this event")
        attrs: dict[str, Any] = {
            "email": "",
            "firstName": "",
            "lastName": "",
            "headline": "",
            "website": "",
            "answers": [],
            "externalBarcode": None,
            "metadata": {},
            "refunded": False,
            "status": "registered",
            **{name: None for name in TRACKING_ATTRIBUTES},
            "channel": "online",
            "checkedInAt": None,
            "badgePrintedAt": None,
        }
        attrs.update(attributes)
        attrs["eventId"] = event_id
        stamp = iso(now())
        attrs["userUpdatedAt"] = stamp
        with self.changing():
            created = self._put("registrations", attrs)
            result = copy.deepcopy(created)
        self._emit("registrationCreated", event_id, "registrations", result)
        return result

    def update_registration(
        self, registration_id: str, attributes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Change a registration (metadata merges); announces ``registrationUpdated``."""
        with self.changing():
            resource = self.data["registrations"].get(registration_id)
            if resource is None:
                raise NotFound(f"registration {registration_id} not found")
            for key, value in attributes.items():
                if key == "metadata" and isinstance(value, Mapping):
                    resource["attributes"].setdefault("metadata", {}).update(value)
                else:
                    resource["attributes"][key] = value
            self._touch(
                resource, by_user=set(attributes) - {"metadata", "refunded", "status"} != set()
            )
            result = copy.deepcopy(resource)
        self._emit("registrationUpdated", result["attributes"]["eventId"], "registrations", result)
        return result

    def check_in(
        self, registration_id: str, at: str | None = None, *, badge: bool = False
    ) -> dict[str, Any]:
        """Check a registrant in at the venue (``at``, default now; a second check-in keeps the
        first time unless ``at`` is given) and optionally print their badge. Announces
        ``registrationUpdated`` and ``attendanceRecorded``: being there is attending."""
        stamp = iso(parse_iso(at) if at else now())
        with self.changing():
            resource = self.data["registrations"].get(registration_id)
            if resource is None:
                raise NotFound(f"registration {registration_id} not found")
            attrs = resource["attributes"]
            if at or not attrs.get("checkedInAt"):
                attrs["checkedInAt"] = stamp
            if badge:
                attrs["badgePrintedAt"] = iso(now())
            self._touch(resource)
            result = copy.deepcopy(resource)
        event_id = result["attributes"]["eventId"]
        self._emit("registrationUpdated", event_id, "registrations", result)
        self._emit("attendanceRecorded", event_id, "registrations", result)
        return result

    # --- magic links ---------------------------------------------------------------------

    def create_magic_link(self, ticket_id: str, attributes: Mapping[str, Any]) -> dict[str, Any]:
        """Create an invitation on a ticket; status ``pending`` (not ``invited``: Hopin sent nothing)."""
        ticket = self.get("tickets", ticket_id)
        token = new_id()
        attrs: dict[str, Any] = {
            "email": "",
            "firstName": "",
            "lastName": "",
            "headline": "",
            "extraFields": {},
            "metadata": {},
            "registrationId": None,
        }
        attrs.update(attributes)
        attrs.update(
            {
                "ticketId": ticket_id,
                "eventId": ticket["attributes"]["eventId"],
                "status": "pending",
                "magicLink": f"{self.base_url}/m/{token}",
                "acceptedAt": None,
                "hopinRegistrationId": None,
            }
        )
        with self.changing():
            result = copy.deepcopy(self._put("magicLinks", attrs))
        self._emit("magicLinkCreated", attrs["eventId"], "magicLinks", result)
        return result

    def delete(self, collection: str, resource_id: str) -> None:
        """Delete a resource; NotFound when absent."""
        with self.changing():
            if self.data[collection].pop(resource_id, None) is None:
                raise NotFound(f"{TYPES.get(collection, collection)} {resource_id} not found")

    def mark_invited(self, magic_link_id: str) -> dict[str, Any]:
        """Hopin sent the invitation email itself: status ``invited`` (unless already registered)."""
        with self.changing():
            resource = self.data["magicLinks"].get(magic_link_id)
            if resource is None:
                raise NotFound(f"magicLink {magic_link_id} not found")
            if resource["attributes"]["status"] != "registered":
                resource["attributes"]["status"] = "invited"
                self._touch(resource)
            return copy.deepcopy(resource)

    def find_magic_link_by_token(self, token: str) -> dict[str, Any]:
        """The magic link whose URL ends with ``/m/<token>``."""
        suffix = f"/m/{token}"
        for item in self.find("magicLinks"):
            if item["attributes"]["magicLink"].endswith(suffix):
                return item
        raise NotFound(f"magic link token {token} not found")

    def accept_magic_link(self, magic_link_id: str) -> dict[str, Any]:
        """The invitee clicked: register them on the link's ticket; status becomes ``registered``.

        Accepting twice changes nothing. Announces ``magicLinkAccepted`` (and ``registrationCreated``).
        """
        link = self.get("magicLinks", magic_link_id)
        attrs = link["attributes"]
        if attrs["status"] == "registered":
            return link
        registration = self.create_registration(
            attrs["eventId"],
            {
                "ticketId": attrs["ticketId"],
                "email": attrs["email"],
                "firstName": attrs["firstName"],
                "lastName": attrs["lastName"],
                "headline": attrs.get("headline") or "",
                "metadata": dict(attrs.get("metadata") or {}),
                "magicLinkId": magic_link_id,
            },
        )
        with self.changing():
            resource = self.data["magicLinks"][magic_link_id]
            resource["attributes"]["status"] = "registered"
            resource["attributes"]["acceptedAt"] = iso(now())
            resource["attributes"]["hopinRegistrationId"] = registration["id"]
            self._touch(resource)
            result = copy.deepcopy(resource)
        self._emit("magicLinkAccepted", attrs["eventId"], "magicLinks", result)
        return result

    # --- attendance, reports, subscriptions ----------------------------------------------

    def record_attendance(
        self, registration_id: str, attributes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Record that a registrant was in the event (or one session) from joinedAt to leftAt;
        ``durationSeconds`` alone means "until now, for that long"."""
        registration = self.get("registrations", registration_id)
        given = dict(attributes)
        duration = float(given.pop("durationSeconds", 0) or 0)
        joined = (
            parse_iso(given["joinedAt"])
            if given.get("joinedAt")
            else now() - dt.timedelta(seconds=duration)
        )
        left = (
            parse_iso(given["leftAt"])
            if given.get("leftAt")
            else joined + dt.timedelta(seconds=duration)
        )
        attrs = {"session": "Main stage", **given, "joinedAt": iso(joined), "leftAt": iso(left)}
        attrs["registrationId"] = registration_id
        attrs["eventId"] = registration["attributes"]["eventId"]
        with self.changing():
            result = copy.deepcopy(self._put("attendance", attrs))
        self._emit("attendanceRecorded", attrs["eventId"], "registrations", registration)
        return result

    def create_report(
        self, event_id: str, report_type: str, attributes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Queue a report; it becomes ``completed`` once ``readyAfter`` has passed."""
        attrs = dict(attributes)
        attrs.update({"eventId": event_id, "reportType": report_type, "status": "pending"})
        with self.changing():
            return copy.deepcopy(self._put("reports", attrs))

    def update(
        self, collection: str, resource_id: str, attributes: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Set attributes of any resource (no signal)."""
        with self.changing():
            resource = self.data[collection].get(resource_id)
            if resource is None:
                raise NotFound(f"{TYPES.get(collection, collection)} {resource_id} not found")
            resource["attributes"].update(attributes)
            self._touch(resource)
            return copy.deepcopy(resource)

    def put_raw(
        self, collection: str, attributes: dict[str, Any], resource_id: str | None = None
    ) -> dict[str, Any]:
        """Store a resource as given (subscriptions, API keys, OAuth grants)."""
        with self.changing():
            return copy.deepcopy(self._put(collection, attributes, resource_id))
