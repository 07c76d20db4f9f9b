"""Webhook deliveries: how ExampleCRM signs them, and ``parse_notification``'s verification.

A delivery is ``POST <your endpoint>`` with a JSON body
``{"accountId": "...", "events": [{"eventId", "object", "objectId", "change", "occurredAt"}]}``
and two headers: ``X-Example-Timestamp`` (milliseconds since the epoch) and
``X-Example-Signature``, the base64 HMAC-SHA256, keyed with the app's webhook secret, of
``METHOD + path + body + timestamp``. A delivery is refused (``BadNotification``, nothing
stored) when it is unsigned (401), its signature does not match (401), it is older than
``webhook_tolerance`` (401, a replay), it is not the JSON above (400) or it belongs to another
account (403).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

from eventsync.errors import BadNotification, ConfigurationError
from eventsync.models import EntityRef, HttpRequest, HttpResponse, Notification, SystemSettings
from eventsync.settings import structure

from .settings import SYSTEM, ExampleCrmSettings

SIGNATURE_HEADER = "X-Example-Signature"
TIMESTAMP_HEADER = "X-Example-Timestamp"
ACK = HttpResponse(200, b'{"received":true}', "application/json")


def signature(secret: str, method: str, path: str, body: bytes, timestamp: str) -> str:
    """The signature ExampleCRM puts in ``X-Example-Signature``."""
    message = method.upper().encode() + path.encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def signed_request(
    secret: str, path: str, payload: Mapping[str, Any], timestamp_ms: int | None = None
) -> HttpRequest:
    """A delivery as ExampleCRM sends it (the sandbox and tests build theirs with this)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    stamp = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
    headers = {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: stamp,
        SIGNATURE_HEADER: signature(secret, "POST", path, body, stamp),
    }
    return HttpRequest("POST", path, headers, body)


def parse(request: HttpRequest, settings: SystemSettings) -> Notification:
    """Verify one delivery and name the records it says changed; BadNotification otherwise."""
    options, problems = structure(ExampleCrmSettings, settings.options, "settings")
    if options is None:
        raise BadNotification(400, f"the examplecrm settings are invalid: {'; '.join(problems)}")
    if request.method.upper() != "POST":
        raise BadNotification(405, f"deliveries are POSTed, got {request.method}")
    try:
        secret = settings.secret("webhook_secret")
    except ConfigurationError as exc:
        raise BadNotification(
            401, "no webhook secret configured (webhook_secret_env); refusing unverifiable input"
        ) from exc
    stamp = request.header(TIMESTAMP_HEADER)
    given = request.header(SIGNATURE_HEADER)
    if not stamp or not given:
        raise BadNotification(401, "unsigned delivery: signature or timestamp header missing")
    expected = signature(secret, request.method, request.path, request.body, stamp)
    if not hmac.compare_digest(expected.encode(), given.strip().encode()):
        raise BadNotification(401, "bad signature: the body, path or signing secret differ")
    # Checked after the signature, so the timestamp itself is known to be genuine.
    if not stamp.isdigit() or abs(time.time() - int(stamp) / 1000) > options.webhook_tolerance:
        raise BadNotification(401, f"stale delivery (timestamp {stamp}): refusing a replay")
    try:
        payload = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadNotification(400, f"body is not JSON: {exc}") from exc
    events = payload.get("events") if isinstance(payload, dict) else None
    if not isinstance(events, list) or not all(isinstance(e, dict) for e in events):
        raise BadNotification(400, "body needs 'accountId' and a list of 'events'")
    account = str(payload.get("accountId") or "")
    if account != options.account_id:
        raise BadNotification(
            403, f"delivery for account {account or '?'}, this endpoint serves {options.account_id}"
        )
    entities = []
    for event in events:
        if not event.get("object") or not event.get("objectId"):
            raise BadNotification(400, "every event needs 'object' and 'objectId'")
        entities.append(
            EntityRef(str(event["object"]), str(event["objectId"]), {"change": event.get("change")})
        )
    return Notification(
        system=SYSTEM,
        kind="crm.change",
        entities=tuple(entities),
        response=ACK,
        dedupe_ids=tuple(str(e["eventId"]) for e in events if e.get("eventId")),
        org_id=account,
    )
