"""Property-based tests of the dataSubscription delivery parser (``eventsync_hopin.webhooks.parse``).

Whatever arrives (any method, headers, body; signed or not, nested however deep), ``parse``
returns a Notification or raises BadNotification with a 4xx status; nothing else may escape to
the web server. An unsigned or wrongly signed delivery is a 401 whatever its body; a signed
delivery of the documented shape reads back as its signal and entity, and one for another
organisation or event is acknowledged and ignored. No server is needed: the settings are built
as the sandbox builds them, with their own ``env`` holding the signing secret; the clock is a
fixed ``now``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from typing import Any

from eventsync.errors import BadNotification
from eventsync.models import HttpRequest, Notification, SystemSettings
from eventsync_hopin import webhooks
from eventsync_hopin.options import DEFAULT_SIGNALS
from hypothesis import example, given, settings
from hypothesis import strategies as st

SECRET = "whsec-property-tests"
ORGANIZATION, EVENT = "org-1", "event-1"
NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
#: Deliveries are accepted for a day after their occurredAt (webhook_replay_window).
WINDOW = 86400
SETTINGS = SystemSettings(
    "hopin",
    "acme",
    options={
        "base_url": "http://127.0.0.1:1",
        "organization_id": ORGANIZATION,
        "event_id": EVENT,
        "api_key_env": "HOPIN_API_KEY",
        "webhook_secret_env": "HOPIN_WEBHOOK_SECRET",
        "webhook_signature_header": "X-Hopin-Signature",
        "webhook_signature_algorithm": "sha256",
    },
    env={"HOPIN_API_KEY": "key", "HOPIN_WEBHOOK_SECRET": SECRET},
)


def parse(request: HttpRequest) -> Notification | None:
    """``parse``, with the property checked: a Notification, or BadNotification with a 4xx
    (returned as None). Any other exception fails the test."""
    try:
        return webhooks.parse(request, SETTINGS, now=NOW)
    except BadNotification as exc:
        assert 400 <= exc.status < 500 and exc.message
        return None


def status(request: HttpRequest) -> int:
    """The status ``parse`` answers ``request`` with (200 for a Notification)."""
    try:
        return webhooks.parse(request, SETTINGS, now=NOW).response.status
    except BadNotification as exc:
        return exc.status


def signature(body: bytes) -> str:
    """The hex HMAC-SHA256 of ``body`` with the configured secret."""
    return hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()


# --- strategies -----------------------------------------------------------------------------


def json_of(floats: st.SearchStrategy[float]) -> st.SearchStrategy[Any]:
    """JSON values (Python's json writes and reads nan and infinities too)."""
    return st.recursive(
        st.none() | st.booleans() | st.integers() | floats | st.text(max_size=10),
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
        ),
        max_leaves=8,
    )


json_values = json_of(st.floats())
#: Without nan, which never equals itself: for values compared after a round trip.
plain_json = json_of(st.floats(allow_nan=False))
#: A delivery's occurredAt: within the window, out of it, or not a time at all.
moments = st.integers(-2 * WINDOW, 2 * WINDOW).map(lambda ago: NOW - dt.timedelta(seconds=ago))
occurred = st.one_of(
    moments.map(dt.datetime.isoformat),
    moments.map(lambda m: m.timestamp()),
    st.sampled_from(
        ["2025-03-01", "yesterday", "9999-12-31T23:59:59-23:59", "0001-01-01T00:00+01:00"]
    ),
    json_values,
)
#: A delivery in the documented shape, each part sometimes missing or of another type.
deliveries = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=8) | st.text(min_size=129, max_size=130) | json_values,
        "occurredAt": occurred,
        "signal": st.sampled_from([*DEFAULT_SIGNALS, "unknownSignal", ""]) | json_values,
        "organizationId": st.sampled_from([ORGANIZATION, "org-2", ""]) | json_values,
        "eventId": st.sampled_from([EVENT, "event-2", ""]) | json_values,
        "data": st.fixed_dictionaries(
            {},
            optional={
                "id": st.text(max_size=8) | json_values,
                "type": st.sampled_from(["registration", "magicLink"]) | json_values,
                "attributes": st.dictionaries(st.text(max_size=6), json_values, max_size=3)
                | json_values,
            },
        )
        | json_values,
    },
)
bodies = st.one_of(
    st.binary(max_size=100),
    st.text(max_size=100).map(str.encode),
    json_values.map(lambda v: json.dumps(v).encode()),
    deliveries.map(lambda d: json.dumps(d).encode()),
    deliveries.map(lambda d: json.dumps(d).encode("utf-16")),
)
headers = st.dictionaries(
    st.sampled_from(["Content-Type", "X-Hopin-Signature", "x-hopin-signature", "X-Other"])
    | st.text(max_size=8),
    st.text(max_size=70),
    max_size=3,
)
methods = st.sampled_from(["POST", "post", "GET", "DELETE", ""]) | st.text(max_size=6)


@st.composite
def signed(draw: st.DrawFn, body: bytes) -> dict[str, str]:
    """Headers carrying a right signature of ``body``, in one of the accepted spellings."""
    hexdigest = signature(body)
    value = draw(
        st.sampled_from(
            [
                hexdigest,
                f"sha256={hexdigest}",
                f"SHA256={hexdigest.upper()}",
                f" sha256={hexdigest} ",
            ]
        )
    )
    name = draw(st.sampled_from(["X-Hopin-Signature", "x-hopin-signature", "X-HOPIN-SIGNATURE"]))
    return {"Content-Type": "application/json", name: value}


# --- properties -----------------------------------------------------------------------------


@settings(max_examples=400)
@given(methods, headers, bodies)
def test_any_request_gives_a_notification_or_a_4xx(
    method: str, head: dict[str, str], body: bytes
) -> None:
    request = HttpRequest(method, "/hooks/acme/hopin", head, body)
    parse(request)
    if method.upper() != "POST":
        assert status(request) == 405
    else:  # a right signature cannot be guessed: every one of these is refused unread
        assert status(request) == 401


@settings(max_examples=400)
@given(st.data(), bodies)
def test_any_signed_body_gives_a_notification_or_a_4xx(data: st.DataObject, body: bytes) -> None:
    parse(HttpRequest("POST", "/hooks/acme/hopin", data.draw(signed(body)), body))


@settings(max_examples=300)
@given(
    st.data(),
    st.text(min_size=1, max_size=128),
    st.sampled_from(DEFAULT_SIGNALS),
    st.text(min_size=1, max_size=20),
    st.text(max_size=12),
    st.dictionaries(st.text(max_size=6), plain_json, max_size=3),
    st.integers(-300, WINDOW).map(lambda ago: NOW - dt.timedelta(seconds=ago)),
)
def test_a_signed_delivery_reads_back_as_its_signal_and_entity(
    data: st.DataObject,
    delivery_id: str,
    signal: str,
    entity_id: str,
    entity_type: str,
    attributes: dict[str, Any],
    moment: dt.datetime,
) -> None:
    payload = {
        "id": delivery_id,
        "signal": signal,
        "organizationId": ORGANIZATION,
        "eventId": EVENT,
        "occurredAt": data.draw(st.sampled_from([moment.isoformat(), moment.timestamp()])),
        "data": {"id": entity_id, "type": entity_type, "attributes": attributes},
    }
    body = json.dumps(payload).encode()
    note = parse(HttpRequest("POST", "/hooks/acme/hopin", data.draw(signed(body)), body))
    assert note is not None and not note.ignored
    assert (note.system, note.kind, note.org_id) == ("hopin", signal, ORGANIZATION)
    [entity] = note.entities
    assert (entity.object, entity.id, dict(entity.fields)) == (entity_type, entity_id, attributes)
    assert note.dedupe_ids == (delivery_id,)
    assert note.response.status == 200


@settings(max_examples=100)
@given(
    st.data(),
    st.integers(WINDOW + 1, 10 * WINDOW) | st.integers(-10 * WINDOW, -301),  # skew: 300 s
    st.booleans(),
)
def test_a_stale_or_future_delivery_is_refused(
    data: st.DataObject, ago: int, as_number: bool
) -> None:
    moment = NOW - dt.timedelta(seconds=ago)
    payload = {
        "id": "d1",
        "signal": DEFAULT_SIGNALS[0],
        "organizationId": ORGANIZATION,
        "eventId": EVENT,
        "occurredAt": moment.timestamp() if as_number else moment.isoformat(),
        "data": {"id": "r1", "type": "registration"},
    }
    body = json.dumps(payload).encode()
    assert status(HttpRequest("POST", "/hooks/acme/hopin", data.draw(signed(body)), body)) == 400


@settings(max_examples=100)
@given(st.data(), st.sampled_from(["organizationId", "eventId"]), st.text(max_size=8) | plain_json)
def test_a_delivery_for_another_organisation_or_event_is_acknowledged_and_ignored(
    data: st.DataObject, key: str, other: Any
) -> None:
    payload = {
        "id": "d1",
        "signal": DEFAULT_SIGNALS[0],
        "organizationId": ORGANIZATION,
        "eventId": EVENT,
        "occurredAt": NOW.isoformat(),
        "data": {"id": "r1", "type": "registration"},
    }
    payload[key] = other
    body = json.dumps(payload).encode()
    note = parse(HttpRequest("POST", "/hooks/acme/hopin", data.draw(signed(body)), body))
    if other == {"organizationId": ORGANIZATION, "eventId": EVENT}[key]:  # right after all
        assert note is not None and note.entities
    else:
        assert note is not None and note.ignored and note.entities == ()
        assert note.response.status == 200  # so that Hopin stops re-sending it


@settings(max_examples=30)
@given(st.integers(1, 100_000), st.sampled_from([("[", "]"), ('{"a":', "}")]))
@example(100_000, ("[", "]"))  # RecursionError in json.loads before the depth limit (32)
def test_a_deeply_nested_signed_body_is_refused(depth: int, brackets: tuple[str, str]) -> None:
    opening, closing = brackets
    body = (opening * depth + ("1" if opening != "[" else "") + closing * depth).encode()
    request = HttpRequest("POST", "/hooks/acme/hopin", {"X-Hopin-Signature": signature(body)}, body)
    assert parse(request) is None and status(request) == 400
