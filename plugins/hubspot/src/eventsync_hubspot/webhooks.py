"""Webhook deliveries (webhooks API v3 signatures) and ``parse_notification``'s verification.

HubSpot POSTs a JSON array of up to 100 events to the app's target URL, each with ``eventId``,
``subscriptionId``, ``portalId``, ``appId``, ``occurredAt`` (epoch milliseconds),
``subscriptionType`` (``contact.creation``, ``contact.propertyChange``, ``object.creation`` ...),
``attemptNumber``, ``objectId`` and, for property changes, ``propertyName`` and
``propertyValue``. Two headers sign it: ``X-HubSpot-Request-Timestamp`` (epoch milliseconds)
and ``X-HubSpot-Signature-v3``, the base64 HMAC-SHA256, keyed with the app's client secret, of
``method + URI + body + timestamp`` (the URI as HubSpot called it: ``webhook_url``).

Refused, storing nothing (``BadNotification``): another method (405); no signature or no secret
configured (401); a signature that does not match (401); a timestamp more than
``webhook_tolerance`` (5 minutes) away from now (401, a replay); a body that is not such an
array (400); an event of another portal (403). HubSpot re-sends a delivery it got no 2xx for,
for up to a day, under the same ``eventId``s: they are the dedupe ids, remembered that long.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

from eventsync.errors import BadNotification, ConfigurationError
from eventsync.models import EntityRef, HttpRequest, HttpResponse, Notification, SystemSettings
from eventsync.settings import structure

from .schema import STANDARD
from .settings import SYSTEM, HubSpotSettings

SIGNATURE_HEADER = "X-HubSpot-Signature-v3"
TIMESTAMP_HEADER = "X-HubSpot-Request-Timestamp"
ACK = HttpResponse(200, b"", "text/plain; charset=utf-8")
#: HubSpot retries a failed delivery for up to 24 hours.
REPLAY_HORIZON = 25 * 3600.0
#: The legacy subscription types' object names, as the v3 object paths name them.
LEGACY_OBJECTS = {
    "contact": "contacts",
    "company": "companies",
    "deal": "deals",
    "ticket": "tickets",
}
MAX_EVENTS = 1000


def signature(secret: str, method: str, uri: str, body: bytes, timestamp: str) -> str:
    """The value HubSpot puts in ``X-HubSpot-Signature-v3``."""
    message = method.upper().encode() + uri.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def signed_request(
    secret: str,
    url: str,
    events: Sequence[Mapping[str, Any]],
    timestamp_ms: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A delivery's body and headers as HubSpot sends them to ``url`` (the sandbox and tests
    build theirs with this)."""
    body = json.dumps(list(events), separators=(",", ":")).encode()
    stamp = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: signature(secret, "POST", url, body, stamp),
    }
    return body, headers


def event(
    portal_id: int | str, object_id: int, subscription_type: str, **more: Any
) -> dict[str, Any]:
    """One webhook event as HubSpot sends it (``more``: ``propertyName``, ``objectTypeId`` ...);
    the sandbox and tests build theirs with this."""
    now = int(time.time() * 1000)
    return {
        "eventId": now,
        "subscriptionId": 1,
        "portalId": int(portal_id) if str(portal_id).isdigit() else portal_id,
        "appId": 1,
        "occurredAt": now,
        "subscriptionType": subscription_type,
        "attemptNumber": 0,
        "objectId": object_id,
        "changeSource": "INTEGRATION",
        **more,
    }


def request_uri(request: HttpRequest, options: HubSpotSettings) -> str:
    """The URI HubSpot signed: the configured target URL, else rebuilt from the request."""
    if options.webhook_url:
        return options.webhook_url
    host = request.header("Host") or "localhost"
    query = f"?{urlencode(dict(request.query))}" if request.query else ""
    return f"http://{host}{request.path}{query}"


def parse(request: HttpRequest, settings: SystemSettings) -> Notification:
    """Verify one delivery and name the records it says changed; BadNotification otherwise."""
    options, problems = structure(HubSpotSettings, settings.options, "settings")
    if options is None:
        raise BadNotification(400, f"the hubspot settings are invalid: {'; '.join(problems)}")
    if request.method.upper() != "POST":
        raise BadNotification(405, f"deliveries are POSTed, got {request.method}")
    try:
        secret = settings.secret("client_secret")
    except ConfigurationError as exc:
        raise BadNotification(
            401, "no app client secret configured (client_secret_env): cannot verify deliveries"
        ) from exc
    stamp, given = request.header(TIMESTAMP_HEADER), request.header(SIGNATURE_HEADER)
    if not stamp or not given:
        raise BadNotification(401, f"unsigned delivery: {SIGNATURE_HEADER} or timestamp missing")
    expected = signature(secret, request.method, request_uri(request, options), request.body, stamp)
    if not hmac.compare_digest(expected.encode(), given.strip().encode()):
        raise BadNotification(
            401, "bad signature: the body, the target URL (webhook_url) or the secret differ"
        )
    # Checked after the signature, so the timestamp itself is known to be genuine.
    if not stamp.isdigit() or abs(time.time() - int(stamp) / 1000) > options.webhook_tolerance:
        raise BadNotification(401, f"stale delivery (timestamp {stamp}): refusing a replay")
    events = _events(request.body)
    foreign = sorted({str(e.get("portalId")) for e in events} - {options.portal_id})
    if foreign:
        raise BadNotification(
            403,
            f"delivery for portal {', '.join(foreign)}, this endpoint serves {options.portal_id}",
        )
    # One entity per record, however many of its properties the delivery says changed.
    unique = {(e.object, e.id): e for event in events for e in _entities(event)}
    entities = list(unique.values())
    ids = tuple(str(e["eventId"]) for e in events if e.get("eventId") is not None)
    if not entities:
        return Notification(
            system=SYSTEM,
            kind="crm.change",
            entities=(),
            response=ACK,
            dedupe_ids=ids,
            org_id=options.portal_id,
            ignored="no CRM object event in the delivery",
        )
    return Notification(
        system=SYSTEM,
        kind="crm.change",
        entities=tuple(entities),
        response=ACK,
        dedupe_ids=ids,
        org_id=options.portal_id,
        replay_horizon=REPLAY_HORIZON,
    )


def _events(body: bytes) -> list[dict[str, Any]]:
    try:
        events = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadNotification(400, f"body is not JSON: {exc}") from exc
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise BadNotification(400, "a delivery is a JSON array of event objects")
    if len(events) > MAX_EVENTS:
        raise BadNotification(400, f"{len(events)} events in one delivery (HubSpot sends <= 100)")
    for event in events:
        if not event.get("subscriptionType") or event.get("portalId") is None:
            raise BadNotification(400, "every event needs 'subscriptionType' and 'portalId'")
    return events


def _entities(event: Mapping[str, Any]) -> list[EntityRef]:
    """The records one event names (none for events about no CRM object)."""
    kind, _, action = str(event["subscriptionType"]).partition(".")
    if kind == "object":
        type_id = str(event.get("objectTypeId") or "")
        obj = STANDARD.get(type_id, type_id)
    else:
        obj = LEGACY_OBJECTS.get(kind, "")
    if not obj:
        return []
    ids = [event.get("objectId")]
    if action == "merge":
        ids = [event.get("primaryObjectId"), *(event.get("mergedObjectIds") or ())]
    change = {"change": action, "property": event.get("propertyName")}
    return [EntityRef(obj, str(i), change) for i in ids if i is not None]
