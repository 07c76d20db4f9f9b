"""The sandbox speaks HubSpot's documented wire formats: checked over HTTP with plain
``requests``, not through the plugin, against what HubSpot's developer documentation says.

Sources: "Handling errors" (error bodies: ``status``, ``message``, ``correlationId``,
``category``; 207 multi-status), "API usage details" (``X-HubSpot-RateLimit-*`` headers, the
429 body with ``policyName``), the CRM objects batch endpoints (``inputs``, ``idProperty``,
``objectWriteTraceId``, ``new``), the search API (``filterGroups`` ORed, filters ANDed, one
sort, ``after`` paging, at most 200 per page and 10,000 per query), the properties API
(``type``, ``fieldType``, ``options``, ``hasUniqueValue``, ``modificationMetadata``), OAuth
(``POST /oauth/v1/token``, form-encoded; ``BAD_REFRESH_TOKEN``) and "Validating requests"
(``X-HubSpot-Signature-v3``: base64 HMAC-SHA256 of method + URI + body + timestamp).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from eventsync.waiting import wait_until

CONTACTS = "/crm/v3/objects/contacts"


class Api:
    """Raw calls with the private app's token."""

    def __init__(self, sandbox: Any, token: str | None = None) -> None:
        self.base = sandbox.url
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token or sandbox.access_token}"

    def __call__(self, method: str, path: str, body: Any = None) -> requests.Response:
        return self.http.request(method, self.base + path, json=body, timeout=10)


def error_shape(response: requests.Response) -> dict[str, Any]:
    body = response.json()
    assert body["status"] == "error"
    assert body["message"] and body["correlationId"] and body["category"], body
    return body


@pytest.fixture
def api(sandbox) -> Api:
    return Api(sandbox)


def contacts(api: Api, *emails: str) -> list[dict[str, Any]]:
    inputs = [{"properties": {"email": e, "firstname": "F"}} for e in emails]
    answer = api("POST", f"{CONTACTS}/batch/create", {"inputs": inputs})
    assert answer.status_code == 201, answer.text
    return answer.json()["results"]


def test_errors_have_status_message_correlation_id_and_category(sandbox, api):
    missing = requests.get(f"{sandbox.url}/crm/v3/properties/contacts", timeout=10)
    assert missing.status_code == 401
    assert error_shape(missing)["category"] == "INVALID_AUTHENTICATION"
    wrong = Api(sandbox, "pat-na1-wrong")("GET", "/crm/v3/properties/contacts")
    assert wrong.status_code == 401 and error_shape(wrong)
    bad = api("POST", f"{CONTACTS}/batch/create", {"inputs": [{"properties": {"email": "x"}}]})
    assert bad.status_code == 400
    assert error_shape(bad)["category"] == "VALIDATION_ERROR"
    assert "Property values were not valid" in bad.json()["message"]
    unknown = api("GET", "/crm/v3/properties/nothing")
    assert unknown.status_code == 400 and error_shape(unknown)


def test_every_answer_carries_the_rate_limit_headers_and_a_429_names_its_policy(start):
    sandbox = start(rate_limit=3, rate_interval_ms=60_000, daily_limit=100)
    api = Api(sandbox)
    seen = [api("GET", "/account-info/v3/details") for _ in range(3)]
    for number, response in enumerate(seen, start=1):
        assert response.status_code == 200
        headers = response.headers
        assert headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "60000"
        assert headers["X-HubSpot-RateLimit-Max"] == "3"
        assert headers["X-HubSpot-RateLimit-Remaining"] == str(3 - number)
        assert headers["X-HubSpot-RateLimit-Daily"] == "100"
        assert headers["X-HubSpot-RateLimit-Daily-Remaining"] == str(100 - number)
    refused = api("GET", "/account-info/v3/details")
    assert refused.status_code == 429
    body = refused.json()
    assert body["errorType"] == "RATE_LIMIT" and body["policyName"] == "TEN_SECONDLY_ROLLING"
    assert int(refused.headers["Retry-After"]) >= 1


def test_the_daily_limit_is_a_429_with_the_daily_policy(start):
    api = Api(start(daily_limit=1))
    assert api("GET", "/account-info/v3/details").status_code == 200
    refused = api("GET", "/account-info/v3/details")
    assert refused.status_code == 429 and refused.json()["policyName"] == "DAILY"


def test_the_properties_api_describes_names_types_options_and_read_only_flags(api):
    answer = api("GET", "/crm/v3/properties/contacts")
    assert answer.status_code == 200
    props = {p["name"]: p for p in answer.json()["results"]}
    for prop in props.values():
        assert {"name", "label", "type", "fieldType", "options", "hasUniqueValue"} <= set(prop)
        assert "readOnlyValue" in prop["modificationMetadata"]
    assert props["email"]["type"] == "string" and props["email"]["fieldType"] == "text"
    assert props["hs_object_id"]["modificationMetadata"]["readOnlyValue"] is True
    status = props["hopin_link_status"]
    assert status["type"] == "enumeration"
    assert [o["value"] for o in status["options"]] == ["Invited", "Registered"]
    assert all({"label", "value", "displayOrder", "hidden"} <= set(o) for o in status["options"])


def test_batch_create_answers_records_with_string_values_and_timestamps(api):
    [row] = contacts(api, "Ada@Example.com")
    assert set(row) >= {"id", "properties", "createdAt", "updatedAt", "archived"}
    assert row["properties"]["email"] == "ada@example.com"  # HubSpot lower-cases emails
    assert row["createdAt"].endswith("Z") and row["archived"] is False


def test_one_invalid_input_fails_the_whole_batch_and_nothing_is_created(api):
    inputs = [
        {"properties": {"email": "good@example.com"}},
        {"properties": {"email": "also-good@example.com", "nosuchproperty": "x"}},
    ]
    answer = api("POST", f"{CONTACTS}/batch/create", {"inputs": inputs})
    assert answer.status_code == 400
    assert "PROPERTY_DOESNT_EXIST" in error_shape(answer)["message"]
    search = api("POST", f"{CONTACTS}/search", {"filterGroups": []}).json()
    assert search["total"] == 0


def test_an_existing_email_is_a_409_conflict_naming_the_existing_id(api):
    [row] = contacts(api, "grace@example.com")
    again = api(
        "POST",
        f"{CONTACTS}/batch/create",
        {"inputs": [{"properties": {"email": "GRACE@example.com"}}]},
    )
    assert again.status_code == 409
    body = error_shape(again)
    assert body["category"] == "CONFLICT"
    assert body["message"] == f"Contact already exists. Existing ID: {row['id']}"


def test_batches_hold_at_most_100_inputs(api):
    inputs = [{"properties": {"email": f"n{i}@example.com"}} for i in range(101)]
    answer = api("POST", f"{CONTACTS}/batch/create", {"inputs": inputs})
    assert answer.status_code == 400 and error_shape(answer)["category"] == "VALIDATION_ERROR"


def test_upsert_with_id_property_creates_then_updates_and_says_which(api):
    item = {
        "idProperty": "email",
        "id": "lin@example.com",
        "properties": {"firstname": "Lin"},
        "objectWriteTraceId": "t1",
    }
    first = api("POST", f"{CONTACTS}/batch/upsert", {"inputs": [item]})
    assert first.status_code == 200, first.text
    [created] = first.json()["results"]
    assert created["new"] is True and created["objectWriteTraceId"] == "t1"
    item = {**item, "id": "LIN@example.com", "properties": {"firstname": "Lynn"}}
    [updated] = api("POST", f"{CONTACTS}/batch/upsert", {"inputs": [item]}).json()["results"]
    assert updated["new"] is False and updated["id"] == created["id"]
    duplicate = api("POST", f"{CONTACTS}/batch/upsert", {"inputs": [item, item]})
    assert duplicate.status_code == 400 and "Duplicate IDs" in duplicate.json()["message"]


def test_batch_read_of_missing_ids_is_a_207_with_object_not_found(api):
    [row] = contacts(api, "kay@example.com")
    body = {"inputs": [{"id": row["id"]}, {"id": "999999"}], "properties": ["email"]}
    answer = api("POST", f"{CONTACTS}/batch/read", body)
    assert answer.status_code == 207
    payload = answer.json()
    assert [r["id"] for r in payload["results"]] == [row["id"]]
    [error] = payload["errors"]
    assert error["category"] == "OBJECT_NOT_FOUND" and error["context"]["ids"] == ["999999"]


def test_search_ors_groups_ands_filters_sorts_once_and_pages_with_after(api):
    contacts(api, *(f"p{i}@example.com" for i in range(5)))
    one_of = {
        "filterGroups": [
            {"filters": [{"propertyName": "email", "operator": "EQ", "value": "p1@example.com"}]},
            {
                "filters": [
                    {
                        "propertyName": "email",
                        "operator": "IN",
                        "values": ["p3@example.com", "p4@example.com"],
                    },
                    {"propertyName": "firstname", "operator": "EQ", "value": "F"},
                ]
            },
        ],
        "properties": ["email"],
    }
    found = api("POST", f"{CONTACTS}/search", one_of).json()
    assert sorted(r["properties"]["email"] for r in found["results"]) == [
        "p1@example.com",
        "p3@example.com",
        "p4@example.com",
    ]
    body = {
        "sorts": [{"propertyName": "email", "direction": "DESCENDING"}],
        "limit": 2,
        "properties": ["email"],
    }
    page = api("POST", f"{CONTACTS}/search", body).json()
    assert page["total"] == 5 and [r["properties"]["email"] for r in page["results"]] == [
        "p4@example.com",
        "p3@example.com",
    ]
    after = page["paging"]["next"]["after"]
    second = api("POST", f"{CONTACTS}/search", {**body, "after": after}).json()
    assert [r["properties"]["email"] for r in second["results"]] == [
        "p2@example.com",
        "p1@example.com",
    ]
    two_sorts = api(
        "POST",
        f"{CONTACTS}/search",
        {"sorts": [{"propertyName": "email"}, {"propertyName": "firstname"}]},
    )
    assert two_sorts.status_code == 400
    assert api("POST", f"{CONTACTS}/search", {"limit": 201}).status_code == 400


def test_search_reaches_at_most_10000_results_per_query(api):
    assert api("POST", f"{CONTACTS}/search", {"limit": 100, "after": "9900"}).status_code == 200
    beyond = api("POST", f"{CONTACTS}/search", {"limit": 100, "after": "9901"})
    assert beyond.status_code == 400 and "10000" in error_shape(beyond)["message"]


def test_oauth_tokens_are_form_encoded_and_refresh_tokens_rotate(sandbox):
    token_url = f"{sandbox.url}/oauth/v1/token"
    redirect = "https://app.example.com/oauth/callback"
    code = requests.post(
        f"{sandbox.admin_url}/oauth/code", json={"redirect_uri": redirect}, timeout=10
    ).json()["code"]
    form = {
        "grant_type": "authorization_code",
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "redirect_uri": redirect,
        "code": code,
    }
    tokens = requests.post(token_url, data=form, timeout=10).json()
    assert {"access_token", "refresh_token", "expires_in", "token_type"} <= set(tokens)
    assert (
        Api(sandbox, tokens["access_token"])("GET", "/crm/v3/properties/contacts").status_code
        == 200
    )
    refresh = {
        "grant_type": "refresh_token",
        "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret,
        "refresh_token": tokens["refresh_token"],
    }
    renewed = requests.post(token_url, data=refresh, timeout=10).json()
    assert renewed["refresh_token"] != tokens["refresh_token"]
    reused = requests.post(token_url, data=refresh, timeout=10)
    assert reused.status_code == 400 and reused.json()["status"] == "BAD_REFRESH_TOKEN"
    # OAuth answers carry no daily limit headers.
    answer = Api(sandbox, renewed["access_token"])("GET", "/account-info/v3/details")
    assert "X-HubSpot-RateLimit-Daily" not in answer.headers
    assert "X-HubSpot-RateLimit-Remaining" in answer.headers


class Receiver:
    """An HTTP endpoint that keeps every request it gets."""

    def __init__(self) -> None:
        self.got: list[tuple[str, str, dict[str, str], bytes]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.got.append((self.command, self.path, dict(self.headers), body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/webhooks/hubspot?app=1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_webhook_deliveries_are_v3_signed_arrays_of_events(start):
    receiver = Receiver()
    try:
        sandbox = start(webhook_url=receiver.url, portal_id="62515")
        api = Api(sandbox)
        [row] = contacts(api, "eve@example.com")
        api(
            "POST",
            f"{CONTACTS}/batch/update",
            {"inputs": [{"id": row["id"], "properties": {"firstname": "Eve"}}]},
        )
        got = wait_until("two deliveries", lambda: len(receiver.got) >= 2 and receiver.got)
    finally:
        receiver.server.shutdown()
    for method, path, headers, body in got:
        stamp = headers["X-HubSpot-Request-Timestamp"]
        message = method.encode() + receiver.url.encode() + body + stamp.encode()
        expected = base64.b64encode(
            hmac.new(sandbox.client_secret.encode(), message, hashlib.sha256).digest()
        ).decode()
        assert headers["X-HubSpot-Signature-v3"] == expected
        assert path == "/webhooks/hubspot?app=1"
        events = json.loads(body)
        assert isinstance(events, list)
        for event in events:
            assert {
                "eventId",
                "subscriptionId",
                "portalId",
                "appId",
                "occurredAt",
                "subscriptionType",
                "attemptNumber",
                "objectId",
            } <= set(event)
            assert event["portalId"] == 62515 and event["objectId"] == int(row["id"])
    kinds = [e["subscriptionType"] for _, _, _, body in got for e in json.loads(body)]
    assert kinds[0] == "contact.creation"
    changed = [
        e
        for _, _, _, body in got
        for e in json.loads(body)
        if e["subscriptionType"] == "contact.propertyChange"
    ]
    assert [(e["propertyName"], e["propertyValue"]) for e in changed] == [("firstname", "Eve")]
