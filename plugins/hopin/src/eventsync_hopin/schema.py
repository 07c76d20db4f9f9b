"""Schema discovery: the objects the flows need, with types; registration custom questions are
discovered per ticket through ``GET /v1/tickets/{id}/bankQuestions`` and become fields
``answers.<questionId>``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from eventsync.errors import DiscoveryError, EventsyncError
from eventsync.models import FieldSchema, ObjectSchema, Schema

from .auth import HopinConnection
from .convert import SYSTEM, parse_list


def _f(name: str, type_: str, **kw: object) -> FieldSchema:
    return FieldSchema(name=name, type=type_, label=kw.pop("label", name), **kw)  # type: ignore[arg-type]


_RO = {"createable": False, "updateable": False}
_TIMES = (_f("createdAt", "datetime", **_RO), _f("updatedAt", "datetime", **_RO))

STATIC: dict[str, tuple[FieldSchema, ...]] = {
    "organization": (_f("id", "id", **_RO), _f("name", "string", **_RO)),
    "event": (
        _f("id", "id", **_RO),
        _f("name", "string"),
        _f("slug", "string"),
        _f("description", "textarea"),
        _f("published", "boolean"),
        _f("status", "string", **_RO),
        _f("timezone", "string"),
        _f("timeStart", "datetime"),
        _f("timeEnd", "datetime"),
        _f("organizationId", "reference", **_RO),
        *_TIMES,
    ),
    "ticket": (
        _f("id", "id", **_RO),
        _f("name", "string", **_RO),
        _f("registrationUrl", "url", **_RO),
        _f(
            "integrationCode",
            "string",
            label="Integration code (after '=' in the ticket link)",
            external_id=True,
            **_RO,
        ),
        _f("eventId", "reference", reference_to=("event",), **_RO),
        *_TIMES,
    ),
    "registration": (
        _f("id", "id", **_RO),
        _f("email", "email", nillable=False, updateable=False),
        _f("firstName", "string"),
        _f("lastName", "string"),
        _f("headline", "string"),
        _f("website", "url"),
        _f("externalBarcode", "string"),
        _f("ticketId", "reference", nillable=False, reference_to=("ticket",)),
        _f("eventId", "reference", reference_to=("event",), **_RO),
        _f("status", "picklist", picklist_values=("registered", "refunded"), **_RO),
        _f("refunded", "boolean", **_RO),
        _f("metadata", "json"),
        _f("answers", "json"),
        _f("magicLinkId", "reference", reference_to=("magicLink",), **_RO),
        # Tracking and onsite fields, read from the wire paths of registration_attributes.
        _f("utmSource", "string", label="UTM source", **_RO),
        _f("utmMedium", "string", label="UTM medium", **_RO),
        _f("utmCampaign", "string", label="UTM campaign", **_RO),
        _f("utmTerm", "string", label="UTM term", **_RO),
        _f("utmContent", "string", label="UTM content", **_RO),
        _f("referrer", "url", label="Referrer", **_RO),
        _f("channel", "string", label="Registration channel (online, onsite ...)", **_RO),
        _f("onsite", "boolean", label="Registered onsite", **_RO),
        _f("checkedInAt", "datetime", label="Checked in onsite at", **_RO),
        _f("badgePrintedAt", "datetime", label="Badge printed at", **_RO),
        _f("userUpdatedAt", "datetime", **_RO),
        *_TIMES,
    ),
    "magicLink": (
        _f("id", "id", **_RO),
        _f("email", "email", nillable=False, updateable=False),
        _f("firstName", "string", nillable=False, updateable=False),
        _f("lastName", "string", nillable=False, updateable=False),
        _f("headline", "string", updateable=False),
        _f("extraFields", "json", updateable=False),
        _f("metadata", "json", updateable=False),
        _f(
            "registrationId",
            "string",
            label="Caller's external id (e.g. the CRM record id)",
            external_id=True,
            updateable=False,
        ),
        _f("ticketId", "reference", nillable=False, updateable=False, reference_to=("ticket",)),
        _f("magicLink", "url", length=100, **_RO),
        _f("status", "picklist", picklist_values=("pending", "invited", "registered"), **_RO),
        *_TIMES,
    ),
    "attendance": (
        _f("registrationId", "reference", reference_to=("registration",), **_RO),
        _f("email", "email", **_RO),
        _f("firstName", "string", **_RO),
        _f("lastName", "string", **_RO),
        _f("ticketId", "reference", reference_to=("ticket",), **_RO),
        _f("joinedAt", "datetime", **_RO),
        _f("leftAt", "datetime", **_RO),
        _f("durationSeconds", "int", **_RO),
        _f("sessions", "json", **_RO),
        _f("checkedInAt", "datetime", label="Checked in onsite at", **_RO),
    ),
}
_READ_ONLY_OBJECTS = {"organization", "ticket", "attendance"}


def _questions(connection: HopinConnection) -> Iterable[FieldSchema]:
    if not connection.event_id:
        return []
    fields: dict[str, FieldSchema] = {}
    url: str | None = f"/v1/events/{connection.event_id}/tickets"
    while url:
        tickets = parse_list(connection.http.get_json(url))
        for ticket in tickets.data:
            qurl: str | None = f"/v1/tickets/{ticket.id}/bankQuestions"
            while qurl:
                page = parse_list(connection.http.get_json(qurl))
                for q in page.data:
                    attrs = q.attributes
                    options = tuple(str(o) for o in attrs.get("options") or ())
                    fields[q.id] = _f(
                        f"answers.{q.id}",
                        "picklist" if options else "string",
                        label=str(attrs.get("title") or attrs.get("question") or q.id),
                        picklist_values=options,
                        nillable=not attrs.get("required"),
                    )
                qurl = page.links.next
        url = tickets.links.next
    return fields.values()


def discover(connection: HopinConnection, objects: Sequence[str] | None) -> Schema:
    """The schema of the requested objects (all of them when None)."""
    wanted = list(objects) if objects else list(STATIC)
    unknown = [name for name in wanted if name not in STATIC]
    if unknown:
        raise DiscoveryError(
            f"hopin has no object {', '.join(map(repr, unknown))} (known: {', '.join(STATIC)})"
        )
    result: dict[str, ObjectSchema] = {}
    for name in wanted:
        fields = STATIC[name]
        if name == "registration":
            try:
                fields = (*fields, *_questions(connection))
            except EventsyncError as exc:
                raise DiscoveryError(
                    f"hopin: reading the registration questions failed: {exc}"
                ) from exc
        writable = name not in _READ_ONLY_OBJECTS
        result[name] = ObjectSchema(
            name=name,
            fields=fields,
            label=name,
            createable=writable,
            updateable=name in ("registration", "event"),
            deletable=name == "magicLink",
        )
    return Schema(system=SYSTEM, objects=result)
