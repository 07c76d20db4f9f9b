"""Parsing Salesforce Outbound Messages (SOAP) into Notifications.

An Outbound Message carries no signature and its OrganizationId is no secret, so the sender is
authenticated by a per-organisation token ending the endpoint URL
(``/hooks/<org>/salesforce/<token>``, ``HttpRequest.suffix``), compared in constant time with
``outbound_token_env`` and, during a rotation, ``outbound_token_previous_env``. Once a token is
configured the plain route is refused. (Mutual TLS with Salesforce's client certificate is
terminated by a reverse proxy in front of eventsync: see the plugin's README.)

Checks, each answered with a 4xx and nothing stored, cheapest first so a forged message costs
little: method POST (405), the token (403), a ``text/xml`` or SOAP content type (415), a size
limit (413), well-formed XML without DTDs or entities and no deeper than ``MAX_DEPTH``
(defusedxml, read incrementally; 400), at most ``MAX_NOTIFICATIONS`` notifications (413, as
Salesforce never sends more), the ``notifications`` element of the outbound namespace (400), and
the OrganizationId against the configured ``org_id``: exactly, letter case included, in its 15-
or 18-character form with a valid checksum (403).
"""

from __future__ import annotations

import hmac
import io
from typing import Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from eventsync.errors import BadNotification, ConfigurationError
from eventsync.models import EntityRef, HttpRequest, HttpResponse, Notification, SystemSettings

from .orgid import same_org

SYSTEM = "salesforce"
SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
SOBJECT = "urn:sobject.enterprise.soap.sforce.com"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
MAX_BYTES = 5 * 1024 * 1024
CONTENT_TYPES = ("text/xml", "application/soap+xml")
#: Notifications Salesforce puts in one message at most.
MAX_NOTIFICATIONS = 100
#: Element nesting of a real message: Envelope/Body/notifications/Notification/sObject/field.
MAX_DEPTH = 12
#: Shortest token accepted: a guessable one would make the URL no secret.
MIN_TOKEN = 16
#: Salesforce re-sends a message for up to 24 hours; its notification ids are remembered a
#: little longer, so a re-send (or a replay of a captured message) stores nothing twice.
REPLAY_HORIZON = 25 * 3600.0

ACK = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
    b'<soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound">'
    b"<Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"
)


def ack_response() -> HttpResponse:
    """The acknowledgement Salesforce needs to stop re-sending."""
    return HttpResponse(status=200, body=ACK, content_type="text/xml; charset=utf-8")


def _configured_tokens(settings: SystemSettings) -> list[str]:
    """The tokens the endpoint accepts (current first); empty when none is configured."""
    tokens = []
    for name in ("outbound_token", "outbound_token_previous"):
        if not settings.get(f"{name}_env"):
            continue
        try:
            token = settings.secret(name)
        except ConfigurationError as exc:
            # Fail closed: a token that was meant to be required but is missing refuses all.
            raise BadNotification(403, f"{exc.problems[0]}; refusing every message") from None
        if len(token) < MIN_TOKEN:
            raise BadNotification(
                403,
                f"the {name} of org {settings.org!r} is shorter than {MIN_TOKEN} characters; "
                "set a long random one (refusing every message)",
            )
        tokens.append(token)
    return tokens


def verify_token(given: str, settings: SystemSettings) -> None:
    """BadNotification(403) unless ``given`` (the URL suffix) is one of the configured tokens,
    compared in constant time; without a configured token only the plain route is served."""
    tokens = _configured_tokens(settings)
    if not tokens:
        if given:
            raise BadNotification(
                403,
                f"org {settings.org!r} has no outbound_token_env configured, so the endpoint "
                "has no token to check; set one or post to the plain route",
            )
        return
    if not given:
        raise BadNotification(
            403, "this endpoint needs the organisation's token: /hooks/ORG/salesforce/TOKEN"
        )
    # Every token is compared, and as bytes: compare_digest refuses non-ASCII text.
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given.encode(), token.encode())
    if not matched:
        raise BadNotification(403, "wrong token in the endpoint URL")


def _text(parent: Any, tag: str) -> str | None:
    element = parent.find(f"{{{OUTBOUND}}}{tag}")
    if element is None:
        return None
    return (element.text or "").strip()


def _value(element: Any) -> Any:
    if element.get(f"{{{XSI}}}nil") == "true":
        return None
    return element.text if element.text is not None else ""


def read_envelope(body: bytes) -> Any:
    """The root element of ``body``, read incrementally so that an over-deep document or one
    with too many notifications is refused before it is built in full (BadNotification)."""
    depth = 0
    notes = 0
    root = None
    note_tag = f"{{{OUTBOUND}}}Notification"
    try:
        for event, element in SafeET.iterparse(
            io.BytesIO(body), events=("start", "end"), forbid_dtd=True
        ):
            if event == "start":
                depth += 1
                if root is None:
                    root = element
                if depth > MAX_DEPTH:
                    raise BadNotification(400, f"XML nested deeper than {MAX_DEPTH} elements")
                continue
            depth -= 1
            if element.tag == note_tag:
                notes += 1
                if notes > MAX_NOTIFICATIONS:
                    raise BadNotification(
                        413, f"more than {MAX_NOTIFICATIONS} notifications in one message"
                    )
    except DefusedXmlException as exc:
        raise BadNotification(400, f"forbidden XML construct: {type(exc).__name__}") from None
    except SafeET.ParseError as exc:
        raise BadNotification(400, f"malformed XML: {exc}") from None
    except (LookupError, ValueError) as exc:
        # expat refuses the encoding an XML declaration names (unknown, multi-byte, idna ...);
        # UnicodeError is a ValueError. Salesforce always sends UTF-8.
        raise BadNotification(400, f"unreadable XML encoding: {exc}") from None
    if root is None:  # pragma: no cover - expat reports an empty document as a ParseError
        raise BadNotification(400, "empty message")
    return root


def parse(request: HttpRequest, settings: SystemSettings) -> Notification:
    """Verify and parse one outbound message; BadNotification (4xx) if anything is off."""
    if request.method.upper() != "POST":
        raise BadNotification(405, f"outbound messages are POSTed, not {request.method}")
    verify_token(request.suffix, settings)
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
    root = read_envelope(request.body)
    notes = root.find(f"{{{SOAPENV}}}Body/{{{OUTBOUND}}}notifications")
    if notes is None:
        raise BadNotification(400, "not a Salesforce outbound message (no notifications element)")
    org_id = _text(notes, "OrganizationId") or ""
    if not same_org(org_id, str(expected)):
        raise BadNotification(
            403, f"message from org {org_id[:18] or '?'} does not belong to org {settings.org!r}"
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
        replay_horizon=REPLAY_HORIZON,
    )
