"""Hostile notifications through the real HTTP server: forged and oversized Outbound Messages,
org ids differing in case, replayed, unknown, foreign and deeply nested Hopin deliveries, wrong
methods and internal errors; each answered with a short text and counted on /metrics.

Every test runs twice: with SQLite and with PostgreSQL as the state store (``store_url``).
"""

from __future__ import annotations

import datetime as dt
import io
import json
import re
import uuid
from typing import Any

import pytest
import requests
from eventsync.engine import Engine
from eventsync.sandbox_env import free_port
from eventsync.server import Server, make_app
from eventsync.store import StateStore
from eventsync_hopin.sandbox.subscriptions import sign
from eventsync_salesforce.sandbox.wiring import OUTBOUND_RULE


def envelope(org_id: str, count: int) -> bytes:
    """An Outbound Message for ``count`` CampaignMembers, as Salesforce would word it."""
    notes = "".join(
        f"<Notification><Id>04l5g0000{i:09d}</Id>"
        '<sObject xsi:type="sf:CampaignMember" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"<sf:Id>00v5g0000{i:09d}</sf:Id></sObject></Notification>"
        for i in range(count)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{org_id}</OrganizationId>{notes}</notifications>"
        "</soapenv:Body></soapenv:Envelope>"
    ).encode()


def post_xml(url: str, body: bytes) -> requests.Response:
    return requests.post(url, data=body, headers={"Content-Type": "text/xml"}, timeout=30)


def metric(server_url: str, **labels: str) -> float:
    """The value of ``eventsync_notifications_total`` with exactly these labels (0 if absent)."""
    text = requests.get(f"{server_url}/metrics", timeout=10).text
    for line in text.splitlines():
        match = re.fullmatch(r"eventsync_notifications_total\{(.*)\} (\S+)", line)
        if match and dict(re.findall(r'(\w+)="([^"]*)"', match.group(1))) == labels:
            return float(match.group(2))
    return 0.0


def entities_metric(server_url: str, org: str, system: str) -> float:
    text = requests.get(f"{server_url}/metrics", timeout=10).text
    wanted = f'eventsync_notification_entities_total{{org="{org}",system="{system}"}} '
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(wanted))


def delivery(env: Any, **changes: Any) -> dict[str, Any]:
    """A current registrationCreated delivery for the environment's event."""
    return {
        "id": uuid.uuid4().hex[:25],
        "signal": "registrationCreated",
        "occurredAt": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        "subscriptionId": "sub",
        "organizationId": env.hopin["organization_id"],
        "eventId": env.hopin["event_id"],
        "data": {"id": "RegistrationFromTheTest01", "type": "registration", "attributes": {}},
        **changes,
    }


def post_signed(env: Any, body: bytes | dict[str, Any]) -> requests.Response:
    """POST a delivery signed with the sandbox's secret, as Hopin (or a replay of it) would."""
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {
        "Content-Type": "application/json",
        env.hopin["signature_header"]: sign(env.hopin["webhook_secret"], raw),
    }
    return requests.post(f"{env.server.url}/hooks/e2e/hopin", data=raw, headers=headers, timeout=30)


def is_short_text(response: requests.Response) -> bool:
    return (
        response.headers["Content-Type"].startswith("text/plain")
        and len(response.content) < 300
        and b"<" not in response.content
    )


# --- Salesforce Outbound Messages ----------------------------------------------------------


def test_a_forged_message_without_the_token_is_refused_and_costs_no_api_call(make_env, wait):
    env = make_env(triggers=True)
    token = env.pair.secrets()["SF_OUTBOUND_TOKEN"]
    base = f"{env.server.url}/hooks/e2e/salesforce"
    calls = env.sf_admin("GET", "/counters")["total"]

    forged = post_xml(base, envelope(env.sf["org_id"], 5000))
    assert forged.status_code == 403 and is_short_text(forged)
    assert b"needs the organisation's token" in forged.content
    wrong = post_xml(f"{base}/{'x' * len(token)}", envelope(env.sf["org_id"], 1))
    assert wrong.status_code == 403 and token.encode() not in wrong.content
    # With the token, 5,000 notifications are still more than Salesforce ever sends.
    oversized = post_xml(f"{base}/{token}", envelope(env.sf["org_id"], 5000))
    assert oversized.status_code == 413 and b"more than 100" in oversized.content

    env.engine.wait_idle(timeout=10)
    assert env.engine.store.pending() == []
    assert env.sf_admin("GET", "/counters")["total"] == calls
    url = env.server.url
    assert metric(url, org="e2e", system="salesforce", result="rejected", status="403") == 2
    assert metric(url, org="e2e", system="salesforce", result="rejected", status="413") == 1


def test_the_sandbox_rule_posts_with_the_token_and_the_work_is_counted(make_env, wait):
    env = make_env(triggers=True)
    token = env.pair.secrets()["SF_OUTBOUND_TOKEN"]
    [rule] = [r for r in env.sf_admin("GET", "/outbound")["rules"] if r["name"] == OUTBOUND_RULE]
    assert rule["endpoint_url"] == f"{env.server.url}/hooks/e2e/salesforce/{token}"
    members = env.members(env.campaign(), ["ada@example.com", "grace@example.com"])
    wait("both invitations", lambda: len(env.magic_links()) == 2)
    url = env.server.url
    assert metric(url, org="e2e", system="salesforce", result="accepted", status="200") >= 1
    assert entities_metric(url, "e2e", "salesforce") >= len(members)


def test_an_org_id_differing_only_in_letter_case_is_refused(make_env):
    env = make_env(triggers=True, start=False)
    token = env.pair.secrets()["SF_OUTBOUND_TOKEN"]
    url = f"{env.server.url}/hooks/e2e/salesforce/{token}"
    org_id = env.sf["org_id"]
    for impostor in (org_id.lower(), org_id[:15].swapcase() + org_id[15:], org_id[:15].upper()):
        answer = post_xml(url, envelope(impostor, 1))
        assert answer.status_code == 403 and b"does not belong" in answer.content
    assert env.engine.store.pending() == []
    genuine = post_xml(url, envelope(org_id, 1))
    assert genuine.status_code == 200 and b"<Ack>true</Ack>" in genuine.content
    assert post_xml(url, envelope(org_id[:15], 1)).status_code == 200
    assert len(env.engine.store.pending(flow="import_registrations")) == 1


# --- Hopin deliveries ----------------------------------------------------------------------


def test_a_replayed_old_delivery_is_refused(make_env):
    env = make_env(triggers=False, start=False)
    old = delivery(env, occurredAt="2024-01-01T00:00:00Z")
    answer = post_signed(env, old)
    assert answer.status_code == 400 and b"stale delivery" in answer.content
    assert is_short_text(answer)
    assert env.engine.store.pending() == []
    assert metric(env.server.url, org="e2e", system="hopin", result="rejected", status="400") == 1


def test_a_replay_within_the_window_stores_nothing_even_after_a_restart(make_env, wait, store_url):
    env = make_env(triggers=True, start=False)
    reg = env.register("replay@example.com")
    [sent] = wait(
        "the genuine delivery, acknowledged",
        lambda: [
            d
            for d in env.hopin_admin("GET", "/deliveries")["deliveries"]
            if d["payload"]["data"]["id"] == reg and d["delivered"]
        ],
    )
    rows = env.engine.store.pending()
    assert rows and all(r.generation == 1 for r in rows)
    captured = json.dumps(sent["payload"]).encode()  # the same bytes Hopin signed

    again = post_signed(env, captured)
    assert (again.status_code, again.content) == (200, b'{"received":true}')
    assert [r.generation for r in env.engine.store.pending()] == [r.generation for r in rows]
    assert metric(env.server.url, org="e2e", system="hopin", result="duplicate", status="200") == 1

    # A new process on the same store remembers the delivery id.
    env.server.stop()
    env.engine.stop()
    store = StateStore.open(store_url["url"], path=store_url["path"], schema=store_url["schema"])
    engine = Engine(env.engine.config, hooks=env.hooks, env=env.pair.secrets(), store=store)
    server = Server(engine, port=free_port()).start()
    env.server = server
    try:
        replay = post_signed(env, captured)
        assert (replay.status_code, replay.content) == (200, b'{"received":true}')
        assert [r.generation for r in store.pending()] == [r.generation for r in rows]
        assert metric(server.url, org="e2e", system="hopin", result="duplicate", status="200") == 1
        fresh = post_signed(env, delivery(env))
        assert fresh.status_code == 200
        assert metric(server.url, org="e2e", system="hopin", result="accepted", status="200") == 1
    finally:
        server.stop()
        engine.stop()
        store.close()


def test_unknown_foreign_and_unattributed_deliveries_are_acknowledged_not_stored(make_env):
    env = make_env(triggers=False, start=False)
    bodies = [
        delivery(env, signal="eventDeleted"),
        delivery(env, organizationId="SomeoneElsesOrganisation"),
        delivery(env, eventId="SomeoneElsesEvent00000001"),
        {k: v for k, v in delivery(env).items() if k != "organizationId"},
        {k: v for k, v in delivery(env).items() if k != "eventId"},
    ]
    for body in bodies:
        answer = post_signed(env, body)
        assert (answer.status_code, answer.content) == (200, b'{"received":true}')
    assert env.engine.store.pending() == []
    url = env.server.url
    assert metric(url, org="e2e", system="hopin", result="ignored", status="200") == len(bodies)
    assert entities_metric(url, "e2e", "hopin") == 0


def test_a_delivery_no_flow_takes_is_accepted_without_a_transaction(make_env):
    # A signal no enabled flow takes (Hopin sends magicLinkCreated by default): accepted, and
    # nothing stored, not even its id, so its re-send is accepted alike and stores nothing.
    env = make_env(triggers=False, start=False)
    store = env.engine.store
    body = delivery(env, signal="magicLinkCreated")
    body["data"] = {"id": "MagicLinkFromTheTest0001", "type": "magic_link", "attributes": {}}
    before = store.intake.groups
    for _ in range(2):
        answer = post_signed(env, body)
        assert (answer.status_code, answer.content) == (200, b'{"received":true}')
    assert store.intake.groups == before  # no intake transaction ran
    assert store.pending() == []
    url = env.server.url
    assert metric(url, org="e2e", system="hopin", result="accepted", status="200") == 2
    assert entities_metric(url, "e2e", "hopin") == 0


def test_deep_and_large_bodies_get_short_text_answers(make_env):
    env = make_env(triggers=False, start=False)
    deep = post_signed(env, b"[" * 200_000 + b"]" * 200_000)
    assert deep.status_code == 400 and is_short_text(deep) and b"deeper than" in deep.content
    large = post_signed(env, delivery(env, padding="x" * (2 * 1024 * 1024)))
    assert large.status_code == 413 and is_short_text(large)
    huge = post_signed(env, b"x" * (6 * 1024 * 1024))  # over the server's own limit
    assert huge.status_code == 413 and is_short_text(huge)
    assert env.engine.store.pending() == []
    url = env.server.url
    assert metric(url, org="e2e", system="hopin", result="rejected", status="413") == 2


def test_any_exception_in_a_notification_route_is_a_short_500(make_env, monkeypatch):
    env = make_env(triggers=False, start=False)

    def explode(*args: Any, **kwargs: Any) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(env.engine, "receive", explode)
    answer = post_signed(env, delivery(env))
    assert answer.status_code == 500 and is_short_text(answer)
    assert b"Traceback" not in answer.content and b"Recursion" not in answer.content
    assert metric(env.server.url, org="e2e", system="hopin", result="error", status="500") == 1


def test_a_delivery_without_a_length_is_taken_in_like_one_with_it(make_env):
    # With a Content-Length a notification is answered in front of Flask (waitress gives a
    # chunked body its length); without one (another WSGI server, a chunked body) it goes on to
    # Flask's route: the same answer, stored and counted alike.
    env = make_env(triggers=False, start=False)
    sized, unsized, chunked = delivery(env), delivery(env), delivery(env)
    unsized["data"] = dict(unsized["data"], id="RegistrationWithoutLength")
    chunked["data"] = dict(chunked["data"], id="RegistrationSentChunked01")
    first = post_signed(env, sized)
    assert (first.status_code, first.content) == (200, b'{"received":true}')

    def signed(body: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        raw = json.dumps(body).encode()
        signature = sign(env.hopin["webhook_secret"], raw)
        return raw, {"Content-Type": "application/json", env.hopin["signature_header"]: signature}

    raw, headers = signed(chunked)
    url = f"{env.server.url}/hooks/e2e/hopin"
    answer = requests.post(url, data=iter([raw[:40], raw[40:]]), headers=headers, timeout=30)
    assert answer.request.headers.get("Transfer-Encoding") == "chunked"
    assert (answer.status_code, answer.content) == (200, b'{"received":true}')

    raw, headers = signed(unsized)
    # No CONTENT_LENGTH, a stream its server ended (as for a chunked body): Flask reads it all.
    environ = {"wsgi.input": io.BytesIO(raw), "wsgi.input_terminated": True}
    client = make_app(env.engine).test_client()
    flask_answer = client.post("/hooks/e2e/hopin", headers=headers, environ_overrides=environ)
    assert (flask_answer.status_code, flask_answer.data) == (200, b'{"received":true}')
    assert flask_answer.content_type == first.headers["Content-Type"]

    pending = {r.entity for r in env.engine.store.pending(flow="export_registrations")}
    expected = {
        "RegistrationFromTheTest01",
        "RegistrationWithoutLength",
        "RegistrationSentChunked01",
    }
    assert expected <= pending
    assert metric(env.server.url, org="e2e", system="hopin", result="accepted", status="200") == 3


@pytest.mark.parametrize(
    ("path", "methods", "allowed"),
    [
        ("/hooks/e2e/hopin", ("GET", "PUT", "DELETE", "PATCH"), {"POST"}),
        ("/hooks/e2e/salesforce/some-token", ("GET", "PUT"), {"POST"}),
        ("/healthz", ("POST", "PUT", "DELETE"), {"GET", "HEAD"}),
        ("/metrics", ("POST", "PATCH"), {"GET", "HEAD"}),
    ],
)
def test_wrong_methods_are_405_with_allow(make_env, path, methods, allowed):
    env = make_env(triggers=False, start=False)
    for method in methods:
        answer = requests.request(method, f"{env.server.url}{path}", timeout=10)
        assert answer.status_code == 405, (method, path)
        assert allowed <= {m.strip() for m in answer.headers["Allow"].split(",")}
        assert is_short_text(answer)
    if path.startswith("/hooks/"):
        system = path.split("/")[3]
        counted = metric(env.server.url, org="e2e", system=system, result="rejected", status="405")
        assert counted == len(methods)


def test_unknown_names_are_404s_that_create_no_series(make_env):
    env = make_env(triggers=False, start=False)
    url = env.server.url

    def series() -> set[str]:
        text = requests.get(f"{url}/metrics", timeout=10).text
        return {line.rpartition(" ")[0] for line in text.splitlines() if not line.startswith("#")}

    def unrouted() -> float:
        text = requests.get(f"{url}/metrics", timeout=10).text
        [line] = [
            x for x in text.splitlines() if x.startswith("eventsync_notifications_unrouted_total ")
        ]
        return float(line.split()[-1])

    before = series()
    for path in ("scan1/hopin", "scan2/hopin", "scan3/salesforce/x", "e2e/nosuchsystem"):
        answer = requests.post(f"{url}/hooks/{path}", data=b"{}", timeout=10)
        assert answer.status_code == 404 and is_short_text(answer)
    assert series() == before  # no label was made from a name in a URL
    assert unrouted() == 4
    assert not any("scan1" in line or "nosuchsystem" in line for line in series())
