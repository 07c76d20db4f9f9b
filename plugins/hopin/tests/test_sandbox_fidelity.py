"""The sandbox answers with the wire facts of the reference (Hopin's API reference)."""

from __future__ import annotations

import re
import time
from typing import Any

import requests
from eventsync.waiting import wait_until
from eventsync_hopin.sandbox import start

ID = re.compile(r"^[A-Za-z0-9]{25}$")
CAMEL = re.compile(r"^[a-z][a-zA-Z0-9]*$")


def _auth(sandbox: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {sandbox.info()['api_key']}"}


def _camel_keys(attributes: dict[str, Any]) -> None:
    for key in attributes:
        assert CAMEL.match(key), f"attribute {key!r} is not camelCase"


def test_health_and_bearer_auth(sandbox):
    assert requests.get(f"{sandbox.url}/v1/health", timeout=5).status_code == 200
    missing = requests.get(f"{sandbox.url}/v1/organizations", timeout=5)
    assert missing.status_code == 401
    assert missing.json()["errors"][0]["status"] == "401"
    wrong = requests.get(
        f"{sandbox.url}/v1/organizations", headers={"Authorization": "Bearer nope"}, timeout=5
    )
    assert wrong.status_code == 401
    good = requests.get(f"{sandbox.url}/v1/organizations", headers=_auth(sandbox), timeout=5)
    assert good.status_code == 200
    [org] = good.json()["data"]
    assert org["type"] == "organization" and ID.match(org["id"])
    assert org["id"] == sandbox.info()["organization_id"]


def test_magic_link_create_body_and_response(sandbox, fresh):
    """The official create body; the URL at data.attributes.magicLink (fits 100 chars)."""
    body = {
        "data": {
            "type": "magicLink",
            "attributes": {
                "email": "grace@example.com",
                "firstName": "Grace",
                "lastName": "Hopper",
                "headline": "Admiral",
                "extraFields": {"Age": "30"},
                "metadata": {"source": "crm"},
                "registrationId": "SFDC-1234",
            },
        }
    }
    response = requests.post(
        f"{sandbox.url}/v1/tickets/{fresh.ticket_id}/magicLinks",
        json=body,
        headers=_auth(sandbox),
        timeout=5,
    )
    assert response.status_code == 201
    data = response.json()["data"]
    assert data["type"] == "magicLink" and ID.match(data["id"])
    attrs = data["attributes"]
    assert attrs["email"] == "grace@example.com"
    assert attrs["magicLink"].startswith("http") and len(attrs["magicLink"]) <= 100
    assert attrs["registrationId"] == "SFDC-1234"
    assert attrs["extraFields"] == {"Age": "30"}
    assert attrs["status"] != "invited", "links sent from the CRM are not marked invited"
    _camel_keys(attrs)


def test_magic_link_validation_and_get_delete(sandbox, fresh):
    url = f"{sandbox.url}/v1/tickets/{fresh.ticket_id}/magicLinks"
    bad = requests.post(
        url,
        json={"data": {"type": "magicLink", "attributes": {"email": "nope"}}},
        headers=_auth(sandbox),
        timeout=5,
    )
    assert bad.status_code == 422 and "email" in bad.json()["errors"][0]["detail"]
    wrong_type = requests.post(
        url,
        json={"data": {"type": "registration", "attributes": {}}},
        headers=_auth(sandbox),
        timeout=5,
    )
    assert wrong_type.status_code == 400
    maps = requests.post(
        url,
        json={
            "data": {
                "type": "magicLink",
                "attributes": {
                    "email": "a@example.com",
                    "firstName": "A",
                    "lastName": "B",
                    "extraFields": {"n": 1},
                },
            }
        },
        headers=_auth(sandbox),
        timeout=5,
    )
    assert maps.status_code == 422, "extraFields is a map of strings"
    made = requests.post(
        url,
        json={
            "data": {
                "type": "magicLink",
                "attributes": {"email": "a@example.com", "firstName": "A", "lastName": "B"},
            }
        },
        headers=_auth(sandbox),
        timeout=5,
    ).json()
    link = f"{sandbox.url}/v1/magicLinks/{made['data']['id']}"
    assert (
        requests.get(link, headers=_auth(sandbox), timeout=5).json()["data"]["id"]
        == made["data"]["id"]
    )
    assert requests.delete(link, headers=_auth(sandbox), timeout=5).status_code == 204
    assert requests.get(link, headers=_auth(sandbox), timeout=5).status_code == 404


def test_list_pages_follow_absolute_next_ending_in_null(sandbox, fresh, admin):
    for n in range(7):
        admin.registration(fresh.event_id, fresh.ticket_id, f"p{n}@example.com")
    url: str | None = f"{sandbox.url}/v1/events/{fresh.event_id}/registrations?perPage=3"
    seen, pages = [], 0
    while url:
        body = requests.get(url, headers=_auth(sandbox), timeout=5).json()
        pages += 1
        seen += [item["attributes"]["email"] for item in body["data"]]
        assert "next" in body["links"]
        url = body["links"]["next"]
        if url is not None:
            assert url.startswith(f"{sandbox.url}/v1/"), "links.next is an absolute URL"
    assert pages == 3 and len(seen) == 7 == len(set(seen))
    assert body["links"]["next"] is None
    assert body["meta"]["count"] == 7


def test_registration_shape_and_ids(sandbox, fresh, admin):
    made = admin.registration(
        fresh.event_id,
        fresh.ticket_id,
        "shape@example.com",
        headline="CTO",
        answers=[{"questionId": "q1", "answer": "yes"}],
    )
    body = requests.get(
        f"{sandbox.url}/v1/registrations/{made['id']}", headers=_auth(sandbox), timeout=5
    ).json()
    data = body["data"]
    assert set(data) == {"id", "type", "attributes"} and data["type"] == "registration"
    assert ID.match(data["id"])
    attrs = data["attributes"]
    _camel_keys(attrs)
    assert attrs["refunded"] is False and attrs["ticketId"] == fresh.ticket_id
    assert attrs["answers"] == [{"questionId": "q1", "answer": "yes"}]
    assert attrs["createdAt"].endswith("Z")


def test_filters_in_every_encoding(sandbox, fresh, admin):
    for email in ("f1@example.com", "f2@example.com", "f3@example.com"):
        admin.registration(fresh.event_id, fresh.ticket_id, email)
    base = f"{sandbox.url}/v1/events/{fresh.event_id}/registrations"

    def emails(params=None, json=None):
        r = requests.get(base, params=params, json=json, headers=_auth(sandbox), timeout=5)
        assert r.status_code == 200, r.text
        return sorted(i["attributes"]["email"] for i in r.json()["data"])

    assert emails({"filter[email][eq]": "f2@example.com"}) == ["f2@example.com"]
    assert emails({"email[eq]": "F2@example.com"}) == ["f2@example.com"]
    assert emails(json={"email": {"in": ["f1@example.com", "f3@example.com"]}}) == [
        "f1@example.com",
        "f3@example.com",
    ]
    assert emails({"filter[refunded][eq]": "true"}) == []
    bad = requests.get(base, params={"filter[nope][eq]": "x"}, headers=_auth(sandbox), timeout=5)
    assert bad.status_code == 400


def test_registration_patch_accepts_2022_type_and_metadata(sandbox, fresh, admin):
    made = admin.registration(fresh.event_id, fresh.ticket_id, "patch@example.com")
    url = f"{sandbox.url}/v1/registrations/{made['id']}"
    r = requests.patch(
        url,
        json={"data": {"type": "Registration", "attributes": {"metadata": {"crmId": "003"}}}},
        headers=_auth(sandbox),
        timeout=5,
    )
    assert r.status_code == 200 and r.json()["data"]["attributes"]["metadata"] == {"crmId": "003"}
    refused = requests.patch(
        url,
        json={"data": {"type": "registration", "attributes": {"email": "x@y.z"}}},
        headers=_auth(sandbox),
        timeout=5,
    )
    assert refused.status_code == 422


def test_ticket_integration_code_is_after_equals_in_registration_url(sandbox):
    info = sandbox.info()
    r = requests.get(
        f"{sandbox.url}/v1/tickets/{info['ticket_id']}", headers=_auth(sandbox), timeout=5
    ).json()
    url = r["data"]["attributes"]["registrationUrl"]
    assert url.rsplit("=", 1)[1] == info["ticket_integration_code"]
    assert (
        ID.match(info["ticket_integration_code"])
        and info["ticket_integration_code"] != info["ticket_id"]
    )


def test_magic_link_status_invited_registered_and_accept_registers(sandbox, fresh, admin):
    url = f"{sandbox.url}/v1/tickets/{fresh.ticket_id}/magicLinks"
    attrs = {"email": "inv@example.com", "firstName": "In", "lastName": "Vited"}
    one = requests.post(
        url,
        json={"data": {"type": "magicLink", "attributes": attrs}},
        headers=_auth(sandbox),
        timeout=5,
    ).json()["data"]
    assert one["attributes"]["status"] == "pending"
    invited = admin.call("POST", f"/magicLinks/{one['id']}/invite")["data"]
    assert invited["attributes"]["status"] == "invited"
    # The invitee clicks the link itself: registered, and a registration on the ticket exists.
    assert requests.get(one["attributes"]["magicLink"], timeout=5).status_code == 200
    again = requests.get(
        f"{sandbox.url}/v1/magicLinks/{one['id']}", headers=_auth(sandbox), timeout=5
    ).json()
    assert again["data"]["attributes"]["status"] == "registered"
    regs = requests.get(
        f"{sandbox.url}/v1/events/{fresh.event_id}/registrations",
        params={"filter[email][eq]": "inv@example.com"},
        headers=_auth(sandbox),
        timeout=5,
    ).json()
    assert [r["attributes"]["ticketId"] for r in regs["data"]] == [fresh.ticket_id]
    # Accepting again changes nothing.
    admin.call("POST", f"/magicLinks/{one['id']}/accept")
    regs = requests.get(
        f"{sandbox.url}/v1/events/{fresh.event_id}/registrations",
        params={"filter[email][eq]": "inv@example.com"},
        headers=_auth(sandbox),
        timeout=5,
    ).json()
    assert len(regs["data"]) == 1


def test_unpublished_event_refuses_magic_links(sandbox, admin):
    org = sandbox.info()["organization_id"]
    event = admin.call(
        "POST", f"/organizations/{org}/events", {"name": "Draft", "published": False}
    )["data"]
    ticket = admin.call("POST", f"/events/{event['id']}/tickets", {})["data"]
    r = requests.post(
        f"{sandbox.url}/v1/tickets/{ticket['id']}/magicLinks",
        headers=_auth(sandbox),
        timeout=5,
        json={
            "data": {
                "type": "magicLink",
                "attributes": {"email": "a@b.co", "firstName": "a", "lastName": "b"},
            }
        },
    )
    assert r.status_code == 422 and "published" in r.text


def test_report_routes(sandbox, fresh, admin):
    reg = admin.registration(fresh.event_id, fresh.ticket_id, "rep@example.com")
    admin.call(
        "POST",
        "/attendance",
        {
            "registrationId": reg["id"],
            "joinedAt": "2026-05-01T09:00:00Z",
            "leftAt": "2026-05-01T09:30:00Z",
            "session": "Stage",
        },
    )
    created = requests.post(
        f"{sandbox.url}/v1/events/{fresh.event_id}/reports/attendance",
        headers=_auth(sandbox),
        timeout=5,
    )
    assert created.status_code == 201
    report_id = created.json()["data"]["id"]
    early = requests.get(
        f"{sandbox.url}/v1/reports/{report_id}/download", headers=_auth(sandbox), timeout=5
    )
    assert early.status_code == 409

    def completed():
        found = requests.get(
            f"{sandbox.url}/v1/reports/{report_id}", headers=_auth(sandbox), timeout=5
        ).json()
        return found if found["data"]["attributes"]["status"] == "completed" else None

    status = wait_until("the report to complete", completed)
    csv_text = requests.get(
        status["data"]["attributes"]["downloadUrl"], headers=_auth(sandbox), timeout=5
    ).text
    header, row = csv_text.strip().splitlines()
    assert header.startswith("Registration ID,Email") and "1800" in row and "Stage" in row
    unknown = requests.post(
        f"{sandbox.url}/v1/events/{fresh.event_id}/reports/nope", headers=_auth(sandbox), timeout=5
    )
    assert unknown.status_code == 422


def test_data_subscription_body(sandbox, fresh):
    url = f"{sandbox.url}/v1/events/{fresh.event_id}/dataSubscriptions"
    body = {
        "data": {
            "type": "dataSubscription",
            "attributes": {
                "configuration": {
                    "url": "http://127.0.0.1:9/x",
                    "type": "webhook",
                    "expiresAt": "2999-01-01T00:00:00Z",
                },
                "signals": ["registrationCreated"],
            },
        }
    }
    made = requests.post(url, json=body, headers=_auth(sandbox), timeout=5)
    assert made.status_code == 201 and made.json()["data"]["type"] == "dataSubscription"
    past = {
        "data": {
            "type": "dataSubscription",
            "attributes": {
                "configuration": {
                    "url": "http://127.0.0.1:9/x",
                    "expiresAt": "2000-01-01T00:00:00Z",
                },
                "signals": ["x"],
            },
        }
    }
    assert requests.post(url, json=past, headers=_auth(sandbox), timeout=5).status_code == 422


def test_faults_and_counters(sandbox, admin):
    admin.call("DELETE", "/counters")
    admin.fault(path="/v1/health", status=429, retry_after=3, count=1)
    first = requests.get(f"{sandbox.url}/v1/health", timeout=5)
    assert first.status_code == 429 and first.headers["Retry-After"] == "3"
    assert requests.get(f"{sandbox.url}/v1/health", timeout=5).status_code == 200
    admin.fault(path="/v1/health", latency=0.2, count=1)
    started = time.monotonic()
    requests.get(f"{sandbox.url}/v1/health", timeout=5)
    assert time.monotonic() - started >= 0.2
    assert admin.counters()["GET /v1/health"] == 3
    bad = requests.post(f"{admin.url}/faults", json={"status": 200}, timeout=5)
    assert bad.status_code == 400
    admin.fault(path="/v1/health", status=503, probability=0.0)
    assert all(
        requests.get(f"{sandbox.url}/v1/health", timeout=5).status_code == 200 for _ in range(5)
    )
    admin.call("DELETE", "/faults")
    admin.fault(path="/v1/health", method="POST", status=503)
    assert requests.get(f"{sandbox.url}/v1/health", timeout=5).status_code == 200, (
        "method must match"
    )


def test_state_file_survives_restart(tmp_path):
    path = str(tmp_path / "hopin.json")
    first = start({"state_file": path, "api_key": "k1"})
    try:
        ids = first.ids()
    finally:
        first.stop()
    second = start({"state_file": path, "api_key": "k1"})
    try:
        assert second.ids()["event_id"] == ids["event_id"]
        r = requests.get(
            f"{second.url}/v1/events/{ids['event_id']}",
            headers={"Authorization": "Bearer k1"},
            timeout=5,
        )
        assert r.status_code == 200
    finally:
        second.stop()


def test_sandbox_info_and_settings(sandbox):
    info = sandbox.info()
    for key in (
        "url",
        "api_key",
        "admin_url",
        "organization_id",
        "event_id",
        "ticket_id",
        "ticket_integration_code",
        "webhook_secret",
    ):
        assert info[key], key
    settings = sandbox.settings("acme")
    assert settings.secret("api_key") == info["api_key"]
    assert settings.options["base_url"] == sandbox.url
