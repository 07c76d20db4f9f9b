"""Sandbox lifecycle: persistence, info(), config errors, the start_sandbox hook."""

from __future__ import annotations

import json
import socket

import pytest
from eventsync.models import PullRequest, PushItem, PushRequest
from eventsync_salesforce import plugin


def test_state_file_persists_records(tmp_path):
    state = tmp_path / "org.json"
    first = plugin.start_sandbox("salesforce", {"state_file": str(state)})
    conn = plugin.authenticate("salesforce", first.settings("acme"))
    [made] = plugin.push(
        conn,
        PushRequest("Lead", "insert", (PushItem("k", {"LastName": "Kept", "Company": "Persist"}),)),
    )
    users = first.info()["users"]
    first.stop()
    assert json.loads(state.read_text())["records"]["Lead"][made.id]["LastName"] == "Kept"
    second = plugin.start_sandbox("salesforce", {"state_file": str(state)})
    try:
        assert second.info()["users"] == users
        conn = plugin.authenticate("salesforce", second.settings("acme"))
        [kept] = plugin.pull(conn, PullRequest("Lead", ids=(made.id,), fields=("LastName",)))
        assert kept.get("LastName") == "Kept"
        [again] = plugin.push(
            conn,
            PushRequest(
                "Lead", "insert", (PushItem("k", {"LastName": "New", "Company": "Persist"}),)
            ),
        )
        assert again.id != made.id
    finally:
        second.stop()


def test_info_and_stop(sandbox):
    info = sandbox.info()
    json.dumps(info)
    for key in (
        "url",
        "token_url",
        "admin_url",
        "admin_token",
        "ca_bundle",
        "org_id",
        "client_id",
        "client_secret",
        "private_key_file",
        "username",
        "password",
        "refresh_token",
        "users",
        "api_version",
    ):
        assert key in info, key
    assert info["url"].startswith("https://127.0.0.1:")
    handle = plugin.start_sandbox("salesforce", {})
    port = handle.port
    socket.create_connection(("127.0.0.1", port), timeout=2).close()
    handle.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2)


def test_bad_config_names_the_path():
    with pytest.raises(ValueError) as exc:
        plugin.start_sandbox(
            "salesforce", {"config": {"custom_fields": {"Lead": [{"name": "X__c", "typo": 1}]}}}
        )
    assert "$.config.custom_fields" in str(exc.value)
    assert plugin.start_sandbox("hopin", {}) is None


def test_a_connection_stays_open_between_calls_as_salesforce_keeps_it() -> None:
    import http.client
    import ssl

    handle = plugin.start_sandbox("salesforce", {})
    try:
        context = ssl.create_default_context(cafile=handle.ca_bundle)
        conn = http.client.HTTPSConnection("127.0.0.1", handle.port, context=context, timeout=10)
        conn.connect()
        first_socket = conn.sock
        for _ in range(3):
            conn.request("GET", "/services/data/")
            answer = conn.getresponse()
            answer.read()
            assert answer.status == 200 and not answer.will_close
        assert conn.sock is first_socket  # one TLS handshake for every call
        conn.close()
    finally:
        handle.stop()
