"""parse_notification's edge cases: replay window, ignored deliveries, size and depth limits."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

import pytest
from eventsync.errors import BadNotification, ConfigurationError
from eventsync.models import HttpRequest
from eventsync_hopin import plugin, webhooks
from eventsync_hopin.options import load_options

NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)


def iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def payload(settings, **changes):
    """A delivery for the settings' organisation and event, occurring at NOW."""
    return {
        "id": "delivery-1",
        "signal": "registrationCreated",
        "occurredAt": iso(NOW),
        "organizationId": settings.options["organization_id"],
        "eventId": settings.options["event_id"],
        "data": {"id": "r1", "type": "registration", "attributes": {"email": "a@b.co"}},
        **changes,
    }


def signed(settings, body) -> HttpRequest:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    secret = settings.secret("webhook_secret")
    digest = hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return HttpRequest("POST", "/hooks/acme/hopin", {"X-Hopin-Signature": digest}, raw)


def parse(settings, body, now=NOW):
    return webhooks.parse(signed(settings, body), settings, now=now)


def refused(settings, body, now=NOW) -> BadNotification:
    with pytest.raises(BadNotification) as exc:
        parse(settings, body, now)
    return exc.value


def test_a_current_delivery_is_remembered_for_the_replay_window(settings, tweak):
    note = parse(settings, payload(settings))
    assert note.dedupe_ids == ("delivery-1",) and not note.ignored
    assert note.replay_horizon == 86400.0 + 300.0
    short = tweak(settings, webhook_replay_window=600.0, webhook_clock_skew=0.0)
    assert parse(short, payload(settings)).replay_horizon == 600.0


def test_a_delivery_older_than_the_window_is_refused(settings, tweak):
    old = payload(settings, occurredAt=iso(NOW - dt.timedelta(days=1, seconds=1)))
    error = refused(settings, old)
    assert error.status == 400 and "stale delivery" in error.message
    # Just inside the window it is accepted; a shorter window refuses it.
    recent = payload(settings, occurredAt=iso(NOW - dt.timedelta(minutes=10)))
    assert parse(settings, recent).entities
    assert refused(tweak(settings, webhook_replay_window=60.0), recent).status == 400


def test_a_delivery_from_the_future_is_refused_beyond_the_clock_skew(settings, tweak):
    ahead = payload(settings, occurredAt=iso(NOW + dt.timedelta(minutes=4)))
    assert parse(settings, ahead).entities
    error = refused(tweak(settings, webhook_clock_skew=60.0), ahead)
    assert error.status == 400 and "ahead of this machine's clock" in error.message


def test_timestamps_in_epoch_seconds_and_with_offsets_are_read(settings):
    assert parse(settings, payload(settings, occurredAt=NOW.timestamp())).entities
    paris = NOW.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat()
    assert parse(settings, payload(settings, occurredAt=paris)).entities
    naive = NOW.replace(tzinfo=None).isoformat()  # read as UTC
    assert parse(settings, payload(settings, occurredAt=naive)).entities


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"occurredAt": None}, "no occurredAt"),
        ({"occurredAt": "yesterday"}, "no occurredAt"),
        ({"occurredAt": True}, "no occurredAt"),
        ({"occurredAt": 1e30}, "no occurredAt"),
        ({"id": None}, "needs its 'id'"),
        ({"id": 42}, "needs its 'id'"),
        ({"id": "x" * 129}, "needs its 'id'"),
        ({"signal": ""}, "needs 'signal'"),
        ({"data": None}, "needs 'signal' and 'data'"),
        ({"data": {"id": "", "type": "registration"}}, "data.id and data.type"),
    ],
)
def test_deliveries_lacking_what_replay_protection_needs_are_refused(settings, changes, words):
    error = refused(settings, payload(settings, **changes))
    assert error.status == 400 and words in error.message


def test_the_age_check_can_be_turned_off_and_ids_still_count(settings, tweak):
    untimed = tweak(settings, webhook_timestamp_field="")
    body = {k: v for k, v in payload(settings).items() if k != "occurredAt"}
    note = parse(untimed, body)
    assert note.entities and note.dedupe_ids == ("delivery-1",) and note.replay_horizon > 0


def test_unknown_signals_are_acknowledged_and_ignored(settings, tweak):
    note = parse(settings, payload(settings, signal="eventDeleted", data="anything"))
    assert note.entities == () and note.response.status == 200
    assert "'eventDeleted' is not one this endpoint subscribes to" in note.ignored
    narrow = tweak(settings, webhook_signals=["magicLinkAccepted"])
    assert parse(narrow, payload(settings)).ignored
    everything = tweak(settings, webhook_signals=["*"])
    assert parse(everything, payload(settings, signal="eventDeleted")).entities


@pytest.mark.parametrize(
    ("drop", "other", "words"),
    [
        ("organizationId", {}, "names no organisation"),
        ("eventId", {}, "names no event"),
        (None, {"eventId": "AnotherEvent0000000000001"}, "delivery for event AnotherEvent"),
        (None, {"organizationId": "AnotherOrg"}, "delivery for organisation AnotherOrg"),
    ],
)
def test_deliveries_not_shown_to_be_for_this_event_are_ignored(settings, drop, other, words):
    body = {k: v for k, v in payload(settings, **other).items() if k != drop}
    note = parse(settings, body)
    assert note.entities == () and note.dedupe_ids == () and words in note.ignored


def test_without_a_configured_organisation_any_organisation_is_accepted(settings, tweak):
    unconfigured = tweak(settings, organization_id="")
    assert parse(unconfigured, payload(settings, organizationId="AnyOrganisation")).entities


def test_deep_json_is_a_400_before_it_is_parsed(settings):
    deep = b"[" * 200_000 + b"]" * 200_000
    error = refused(settings, deep)
    assert error.status == 400 and "deeper than 32" in error.message


def test_a_recursion_error_of_the_json_parser_is_a_400(settings, monkeypatch):
    monkeypatch.setattr(webhooks, "json_depth_exceeds", lambda body, limit: False)
    error = refused(settings, b"[" * 200_000 + b"]" * 200_000)
    assert error.status == 400 and "deeper than" in error.message


def test_nesting_at_the_limit_is_accepted(settings, tweak):
    body = payload(settings)
    body["data"]["attributes"]["metadata"] = {"a": {"b": ["c"]}}  # depth 6 in all
    assert parse(tweak(settings, webhook_max_depth=6), body).entities
    assert refused(tweak(settings, webhook_max_depth=5), body).status == 400


@pytest.mark.parametrize(
    ("body", "limit", "deeper"),
    [
        (b"[[[]]]", 3, False),
        (b"[[[[]]]]", 3, True),
        (b'["[[[[[[", {"a": "]]]]"}]', 2, False),  # brackets in strings do not nest
        (b'["\\"[[[[", {"a": "x"}]', 2, False),  # nor after an escaped quote
        (b'["\\\\", [[[]]]]', 3, True),  # an escaped backslash ends the string
        (b'{"a": {"b": {}}}', 3, False),
        (b"", 1, False),
        (b'"[[[[', 1, False),  # an unterminated string: the parser refuses it
    ],
)
def test_json_depth_scan(body, limit, deeper):
    assert webhooks.json_depth_exceeds(body, limit) is deeper


def test_a_body_over_the_size_limit_is_a_413_before_the_signature(settings, tweak):
    small = tweak(settings, webhook_max_bytes=100)
    request = signed(settings, payload(settings))
    unsigned = HttpRequest("POST", "/hooks/acme/hopin", {}, request.body)
    for attempt in (request, unsigned):
        with pytest.raises(BadNotification) as exc:
            plugin.parse_notification("hopin", attempt, small)
        assert exc.value.status == 413


@pytest.mark.parametrize(
    "option",
    [
        {"webhook_max_depth": 0},
        {"webhook_max_bytes": -1},
        {"webhook_replay_window": 0.0},
        {"webhook_clock_skew": -1.0},
    ],
)
def test_limits_must_be_positive(settings, tweak, option):
    with pytest.raises(ConfigurationError) as exc:
        load_options(tweak(settings, **option))
    assert next(iter(option)) in str(exc.value)


@pytest.mark.parametrize(
    "value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", 1e20, "not a time"]
)
def test_a_delivery_time_utc_cannot_hold_is_no_time(value):
    # Found by the property test: year 1 at +01:00 is before datetime.min in UTC.
    assert webhooks.delivery_time(value) is None


def test_options_are_structured_once_per_settings_and_a_bad_one_is_never_kept(settings, tweak):
    # load_options runs for every delivery: equal settings share one structured instance.
    first = load_options(settings)
    assert load_options(tweak(settings)) is first
    changed = load_options(tweak(settings, webhook_max_depth=7))
    assert changed is not first and changed.webhook_max_depth == 7
    for _ in range(2):  # refused each time, not remembered as if it were good
        with pytest.raises(ConfigurationError, match="webhook_max_depth"):
            load_options(tweak(settings, webhook_max_depth=0))
