"""Inbound dataSubscription deliveries: verify the signature, parse, say what may have changed.

Hopin documents no payload, signal names or signing; the defaults (HMAC-SHA256 of the raw body,
hex, optionally prefixed ``sha256=``, in header ``X-Hopin-Signature``) are assumptions, set by
``webhook_signature_header`` / ``webhook_signature_algorithm`` and the ``webhook_secret_env`` secret.

Replays: no signed timestamp header is documented, but the body signature covers the payload's
``occurredAt`` (``webhook_timestamp_field``), so a delivery older than
``webhook_replay_window`` is refused (400) and a younger one is passed on with its delivery id
and a ``replay_horizon`` of that window: the engine remembers the id in the state store, so a
re-send or a replay within the window stores nothing, even after a restart.

A verified delivery eventsync has nothing to do with (a signal it does not subscribe to, another
organisation or event, or one naming none) is acknowledged (2xx) and ignored, so Hopin stops
re-sending it; the engine counts it. Bodies are limited in size (413) and JSON depth (400,
checked before parsing: Python's json module recurses and would fail on deep nesting).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any

from eventsync.errors import BadNotification, ConfigurationError
from eventsync.models import (
    EntityRef,
    HttpRequest,
    HttpResponse,
    Notification,
    Record,
    SystemSettings,
)

from .convert import Resource, to_record
from .options import HopinOptions, load_options

SYSTEM = "hopin"
ACK = HttpResponse(status=200, body=b'{"received":true}', content_type="application/json")
#: Longest delivery id accepted (Hopin ids are 25 characters).
MAX_ID = 128

# The characters that matter for nesting: escapes (inside strings), quotes and brackets.
_TOKENS = re.compile(rb'\\.|["\[\]{}]', re.DOTALL)


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


def json_depth_exceeds(body: bytes, limit: int) -> bool:
    """True when ``body`` nests arrays and objects deeper than ``limit`` (brackets inside
    strings do not count).

    One pass over the quotes, escapes and brackets, stopping at the first level over the limit,
    so its cost is linear in the body and a body of nothing but ``[`` costs ``limit`` steps;
    malformed JSON is left to the parser."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # too few brackets to nest that deep, strings or not (every delivery)
    depth = 0
    in_string = False
    for match in _TOKENS.finditer(body):
        token = match.group()
        if token == b'"':
            in_string = not in_string
        elif in_string or len(token) > 1:
            continue
        elif token in (b"[", b"{"):
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def load_json(body: bytes, max_depth: int) -> Any:
    """The JSON value of ``body``; BadNotification(400) when it is not JSON or too deep."""
    if json_depth_exceeds(body, max_depth):
        raise BadNotification(400, f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(body)
    except RecursionError:  # should the depth check above ever miss a case
        raise BadNotification(400, f"JSON nested deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadNotification(400, f"body is not JSON: {exc}") from None


def delivery_time(value: Any) -> dt.datetime | None:
    """``value`` (ISO-8601 text, or seconds since the epoch) as an aware UTC datetime; None when
    it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        try:
            return dt.datetime.fromtimestamp(value, dt.UTC)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str) or len(value) > 64:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
        return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
    except (ValueError, OverflowError):  # not a time, or one that UTC cannot hold (year 1, +01:00)
        return None


def check_age(payload: Mapping[str, Any], options: HopinOptions, now: dt.datetime) -> None:
    """BadNotification(400) when the delivery's signed timestamp is missing, older than the
    replay window or ahead of the clock by more than the allowed skew."""
    field = options.webhook_timestamp_field
    if not field:
        return
    moment = delivery_time(payload.get(field))
    if moment is None:
        raise BadNotification(
            400, f"the delivery has no {field} timestamp, so a replay cannot be told apart"
        )
    age = (now - moment).total_seconds()
    if age > options.webhook_replay_window:
        raise BadNotification(
            400,
            f"stale delivery: {field} {moment.isoformat()} is older than the replay window "
            f"({options.webhook_replay_window:g} s); a replay is refused",
        )
    if -age > options.webhook_clock_skew:
        raise BadNotification(
            400, f"{field} {moment.isoformat()} is ahead of this machine's clock by {-age:.0f} s"
        )


#: The objects whose deliveries carry the whole resource (as the list and by-id reads give it).
RECORD_TYPES = frozenset({"registration"})


def carried_record(
    entity_type: str, entity_id: str, attributes: Mapping[str, Any], options: HopinOptions
) -> Record | None:
    """The delivery's resource as a Record, when ``webhook_records`` is on and the delivery
    carries a whole registration with its modified time (``updatedAt``); None otherwise, and the
    engine reads it back. A copy without a modified time could not be told from a stale one."""
    if not options.webhook_records or entity_type not in RECORD_TYPES:
        return None
    record = to_record(entity_type, Resource(entity_id, entity_type, dict(attributes)), options)
    return record if record.modified_at is not None else None


def _foreign(payload: Mapping[str, Any], options: HopinOptions) -> str:
    """Why the delivery is not for the configured organisation and event ("" when it is)."""
    for key, wanted, noun in (
        ("organizationId", options.organization_id, "organisation"),
        ("eventId", options.event_id, "event"),
    ):
        given = payload.get(key)
        if wanted and not given:
            return f"the delivery names no {noun} ({key}); this endpoint serves {wanted}"
        if wanted and given != wanted:
            return f"delivery for {noun} {given}, this endpoint serves {wanted}"
    return ""


def parse(
    request: HttpRequest, settings: SystemSettings, *, now: dt.datetime | None = None
) -> Notification:
    """Verify and parse one delivery into a Notification whose entities name object and id.

    :param now: the current time (tests); the clock by default.
    :raises BadNotification: 405 not POST, 401 unsigned or no secret, 413 too large, 400 not
        JSON, too deep, missing fields or stale.
    """
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
    if len(request.body) > options.webhook_max_bytes:
        raise BadNotification(413, f"delivery larger than {options.webhook_max_bytes} bytes")
    verify_signature(
        secret,
        request.body,
        request.header(options.webhook_signature_header),
        options.webhook_signature_algorithm,
    )
    payload = load_json(request.body, options.webhook_max_depth)
    if not isinstance(payload, Mapping):
        raise BadNotification(400, "body must be a JSON object")
    signal = payload.get("signal")
    delivery_id = payload.get("id")
    if not isinstance(signal, str) or not signal:
        raise BadNotification(400, "body needs 'signal' and 'data' {id, type, attributes}")
    if not isinstance(delivery_id, str) or not delivery_id or len(delivery_id) > MAX_ID:
        raise BadNotification(400, "the delivery needs its 'id' (text), to recognise re-sends")
    check_age(payload, options, now or dt.datetime.now(dt.UTC))
    org_id = payload.get("organizationId")
    ignored = _foreign(payload, options)
    subscribed = options.webhook_signals
    if not ignored and signal not in subscribed and "*" not in subscribed:
        ignored = f"signal {signal[:64]!r} is not one this endpoint subscribes to"
    if ignored:
        return Notification(system=SYSTEM, kind=signal, entities=(), response=ACK, ignored=ignored)
    data = payload.get("data")
    if not isinstance(data, Mapping):
        raise BadNotification(400, "body needs 'signal' and 'data' {id, type, attributes}")
    entity_id, entity_type = data.get("id"), data.get("type")
    if not isinstance(entity_id, str) or not entity_id or not isinstance(entity_type, str):
        raise BadNotification(400, "data.id and data.type are required")
    attributes = data.get("attributes") if isinstance(data.get("attributes"), Mapping) else {}
    entity = EntityRef(
        object=entity_type,
        id=entity_id,
        fields=dict(attributes or {}),
        record=carried_record(entity_type, entity_id, attributes or {}, options),
    )
    return Notification(
        system=SYSTEM,
        kind=signal,
        entities=(entity,),
        response=ACK,
        dedupe_ids=(delivery_id,),
        org_id=str(org_id) if org_id else None,
        # Remembered until the delivery would be refused as stale anyway.
        replay_horizon=options.webhook_replay_window + options.webhook_clock_skew,
    )
