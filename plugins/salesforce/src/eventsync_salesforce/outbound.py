"""Parsing Salesforce Outbound Messages (SOAP) into Notifications.

Checks, each answered with a 4xx and nothing stored: method POST (405), a ``text/xml`` or
SOAP content type (415), a size limit (413), well-formed XML without DTDs or entities
(defusedxml; 400), the ``notifications`` element of the outbound namespace (400), and the
OrganizationId against the configured ``org_id`` (403, compared on the 15-character id).
"""

from __future__ import annotations

from typing import Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from eventsync.errors import BadNotification
from eventsync.models import EntityRef, HttpRequest, HttpResponse, Notification, SystemSettings

SYSTEM = "salesforce"
SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
SOBJECT = "urn:sobject.enterprise.soap.sforce.com"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
MAX_BYTES = 5 * 1024 * 1024
CONTENT_TYPES = ("text/xml", "application/soap+xml")

ACK = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
    b'<soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">'
    b"<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"
)


def ack_response() -> HttpResponse:
    """The acknowledgement Salesforce needs to stop re-sending."""
    return HttpResponse(status=200, body=ACK, content_type="text/xml; charset=utf-8")


def _text(parent: Any, tag: str) -> str | None:
    element = parent.find(f"{{{OUTBOUND}}}{tag}")
    if element is None:
        return None
    return (element.text or "").strip()


def _value(element: Any) -> Any:
    if element.get(f"{{{XSI}}}nil") == "true":
        return None
    return element.text if element.text is not None else ""


def parse(request: HttpRequest, settings: SystemSettings) -> Notification:
    """Verify and parse one outbound message; BadNotification (4xx) if anything is off."""
    if request.method.upper() != "POST":
        raise BadNotification(405, f"outbound messages are POSTed, not {request.method}")
    content_type = (request.header("Content-Type") or "").split(";")[0].strip().lower()
    if content_type not in CONTENT_TYPES:
        raise BadNotification(415, f"expected text/xml, got {content_type or 'no content type'}")
    if len(request.body) > MAX_BYTES:
        raise BadNotification(413, f"message larger than {MAX_BYTES} bytes")
    expected = settings.get("org_id")
    if not expected:
        raise BadNotification(
            403,
            f"org {settings.org!r} has no salesforce org_id configured, "
            "so the sender cannot be verified; set org_id",
        )
    try:
        root = SafeET.fromstring(request.body, forbid_dtd=True)
    except DefusedXmlException as exc:
        raise BadNotification(400, f"forbidden XML construct: {type(exc).__name__}") from None
    except SafeET.ParseError as exc:
        raise BadNotification(400, f"malformed XML: {exc}") from None
    notes = root.find(f"{{{SOAPENV}}}Body/{{{OUTBOUND}}}notifications")
    if notes is None:
        raise BadNotification(400, "not a Salesforce outbound message (no notifications element)")
    org_id = _text(notes, "OrganizationId") or ""
    if org_id[:15].lower() != str(expected)[:15].lower() or not org_id:
        raise BadNotification(
            403, f"message from org {org_id or '?'} does not belong to org {settings.org!r}"
        )
    entities: list[EntityRef] = []
    dedupe: list[str] = []
    for note in notes.findall(f"{{{OUTBOUND}}}Notification"):
        note_id = _text(note, "Id")
        sobject = note.find(f"{{{OUTBOUND}}}sObject")
        if not note_id or sobject is None:
            raise BadNotification(400, "a Notification lacks its Id or sObject")
        object_type = (sobject.get(f"{{{XSI}}}type") or "").split(":")[-1]
        fields = {child.tag.split("}")[-1]: _value(child) for child in sobject}
        record_id = fields.get("Id")
        if not object_type or not record_id:
            raise BadNotification(400, f"notification {note_id} lacks the object type or Id")
        dedupe.append(note_id)
        entities.append(EntityRef(object=object_type, id=str(record_id), fields=fields))
    if not entities:
        raise BadNotification(400, "the message holds no Notification")
    return Notification(
        system=SYSTEM,
        kind="outbound_message",
        entities=tuple(entities),
        response=ack_response(),
        dedupe_ids=tuple(dedupe),
        org_id=org_id,
    )
