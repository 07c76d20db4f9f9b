"""Registrations synced from the delivery's own payload, unless the payload is older than what
was last synced: then the registration is read back from Hopin.

Every test runs twice: with SQLite and with PostgreSQL as the state store (``store_url``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import uuid

from eventsync.models import HttpRequest


def _registration_reads(env) -> int:
    calls = env.hopin_admin("GET", "/counters")["calls"]
    return sum(n for key, n in calls.items() if key.startswith("GET") and "registrations" in key)


def _company(env, email: str) -> str | None:
    leads = [x for x in env.leads() if x.get("Email") == email]
    return leads[0].get("Company") if len(leads) == 1 else None


def _resend(env, payload: dict) -> str:
    """``payload`` delivered again as a new delivery (new id, signed now) to the engine."""
    body = json.dumps(
        {**payload, "id": uuid.uuid4().hex, "occurredAt": dt.datetime.now(dt.UTC).isoformat()}
    ).encode()
    settings = env.engine.config.org(env.org).settings("hopin", env.engine.env)
    secret = settings.secret("webhook_secret")
    signature = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    request = HttpRequest("POST", "/", {"X-Hopin-Signature": signature}, body)
    return env.engine.receive(env.org, "hopin", request).result


def test_the_delivery_payload_is_synced_without_reading_it_back(make_env, wait):
    env = make_env(triggers=True, pollers=False)
    env.hopin_admin("DELETE", "/counters")
    env.register("carried@example.com", headline="First")
    wait("the Lead", lambda: _company(env, "carried@example.com") == "First")
    assert _registration_reads(env) == 0


def test_a_delivery_older_than_what_was_synced_is_read_back(make_env, wait):
    env = make_env(triggers=True, pollers=False)
    registration = env.register("stale@example.com", headline="First")
    wait("the first version", lambda: _company(env, "stale@example.com") == "First")
    [first] = [
        d["payload"]
        for d in env.hopin_admin("GET", "/deliveries")["deliveries"]
        if d["payload"]["data"]["id"] == registration
    ]
    env.hopin_admin("PATCH", f"/registrations/{registration}", {"headline": "Second"})
    wait("the second version", lambda: _company(env, "stale@example.com") == "Second")
    env.hopin_admin("DELETE", "/counters")
    assert _resend(env, first) == "accepted"
    env.engine.wait_idle(20)
    assert _company(env, "stale@example.com") == "Second"
    assert _registration_reads(env) >= 1, "the stale copy was not read back"
    assert env.engine.store.dead_letter_count() == 0


def test_every_delivery_is_parsed_with_settings_as_the_engine_has_them(make_env, monkeypatch):
    """The settings a delivery is parsed with are kept between deliveries, and made anew
    when the engine's locks change (the scale-out roles set them after start)."""
    import eventsync_hopin.plugin as hopin_plugin

    given = []
    parse = hopin_plugin.parse

    def spy(request, settings):
        given.append(settings)
        return parse(request, settings)

    monkeypatch.setattr(hopin_plugin, "parse", spy)
    env = make_env(triggers=False, pollers=False)
    payload = {
        "signal": "registration.created",
        "organizationId": "x",
        "eventId": "y",
        "data": {"id": "r1", "type": "registration", "attributes": {}},
    }
    _resend(env, payload)
    _resend(env, payload)
    assert given[0] is given[1]  # kept
    assert given[0].secrets_file == env.engine.config.engine.secrets_file
    assert given[0].locks is None
    locks = object()
    env.engine.shared_locks = locks  # type: ignore[assignment]
    _resend(env, payload)
    assert given[2].locks is locks and given[2].options == given[0].options
    assert given[2].secret("webhook_secret") == given[0].secret("webhook_secret")
