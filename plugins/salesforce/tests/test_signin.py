"""oauth_start / oauth_finish against the sandbox, and refresh-token rotation saved into the
secrets file (SecretsStore) and used on the next connect."""

from __future__ import annotations

import base64
import hashlib
import logging
import socket
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from eventsync.errors import AuthenticationError, ConfigurationError, RetryableError
from eventsync.models import SystemSettings
from eventsync.secrets_store import SecretsStore
from eventsync_salesforce import plugin

CALLBACK = "http://127.0.0.1:8080/console/oauth/callback"
SECRET_VAR = "SF_REFRESH_TOKEN"


def _params(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


@pytest.mark.parametrize(
    "login_url",
    [
        "https://login.salesforce.com",
        "https://test.salesforce.com",
        "https://acme.my.salesforce.com/",
        "https://127.0.0.1:8443",
    ],
)
def test_oauth_start_builds_the_authorize_url(login_url):
    start = plugin.oauth_start(
        "salesforce", {"login_url": login_url, "client_id": "3MVG9abc"}, CALLBACK, "st4te"
    )
    parts = urlsplit(start.url)
    assert f"{parts.scheme}://{parts.netloc}" == login_url.rstrip("/")
    assert parts.path == "/services/oauth2/authorize"
    params = _params(start.url)
    digest = hashlib.sha256(start.verifier.encode()).digest()
    assert params == {
        "response_type": "code",
        "client_id": "3MVG9abc",
        "redirect_uri": CALLBACK,
        "scope": "api refresh_token",
        "state": "st4te",
        "code_challenge": base64.urlsafe_b64encode(digest).rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    }
    assert 43 <= len(start.verifier) <= 128
    assert start.verifier not in start.url
    again = plugin.oauth_start("salesforce", {"client_id": "3MVG9abc"}, CALLBACK, "st4te")
    assert again.verifier != start.verifier
    assert again.url.startswith("https://login.salesforce.com/services/oauth2/authorize?")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"login_url": "login.salesforce.com", "client_id": "x"}, "must be an https URL"),
        ({"login_url": "https://acme.my.salesforce.com/home", "client_id": "x"}, "without a path"),
        ({"login_url": "https://login.salesforce.com"}, "client_id: missing"),
    ],
)
def test_oauth_start_refuses_bad_settings(settings, message):
    with pytest.raises(ConfigurationError) as exc:
        plugin.oauth_start("salesforce", settings, CALLBACK, "s")
    assert message in str(exc.value)


def test_other_systems_are_not_ours():
    assert plugin.oauth_start("hopin", {}, CALLBACK, "s") is None
    assert plugin.oauth_finish("hopin", {}, CALLBACK, "c", "v", {}) is None


def _register(sandbox, **app) -> dict:
    answer = requests.post(
        f"{sandbox.url}/_admin/oauth/apps",
        json={"name": "Signin test", "callback_urls": [CALLBACK], **app},
        headers={"X-Admin-Token": sandbox.admin_token},
        verify=sandbox.ca_bundle,
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def _table(sandbox, app: dict) -> dict:
    return {"login_url": sandbox.url, "client_id": app["client_id"], "ca_bundle": sandbox.ca_bundle}


def _sign_in(sandbox, web_signin, app: dict) -> tuple[dict, str, str]:
    table = _table(sandbox, app)
    start = plugin.oauth_start("salesforce", table, CALLBACK, "state-1")
    sent = web_signin.callback(start.url)
    assert sent["state"] == "state-1"
    return table, sent["code"], start.verifier


def _grant(sandbox, web_signin, app: dict):
    table, code, verifier = _sign_in(sandbox, web_signin, app)
    secrets = {"client_secret": app["client_secret"]} if app["require_secret"] else {}
    return plugin.oauth_finish("salesforce", table, CALLBACK, code, verifier, secrets)


def _saved_settings(sandbox, grant, secrets_file: Path | None) -> SystemSettings:
    """What the console writes: grant.settings in the table, each secret in the secrets file
    named by <name>_env; read back as the engine reads them."""
    names = {name: f"SF_{name.upper()}" for name in grant.secrets}
    options = {**grant.settings, "ca_bundle": sandbox.ca_bundle, "retry_backoff": 0.01}
    options.update({f"{name}_env": var for name, var in names.items()})
    values = {var: grant.secrets[name] for name, var in names.items()}
    if secrets_file is None:
        return SystemSettings("salesforce", "acme", options, env=values)
    SecretsStore(secrets_file).update(values)
    env = SecretsStore(secrets_file).values()
    return SystemSettings("salesforce", "acme", options, env=env, secrets_file=str(secrets_file))


def test_oauth_finish_returns_a_grant_that_connects(sandbox, web_signin, tmp_path):
    app = _register(sandbox)
    grant = _grant(sandbox, web_signin, app)
    assert dict(grant.settings) == {
        "login_url": sandbox.url,
        "client_id": app["client_id"],
        "grant": "refresh_token",
    }
    assert set(grant.secrets) == {"refresh_token", "client_secret"}
    assert grant.secrets["client_secret"] == app["client_secret"]
    assert grant.account == f"integration@sandbox.example on {sandbox.info()['org_id']}"
    assert grant.secrets["refresh_token"] not in repr(grant)
    conn = plugin.authenticate("salesforce", _saved_settings(sandbox, grant, tmp_path / "s.env"))
    assert conn.sf.query("SELECT COUNT() FROM User")["totalSize"] >= 2


def test_oauth_finish_public_client_saves_no_client_secret(sandbox, web_signin):
    app = _register(sandbox, require_secret=False)
    grant = _grant(sandbox, web_signin, app)
    assert set(grant.secrets) == {"refresh_token"}
    conn = plugin.authenticate("salesforce", _saved_settings(sandbox, grant, None))
    assert conn.sf.query("SELECT COUNT() FROM User")["totalSize"] >= 2


def test_oauth_finish_reports_salesforce_refusals(sandbox, web_signin):
    app = _register(sandbox)
    table, code, verifier = _sign_in(sandbox, web_signin, app)
    with pytest.raises(AuthenticationError) as exc:
        plugin.oauth_finish(
            "salesforce", table, CALLBACK, code, "x" * 50, dict(client_secret=app["client_secret"])
        )
    assert (exc.value.error, exc.value.description) == ("invalid_grant", "invalid code verifier")
    assert "callback URL" in (exc.value.hint or "")
    with pytest.raises(AuthenticationError) as reused:
        plugin.oauth_finish(
            "salesforce", table, CALLBACK, code, verifier, {"client_secret": app["client_secret"]}
        )
    assert reused.value.description == "invalid authorization code"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_oauth_finish_unreachable_login_url_is_retryable():
    table = {"login_url": f"https://127.0.0.1:{_closed_port()}", "client_id": "x"}
    with pytest.raises(RetryableError) as exc:
        plugin.oauth_finish("salesforce", table, CALLBACK, "code", "v" * 50, {})
    assert "connection refused" in str(exc.value)
    assert "check login_url" in str(exc.value)


def test_rotated_refresh_token_is_saved_and_used_on_the_next_connect(sandbox, web_signin, tmp_path):
    app = _register(sandbox, rotate_refresh_tokens=True)
    grant = _grant(sandbox, web_signin, app)
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text("# kept\nOTHER='x'\n", encoding="utf-8")
    first = grant.secrets["refresh_token"]
    conn = plugin.authenticate("salesforce", _saved_settings(sandbox, grant, secrets_file))
    saved = SecretsStore(secrets_file).get(SECRET_VAR)
    assert saved and saved != first
    assert SecretsStore(secrets_file).get("OTHER") == "x"
    assert secrets_file.read_text(encoding="utf-8").startswith("# kept\n")
    conn.renew()  # the connection renews with the saved token, which rotates again
    assert conn.sf.query("SELECT COUNT() FROM User")["totalSize"] >= 2
    latest = SecretsStore(secrets_file).get(SECRET_VAR)
    assert latest not in (first, saved)
    # The next start reads the file: it connects (and the old tokens no longer work).
    options = {**conn.settings.options}
    env = SecretsStore(secrets_file).values()
    again = plugin.authenticate(
        "salesforce",
        SystemSettings("salesforce", "acme", options, env=env, secrets_file=str(secrets_file)),
    )
    assert again.sf.query("SELECT COUNT() FROM User")["totalSize"] >= 2
    stale = SystemSettings("salesforce", "acme", options, env={**env, SECRET_VAR: saved})
    with pytest.raises(AuthenticationError) as exc:
        plugin.authenticate("salesforce", stale)
    assert exc.value.description == "expired access/refresh token"


def test_rotation_without_a_secrets_file_warns_and_keeps_working(sandbox, web_signin, caplog):
    app = _register(sandbox, rotate_refresh_tokens=True)
    grant = _grant(sandbox, web_signin, app)
    settings = _saved_settings(sandbox, grant, None)
    with caplog.at_level(logging.WARNING, logger="eventsync.models"):
        conn = plugin.authenticate("salesforce", settings)
        conn.renew()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2  # one per rotation
    assert "no [engine] secrets_file" in warnings[0] and SECRET_VAR in warnings[0]
    assert "refresh_token" in warnings[0] and grant.secrets["refresh_token"] not in warnings[0]
    assert conn.sf.query("SELECT COUNT() FROM User")["totalSize"] >= 2


def test_oauth_finish_token_endpoint_overloaded_is_retryable(sandbox, web_signin):
    app = _register(sandbox)
    table, code, verifier = _sign_in(sandbox, web_signin, app)
    fault = {"endpoint": "token", "method": "POST", "status": 503, "times": 1}
    headers = {"X-Admin-Token": sandbox.admin_token}
    added = requests.post(
        f"{sandbox.url}/_admin/faults",
        json=fault,
        headers=headers,
        verify=sandbox.ca_bundle,
        timeout=30,
    )
    assert added.status_code == 201
    secrets = {"client_secret": app["client_secret"]}
    with pytest.raises(RetryableError) as exc:
        plugin.oauth_finish("salesforce", table, CALLBACK, code, verifier, secrets)
    assert exc.value.code == "HTTP_503"


def test_a_token_another_process_rotated_is_read_back_from_the_secrets_file(
    sandbox, web_signin, tmp_path
):
    app = _register(sandbox, rotate_refresh_tokens=True)
    grant = _grant(sandbox, web_signin, app)
    secrets_file = tmp_path / "secrets.env"
    serve = plugin.authenticate("salesforce", _saved_settings(sandbox, grant, secrets_file))
    # A second process starts from the same file: the token serve saved after its rotation.
    env = SecretsStore(secrets_file).values()
    worker = plugin.authenticate(
        "salesforce",
        SystemSettings(
            "salesforce", "acme", serve.settings.options, env=env, secrets_file=str(secrets_file)
        ),
    )
    serve.renew()  # rotates the token the worker holds in memory
    worker.renew()  # refused at first, then retried with the token now in the file
    assert worker.sf.query("SELECT COUNT() FROM User")["totalSize"] >= 2
    assert SecretsStore(secrets_file).get(SECRET_VAR) == worker.settings.secret("refresh_token")
