"""``parse_notification`` on webhooks v3 deliveries, beyond the conformance kit's cases."""

from __future__ import annotations

import attrs
import pytest
from eventsync.errors import BadNotification
from eventsync.models import HttpRequest
from eventsync_hubspot.webhooks import REPLAY_HORIZON, signature, signed_request
from eventsync_hubspot.webhooks import event as webhook_event

URL = "https://sync.example.com/hooks/acme/hubspot"


def event(**more):
    defaults = {"eventId": 1, "propertyName": "firstname", "propertyValue": "Ada"}
    kind = more.pop("subscriptionType", "contact.propertyChange")
    return webhook_event(4711000, more.pop("objectId", 1001), kind, **{**defaults, **more})


@pytest.fixture
def settings(sandbox):
    good = sandbox.settings("acme")
    return attrs.evolve(good, options={**good.options, "webhook_url": URL})


def delivery(sandbox, events, url=URL, **headers):
    body, signed = signed_request(sandbox.client_secret, url, events)
    return HttpRequest("POST", "/hooks/acme/hubspot", {**signed, **headers}, body)


def test_a_batch_names_each_record_once_with_every_event_id(hooks, sandbox, settings):
    events = [
        event(eventId=1),
        event(eventId=2, propertyName="lastname"),
        event(eventId=3, objectId=1002, subscriptionType="contact.creation"),
        event(eventId=4, subscriptionType="object.creation", objectTypeId="2-1001", objectId=77),
        event(
            eventId=5,
            subscriptionType="contact.merge",
            primaryObjectId=1003,
            mergedObjectIds=[1004],
        ),
    ]
    notification = hooks.parse_notification(settings, delivery(sandbox, events))
    assert [(e.object, e.id) for e in notification.entities] == [
        ("contacts", "1001"),
        ("contacts", "1002"),
        ("2-1001", "77"),
        ("contacts", "1003"),
        ("contacts", "1004"),
    ]
    assert notification.dedupe_ids == ("1", "2", "3", "4", "5")
    assert notification.replay_horizon == REPLAY_HORIZON >= 24 * 3600
    assert notification.response.status == 200


def test_events_about_no_crm_object_are_acknowledged_and_ignored(hooks, sandbox, settings):
    events = [event(subscriptionType="conversation.creation")]
    notification = hooks.parse_notification(settings, delivery(sandbox, events))
    assert notification.entities == () and notification.ignored


def test_the_signature_covers_the_target_url(hooks, sandbox, settings):
    elsewhere = delivery(sandbox, [event()], url="https://attacker.example.com/hooks/acme/hubspot")
    with pytest.raises(BadNotification) as exc:
        hooks.parse_notification(settings, elsewhere)
    assert exc.value.status == 401 and "target URL" in str(exc.value)
    # Without webhook_url the URI is rebuilt from the Host header.
    rebuilt = attrs.evolve(
        settings, options={k: v for k, v in settings.options.items() if k != "webhook_url"}
    )
    local = delivery(
        sandbox, [event()], url="http://127.0.0.1:8080/hooks/acme/hubspot", Host="127.0.0.1:8080"
    )
    assert hooks.parse_notification(rebuilt, local).entities


@pytest.mark.parametrize(
    ("change", "status"),
    [
        (lambda r: attrs.evolve(r, method="GET"), 405),
        (lambda r: attrs.evolve(r, body=b"[{"), 401),  # the signature no longer matches
    ],
)
def test_bad_deliveries_get_their_status(hooks, sandbox, settings, change, status):
    with pytest.raises(BadNotification) as exc:
        hooks.parse_notification(settings, change(delivery(sandbox, [event()])))
    assert exc.value.status == status


def test_a_signed_body_that_is_not_an_array_of_events_is_a_400(hooks, sandbox, settings):
    body, signed = signed_request(sandbox.client_secret, URL, [])
    for payload in (b'{"events": []}', b"[1, 2]", b'[{"objectId": 1}]'):
        stamp = signed["X-HubSpot-Request-Timestamp"]
        headers = {
            **signed,
            "X-HubSpot-Signature-v3": signature(sandbox.client_secret, "POST", URL, payload, stamp),
        }
        with pytest.raises(BadNotification) as exc:
            hooks.parse_notification(
                settings, HttpRequest("POST", "/hooks/acme/hubspot", headers, payload)
            )
        assert exc.value.status == 400


def test_without_the_client_secret_nothing_is_trusted(hooks, sandbox, settings):
    unverifiable = attrs.evolve(settings, env={})
    with pytest.raises(BadNotification) as exc:
        hooks.parse_notification(unverifiable, delivery(sandbox, [event()]))
    assert exc.value.status == 401 and "client_secret_env" in str(exc.value)
