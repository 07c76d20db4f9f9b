"""Inbound dataSubscription deliveries: verify the signature, parse, say what may have changed.

Hopin documents no payload, signal names or signing; the defaults (HMAC-SHA256 of the raw body,
hex, optionally prefixed ``sha256=``, in header ``X-Hopin-Signature``) are assumptions, set by
``webhook_signature_header`` / ``webhook_signature_algorithm`` and the ``webhook_secret_env`` secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from eventsync.errors import BadNotification, ConfigurationError
from eventsync.models import EntityRef, HttpRequest, HttpResponse, Notification, SystemSettings

from .options import load_options

SYSTEM = "hopin"
ACK = HttpResponse(status=200, body=b'{"received":true}', content_type="application/json")


def verify_signature(secret: str, body: bytes, given: str | None, algorithm: str) -> None:
    """BadNotification(401) when unsigned or the HMAC does not match (constant-time comparison)."""
    if not given:
        raise BadNotification(401, "unsigned delivery: the signature header is missing")
    value = given.strip()
    prefix = f"{algorithm}="
    if value.lower().startswith(prefix):
        value = value[len(prefix) :]
    expected = hmac.new(secret.encode(), body, getattr(hashlib, algorithm)).hexdigest()
    if not hmac.compare_digest(expected.encode(), value.lower().encode()):
        raise BadNotification(401, "bad signature: the body or the signing secret does not match")


def parse(request: HttpRequest, settings: SystemSettings) -> Notification:
    """Verify and parse one delivery into a Notification whose entities name object and id."""
    options = load_options(settings)
    if request.method.upper() != "POST":
        raise BadNotification(405, f"deliveries are POSTed, got {request.method}")
    try:
        secret = settings.secret("webhook_secret")
    except ConfigurationError as exc:
        raise BadNotification(
            401,
            "no webhook signing secret configured (set webhook_secret_env); "
            "refusing unverifiable input",
        ) from exc
    verify_signature(
        secret,
        request.body,
        request.header(options.webhook_signature_header),
        options.webhook_signature_algorithm,
    )
    try:
        payload: Any = json.loads(request.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadNotification(400, f"body is not JSON: {exc}") from exc
    if not isinstance(payload, Mapping):
        raise BadNotification(400, "body must be a JSON object")
    signal = payload.get("signal")
    data = payload.get("data")
    if not isinstance(signal, str) or not isinstance(data, Mapping):
        raise BadNotification(400, "body needs 'signal' and 'data' {id, type, attributes}")
    entity_id, entity_type = data.get("id"), data.get("type")
    if not isinstance(entity_id, str) or not entity_id or not isinstance(entity_type, str):
        raise BadNotification(400, "data.id and data.type are required")
    org_id = payload.get("organizationId")
    if options.organization_id and org_id and org_id != options.organization_id:
        raise BadNotification(
            403,
            f"delivery for organisation {org_id}, this endpoint serves {options.organization_id}",
        )
    event_id = payload.get("eventId")
    if options.event_id and event_id and event_id != options.event_id:
        raise BadNotification(
            403, f"delivery for event {event_id}, this endpoint serves {options.event_id}"
        )
    attributes = data.get("attributes") if isinstance(data.get("attributes"), Mapping) else {}
    entity = EntityRef(object=entity_type, id=entity_id, fields=dict(attributes or {}))
    dedupe = (str(payload["id"]),) if payload.get("id") else ()
    return Notification(
        system=SYSTEM,
        kind=signal,
        entities=(entity,),
        response=ACK,
        dedupe_ids=dedupe,
        org_id=str(org_id) if org_id else None,
    )
