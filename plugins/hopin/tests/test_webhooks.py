"""dataSubscriptions: signed deliveries retried until acknowledged; parse_notification."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time

import attrs
import pytest
import requests
from eventsync.errors import BadNotification
from eventsync.models import HttpRequest, PullRequest
from eventsync.waiting import wait_until
from eventsync_hopin import plugin
from eventsync_hopin.subscriptions import subscribe


def _as_request(delivery) -> HttpRequest:
    return HttpRequest(
        method=delivery["method"],
        path=delivery["path"],
        headers=delivery["headers"],
        body=delivery["body"],
    )


@pytest.fixture
def subscribed(fresh, receiver, tweak):
    """A connection whose subscribe hook created a dataSubscription to the receiver."""
    settings = tweak(fresh.settings, webhook_url=receiver.url)
    connection = plugin.authenticate("hopin", settings)
    assert connection.subscription == {}, "authenticate changes nothing in Hopin"
    report = plugin.subscribe(connection, ())
    assert report.created == (connection.subscription["id"],)
    return connection, settings


def test_signed_delivery_parses_into_a_notification(fresh, admin, receiver, subscribed):
    _, settings = subscribed
    reg = admin.registration(fresh.event_id, fresh.ticket_id, "hook@example.com")
    [delivery] = receiver.wait_for(lambda got: len(got) >= 1)
    assert delivery["headers"]["X-Hopin-Signature"].startswith("sha256=")
    note = plugin.parse_notification("hopin", _as_request(delivery), settings)
    assert note.system == "hopin" and note.kind == "registrationCreated"
    [entity] = note.entities
    assert (entity.object, entity.id) == ("registration", reg["id"])
    assert entity.fields["email"] == "hook@example.com"
    assert (
        note.response.status == 200
        and note.dedupe_ids
        and note.org_id == settings.options["organization_id"]
    )


def test_magic_link_accepted_notification(fresh, admin, receiver, subscribed):
    connection, settings = subscribed
    from eventsync.models import PushItem, PushRequest

    [link] = plugin.push(
        connection,
        PushRequest(
            "magicLink",
            "insert",
            (
                PushItem(
                    "k",
                    {
                        "ticketId": fresh.ticket_id,
                        "email": "acc@example.com",
                        "firstName": "A",
                        "lastName": "C",
                    },
                ),
            ),
        ),
    )
    admin.call("POST", f"/magicLinks/{link.id}/accept")
    got = receiver.wait_for(lambda got: any(b"magicLinkAccepted" in d["body"] for d in got))
    kinds = {}
    for delivery in got:
        note = plugin.parse_notification("hopin", _as_request(delivery), settings)
        kinds[note.kind] = note.entities[0]
    assert (
        kinds["magicLinkAccepted"].object == "magicLink"
        and kinds["magicLinkAccepted"].id == link.id
    )
    assert kinds["magicLinkAccepted"].fields["status"] == "registered"
    assert kinds["registrationCreated"].object == "registration"


def test_deliveries_are_retried_until_acknowledged(sandbox, fresh, admin, receiver, subscribed):
    receiver.statuses = [500, 503]
    reg = admin.registration(fresh.event_id, fresh.ticket_id, "again@example.com")
    got = receiver.wait_for(lambda got: any(d["status"] == 200 for d in got))
    assert [d["status"] for d in got] == [500, 503, 200]
    assert len({d["body"] for d in got}) == 1, "the same payload is re-sent"

    def delivered() -> list[dict] | None:
        # The sandbox notes the delivery once it has read the 200, a moment after it was sent.
        log = [
            d
            for d in admin.call("GET", "/deliveries")["deliveries"]
            if d["payload"]["data"]["id"] == reg["id"]
        ]
        return log if log and log[0]["delivered"] else None

    log = wait_until("the delivery noted as delivered", delivered, timeout=60)
    assert log[0]["attempts"] == 3


def test_unsigned_tampered_and_wrong_secret_are_refused(fresh, admin, receiver, subscribed):
    _, settings = subscribed
    admin.registration(fresh.event_id, fresh.ticket_id, "sig@example.com")
    [delivery] = receiver.wait_for(lambda got: len(got) >= 1)
    good = _as_request(delivery)
    unsigned = attrs.evolve(
        good, headers={k: v for k, v in good.headers.items() if k != "X-Hopin-Signature"}
    )
    with pytest.raises(BadNotification) as exc:
        plugin.parse_notification("hopin", unsigned, settings)
    assert exc.value.status == 401 and "unsigned" in exc.value.message
    tampered = attrs.evolve(good, body=good.body.replace(b"sig@example.com", b"evil@example.com"))
    with pytest.raises(BadNotification) as exc:
        plugin.parse_notification("hopin", tampered, settings)
    assert exc.value.status == 401 and "signature" in exc.value.message
    other_secret = attrs.evolve(
        settings, env={**settings.env, settings.options["webhook_secret_env"]: "other"}
    )
    with pytest.raises(BadNotification):
        plugin.parse_notification("hopin", good, other_secret)
    no_secret = attrs.evolve(
        settings, options={k: v for k, v in settings.options.items() if k != "webhook_secret_env"}
    )
    with pytest.raises(BadNotification) as exc:
        plugin.parse_notification("hopin", good, no_secret)
    assert exc.value.status == 401


def _signed(secret: str, payload, header="X-Hopin-Signature", algorithm="sha256", raw=None):
    body = raw if raw is not None else json.dumps(payload).encode()
    digest = hmac.new(secret.encode(), body, getattr(hashlib, algorithm)).hexdigest()
    return HttpRequest(method="POST", path="/hooks/hopin", headers={header: digest}, body=body)


def _now_iso(shift: float = 0.0) -> str:
    moment = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=shift)
    return moment.isoformat().replace("+00:00", "Z")


def _payload(settings, **changes):
    """A current delivery for the settings' organisation and event."""
    return {
        "id": "d1",
        "signal": "registrationCreated",
        "occurredAt": _now_iso(),
        "organizationId": settings.options["organization_id"],
        "eventId": settings.options["event_id"],
        "data": {"id": "r1", "type": "registration", "attributes": {}},
        **changes,
    }


def test_malformed_foreign_and_wrong_method(settings):
    secret = settings.secret("webhook_secret")
    with pytest.raises(BadNotification) as exc:
        plugin.parse_notification("hopin", _signed(secret, None, raw=b"not json"), settings)
    assert exc.value.status == 400
    with pytest.raises(BadNotification) as exc:
        plugin.parse_notification("hopin", _signed(secret, {"signal": "x"}), settings)
    assert exc.value.status == 400
    foreign = _payload(settings, organizationId="someone-else")
    note = plugin.parse_notification("hopin", _signed(secret, foreign), settings)
    assert note.ignored.startswith("delivery for organisation someone-else")
    assert note.entities == () and note.response.status == 200
    get = attrs.evolve(_signed(secret, foreign), method="GET")
    with pytest.raises(BadNotification) as exc:
        plugin.parse_notification("hopin", get, settings)
    assert exc.value.status == 405
    assert plugin.parse_notification("salesforce", get, settings) is None


def test_signature_header_and_algorithm_are_configurable(settings, tweak):
    configured = tweak(
        settings, webhook_signature_header="X-Signature", webhook_signature_algorithm="sha512"
    )
    payload = _payload(
        settings,
        id="d2",
        signal="registrationUpdated",
        data={"id": "r2", "type": "registration", "attributes": {"email": "a@b.co"}},
    )
    secret = settings.secret("webhook_secret")
    note = plugin.parse_notification(
        "hopin", _signed(secret, payload, "X-Signature", "sha512"), configured
    )
    assert note.kind == "registrationUpdated" and note.entities[0].id == "r2"
    with pytest.raises(BadNotification):
        plugin.parse_notification(
            "hopin", _signed(secret, payload, "X-Signature", "sha256"), configured
        )


def test_subscription_renewed_before_it_expires(sandbox, fresh, admin, subscribed):
    connection, _ = subscribed
    first_expiry = connection.subscription["expiresAt"]
    [first] = plugin.subscribe(connection, ()).active
    admin.call("DELETE", "/counters")
    kept = subscribe(connection, [first])
    assert kept.created == () and kept.active == (first,), "not due yet: no call"
    assert admin.counters() == {}
    later = first_expiry - dt.timedelta(hours=1)
    renewed = subscribe(connection, [first], now=later)
    assert renewed.created == (first.id,)
    assert connection.subscription["expiresAt"] > first_expiry
    state = requests.get(f"{sandbox.url}/_admin/state", timeout=5).json()["dataSubscriptions"]
    mine = [s for s in state.values() if s["attributes"]["eventId"] == fresh.event_id]
    assert len(mine) == 1 and mine[0]["id"] == connection.subscription["id"]
    assert mine[0]["attributes"]["configuration"]["expiresAt"].startswith(
        connection.subscription["expiresAt"].strftime("%Y-%m-%dT%H:%M")
    )


def test_expired_subscription_gets_nothing(sandbox, fresh, admin, receiver):
    expires = (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    r = requests.post(
        f"{sandbox.url}/v1/events/{fresh.event_id}/dataSubscriptions",
        timeout=5,
        headers={"Authorization": f"Bearer {sandbox.info()['api_key']}"},
        json={
            "data": {
                "type": "dataSubscription",
                "attributes": {
                    "configuration": {"url": receiver.url, "type": "webhook", "expiresAt": expires},
                    "signals": ["registrationCreated"],
                },
            }
        },
    )
    assert r.status_code == 201
    time.sleep(1.1)
    admin.registration(fresh.event_id, fresh.ticket_id, "late@example.com")
    time.sleep(0.3)
    assert receiver.received == []


def test_delivery_target_option_and_dropped_signals(receiver):
    from eventsync_hopin.sandbox import start

    handle = start(
        {
            "delivery_target": receiver.url,
            "delivery_signals": ["registrationCreated"],
            "delivery_backoff": 0.05,
        }
    )
    try:
        info = handle.info()
        admin = f"{handle.url}/_admin"
        assert (
            requests.post(f"{admin}/deliveries/drop", json={"count": 1}, timeout=5).status_code
            == 204
        )
        for email in ("dropped@example.com", "kept@example.com"):
            requests.post(
                f"{admin}/events/{info['event_id']}/registrations",
                timeout=5,
                json={"ticketId": info["ticket_id"], "email": email},
            ).raise_for_status()
        got = receiver.wait_for(lambda got: len(got) >= 1)
        time.sleep(0.2)
        bodies = [json.loads(d["body"]) for d in receiver.received]
        assert [b["data"]["attributes"]["email"] for b in bodies] == ["kept@example.com"]
        assert got[0]["headers"]["X-Hopin-Signature"]
        note = plugin.parse_notification("hopin", _as_request(got[0]), handle.settings("acme"))
        assert note.kind == "registrationCreated"
    finally:
        handle.stop()


def test_failed_subscription_does_not_stop_sync_and_is_reported(fresh, tweak, admin):
    from eventsync.errors import ConfigurationError, EventsyncError
    from eventsync.models import PullRequest

    with pytest.raises(ConfigurationError, match="webhook_url: must be an http"):
        plugin.authenticate("hopin", tweak(fresh.settings, webhook_url="ftp://nowhere/hook"))
    settings = tweak(fresh.settings, webhook_url="https://sync.example.com/hooks/x/hopin")
    connection = plugin.authenticate("hopin", settings)
    admin.fault(method="POST", path="/v1/events/*/dataSubscriptions", status=422)
    with pytest.raises(EventsyncError):
        plugin.subscribe(connection, ())
    assert "422" in connection.subscription_error

    assert list(plugin.pull(connection, PullRequest("ticket")))
    [finding] = plugin.preflight(None, {"hopin": connection})
    assert finding.severity == "warning" and finding.where.endswith("webhook_url")
    assert plugin.preflight(None, {"hopin": fresh.connection}) == []


def test_a_stale_subscription_eventsync_made_is_ended(sandbox, fresh, receiver, tweak):
    old = plugin.authenticate("hopin", tweak(fresh.settings, webhook_url=receiver.url))
    [first] = plugin.subscribe(old, ()).active
    moved = plugin.authenticate(
        "hopin", tweak(fresh.settings, webhook_url=f"{receiver.url}/moved", webhook_retire_after=30)
    )
    report = plugin.subscribe(moved, (first,))
    assert report.removed == (first,)
    [now_active] = report.active
    assert now_active.target.endswith("/moved") and report.created == (now_active.id,)
    state = requests.get(f"{sandbox.url}/_admin/state", timeout=5).json()["dataSubscriptions"]
    by_url = {
        s["attributes"]["configuration"]["url"]: s["attributes"]["configuration"]["expiresAt"]
        for s in state.values()
        if s["attributes"]["eventId"] == fresh.event_id
    }
    ends = dt.datetime.fromisoformat(by_url[receiver.url].replace("Z", "+00:00"))
    assert ends <= dt.datetime.now(dt.UTC) + dt.timedelta(seconds=31), "the old URL is ending"
    assert by_url[f"{receiver.url}/moved"] > by_url[receiver.url]
    # Turned off: the next call ends the one left and subscribes nothing.
    off = plugin.authenticate("hopin", tweak(fresh.settings, webhook_url=""))
    assert plugin.subscribe(off, report.active) == type(report)((), (), report.active)


def test_a_delivered_registration_carries_its_record(fresh, admin, receiver, subscribed, tweak):
    _, settings = subscribed
    reg = admin.registration(fresh.event_id, fresh.ticket_id, "whole@example.com")
    [delivery] = receiver.wait_for(lambda got: len(got) >= 1)
    [entity] = plugin.parse_notification("hopin", _as_request(delivery), settings).entities
    record = entity.record
    assert record is not None and (record.object, record.id) == ("registration", reg["id"])
    assert record.get("email") == "whole@example.com" and record.get("status") == "registered"
    assert record.modified_at is not None and record.modified_at.tzinfo is not None
    # The same as reading it back, field for field.
    [read] = plugin.pull(fresh.connection, PullRequest("registration", ids=(reg["id"],)))
    assert dict(record.fields) == dict(read.fields) and record.modified_at == read.modified_at
    off = tweak(settings, webhook_records=False)
    [entity] = plugin.parse_notification("hopin", _as_request(delivery), off).entities
    assert entity.record is None and entity.fields["email"] == "whole@example.com"


def test_a_delivery_without_a_modified_time_carries_no_record(fresh, receiver, subscribed):
    _, settings = subscribed
    body = {
        "id": "dlv-no-time",
        "signal": "registrationCreated",
        "occurredAt": dt.datetime.now(dt.UTC).isoformat(),
        "organizationId": settings.options["organization_id"],
        "eventId": fresh.event_id,
        "data": {"id": "reg1", "type": "registration", "attributes": {"email": "a@example.com"}},
    }
    raw = json.dumps(body).encode()
    secret = settings.secret("webhook_secret")
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    request = HttpRequest("POST", "/", {"X-Hopin-Signature": signature}, raw)
    [entity] = plugin.parse_notification("hopin", request, settings).entities
    assert entity.id == "reg1" and entity.record is None
