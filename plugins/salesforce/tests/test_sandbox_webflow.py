"""The sandbox's OAuth 2.0 web server flow with PKCE, over HTTPS with requests: authorize,
login, consent, the code exchange, each refusal, and refresh-token rotation."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
import requests

CALLBACK = "https://console.example/console/oauth/callback"


def _challenge(verifier: str) -> str:
    # Computed here with hashlib (RFC 7636 S256), independently of the sandbox's oauthlib.
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _register(sandbox, **app: Any) -> dict[str, Any]:
    body = {"name": "Test console", "callback_urls": [CALLBACK], **app}
    answer = requests.post(
        f"{sandbox.url}/_admin/oauth/apps",
        json=body,
        headers={"X-Admin-Token": sandbox.admin_token},
        verify=sandbox.ca_bundle,
        timeout=30,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def _authorize_url(sandbox, app: dict[str, Any], verifier: str | None, **extra: str) -> str:
    params = {
        "response_type": "code",
        "client_id": app["client_id"],
        "redirect_uri": CALLBACK,
        "scope": "api refresh_token",
        "state": "st-" + secrets.token_hex(4),
    }
    if verifier is not None:
        params.update(code_challenge=_challenge(verifier), code_challenge_method="S256")
    params.update(extra)
    return f"{sandbox.url}/services/oauth2/authorize?{urlencode(params)}"


def _token(sandbox, **form: str) -> requests.Response:
    return requests.post(
        f"{sandbox.url}/services/oauth2/token",
        data=form,
        headers={"Accept": "application/json"},
        verify=sandbox.ca_bundle,
        timeout=30,
    )


def _exchange(sandbox, app, code: str, verifier: str, **overrides: str) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": CALLBACK,
        "client_id": app["client_id"],
        "client_secret": app["client_secret"],
        "code_verifier": verifier,
    }
    form.update(overrides)
    return _token(sandbox, **{k: v for k, v in form.items() if v is not None})


@pytest.fixture
def app(sandbox) -> dict[str, Any]:
    """A fresh External Client App requiring its secret and PKCE."""
    return _register(sandbox)


@pytest.fixture
def verifier() -> str:
    """A PKCE code verifier."""
    return secrets.token_urlsafe(64)


def _code(sandbox, web_signin, app, verifier) -> str:
    url = _authorize_url(sandbox, app, verifier)
    sent = web_signin.callback(url)
    assert sent["state"] == dict(p.split("=") for p in urlsplit(url).query.split("&"))["state"]
    return sent["code"]


def _refusal(answer: requests.Response) -> tuple[int, str, str]:
    body = answer.json()
    return answer.status_code, body["error"], body["error_description"]


def test_full_flow_gives_working_tokens_in_salesforce_format(sandbox, web_signin, app, verifier):
    code = _code(sandbox, web_signin, app, verifier)
    answer = _exchange(sandbox, app, code, verifier)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {
        "access_token",
        "refresh_token",
        "signature",
        "scope",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
    }
    org_id = sandbox.info()["org_id"]
    user_id = sandbox.info()["users"]["integration@sandbox.example"]
    assert body["scope"] == "api refresh_token"
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == sandbox.url
    assert body["id"] == f"{sandbox.url}/id/{org_id}/{user_id}"
    assert body["issued_at"].isdigit()
    # Salesforce's signature: HMAC-SHA256 of id + issued_at, keyed by the consumer secret.
    mac = hmac.new(
        app["client_secret"].encode(), (body["id"] + body["issued_at"]).encode(), hashlib.sha256
    )
    assert body["signature"] == base64.b64encode(mac.digest()).decode()
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    rest = requests.get(
        f"{sandbox.url}/services/data/v{sandbox.org.version}/sobjects",
        headers=bearer,
        verify=sandbox.ca_bundle,
        timeout=30,
    )
    assert rest.status_code == 200
    who = requests.get(body["id"], headers=bearer, verify=sandbox.ca_bundle, timeout=30)
    assert who.json()["username"] == "integration@sandbox.example"
    assert who.json()["organization_id"] == org_id
    refreshed = _token(
        sandbox,
        grant_type="refresh_token",
        refresh_token=body["refresh_token"],
        client_id=app["client_id"],
        client_secret=app["client_secret"],
    )
    assert refreshed.status_code == 200 and "refresh_token" not in refreshed.json()


def test_login_and_consent_pages(sandbox, web_signin, app, verifier):
    login = web_signin.authorize(_authorize_url(sandbox, app, verifier))
    assert login.status_code == 200
    assert "Log In" in login.text and 'name="password"' in login.text
    consent = web_signin.consent_page(_authorize_url(sandbox, app, verifier))
    assert "Test console" in consent.text
    assert "Manage user data via APIs (api)" in consent.text
    assert "Perform requests at any time" in consent.text
    assert "Allow" in consent.text and "Deny" in consent.text


def test_wrong_password_shows_an_error_and_stays(sandbox, web_signin, app, verifier):
    login = web_signin.authorize(_authorize_url(sandbox, app, verifier))
    again = web_signin.submit(login, username="integration@sandbox.example", password="nope")
    assert again.status_code == 200
    assert web_signin.alerts(again) == [
        "Please check your username and password. If you still can't log in, contact your "
        "Salesforce administrator."
    ]
    assert 'value="integration@sandbox.example"' in again.text
    consent = web_signin.submit(
        again, username="integration@sandbox.example", password=sandbox.info()["password"]
    )
    assert "Allow Access?" in consent.text


def test_deny_sends_access_denied_with_the_state(sandbox, web_signin, app, verifier):
    url = _authorize_url(sandbox, app, verifier, state="keep-me")
    sent = web_signin.callback(url, decision="deny")
    assert sent == {
        "error": "access_denied",
        "error_description": "end-user denied authorization",
        "state": "keep-me",
    }


def test_unknown_client_gets_an_error_page_not_a_redirect(sandbox, web_signin, app, verifier):
    url = _authorize_url(sandbox, {**app, "client_id": "3MVG9nobody"}, verifier)
    page = web_signin.authorize(url)
    assert page.status_code == 400 and "Location" not in page.headers
    assert "error=invalid_client_id" in page.text


def test_unregistered_callback_gets_an_error_page_not_a_redirect(
    sandbox, web_signin, app, verifier
):
    url = _authorize_url(sandbox, app, verifier, redirect_uri="https://evil.example/cb")
    page = web_signin.authorize(url)
    assert page.status_code == 400 and "Location" not in page.headers
    assert "error=redirect_uri_mismatch" in page.text
    assert "evil.example" not in page.text


def test_pkce_is_required_by_default(sandbox, web_signin, app):
    answer = web_signin.authorize(_authorize_url(sandbox, app, None, state="s1"))
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert location.startswith(CALLBACK + "?")
    assert "error=invalid_request" in location and "state=s1" in location


def test_a_form_without_the_pages_token_is_refused(sandbox, web_signin, app, verifier):
    login = web_signin.authorize(_authorize_url(sandbox, app, verifier))
    forged = web_signin.submit(
        login, username="integration@sandbox.example", password="x", csrf="forged"
    )
    assert forged.status_code == 400 and "Log In" not in forged.text


@pytest.mark.parametrize(
    ("overrides", "refusal"),
    [
        ({"code_verifier": "W" * 60}, ("invalid_grant", "invalid code verifier")),
        ({"code_verifier": None}, ("invalid_grant", "invalid code verifier")),
        (
            {"redirect_uri": "https://console.example/other"},
            ("redirect_uri_mismatch", "redirect_uri must match configuration"),
        ),
        ({"client_secret": "wrong"}, ("invalid_client", "invalid client credentials")),
        ({"client_secret": None}, ("invalid_client", "invalid client credentials")),
        ({"client_id": "3MVG9nobody"}, ("invalid_client_id", "client identifier invalid")),
    ],
)
def test_token_exchange_refusals(sandbox, web_signin, app, verifier, overrides, refusal):
    code = _code(sandbox, web_signin, app, verifier)
    assert _refusal(_exchange(sandbox, app, code, verifier, **overrides)) == (400, *refusal)


def test_a_code_works_once(sandbox, web_signin, app, verifier):
    code = _code(sandbox, web_signin, app, verifier)
    assert _exchange(sandbox, app, code, verifier).status_code == 200
    again = _exchange(sandbox, app, code, verifier)
    assert _refusal(again) == (400, "invalid_grant", "invalid authorization code")


def test_an_expired_code_is_refused(sandbox, web_signin, app, verifier):
    code = _code(sandbox, web_signin, app, verifier)
    expired = requests.post(
        f"{sandbox.url}/_admin/oauth/codes/expire",
        headers={"X-Admin-Token": sandbox.admin_token},
        verify=sandbox.ca_bundle,
        timeout=30,
    )
    assert expired.json()["expired"] >= 1
    answer = _exchange(sandbox, app, code, verifier)
    assert _refusal(answer) == (400, "invalid_grant", "expired authorization code")


def test_public_client_needs_no_secret(sandbox, web_signin, verifier):
    public = _register(sandbox, require_secret=False)
    code = _code(sandbox, web_signin, public, verifier)
    assert _exchange(sandbox, public, code, verifier, client_secret=None).status_code == 200


def test_rotation_replaces_the_refresh_token_and_invalidates_the_old(sandbox, web_signin, verifier):
    rotating = _register(sandbox, rotate_refresh_tokens=True)
    code = _code(sandbox, web_signin, rotating, verifier)
    first = _exchange(sandbox, rotating, code, verifier).json()["refresh_token"]
    client = {"client_id": rotating["client_id"], "client_secret": rotating["client_secret"]}
    answer = _token(sandbox, grant_type="refresh_token", refresh_token=first, **client)
    assert answer.status_code == 200
    second = answer.json()["refresh_token"]
    assert second != first
    old = _token(sandbox, grant_type="refresh_token", refresh_token=first, **client)
    assert _refusal(old) == (400, "invalid_grant", "expired access/refresh token")
    newer = _token(sandbox, grant_type="refresh_token", refresh_token=second, **client)
    assert newer.status_code == 200 and newer.json()["refresh_token"] not in (first, second)


def test_console_app_accepts_its_callback_on_any_loopback_port(sandbox, web_signin, verifier):
    console = sandbox.info()["oauth"]["console_app"]
    url = _authorize_url(
        sandbox,
        console,
        verifier,
        redirect_uri="http://127.0.0.1:48123/console/oauth/callback",
    )
    assert web_signin.authorize(url).status_code == 200
    elsewhere = url.replace("console%2Foauth%2Fcallback", "other")
    assert web_signin.authorize(elsewhere).status_code == 400


def test_admin_api_lists_apps_and_refuses_a_malformed_one(sandbox, app):
    headers = {"X-Admin-Token": sandbox.admin_token}
    listed = requests.get(
        f"{sandbox.url}/_admin/oauth/apps", headers=headers, verify=sandbox.ca_bundle, timeout=30
    )
    assert app["client_id"] in [a["client_id"] for a in listed.json()]
    bad = requests.post(
        f"{sandbox.url}/_admin/oauth/apps",
        json={"name": "x"},
        headers=headers,
        verify=sandbox.ca_bundle,
        timeout=30,
    )
    assert bad.status_code == 400 and "callback_urls" in bad.json()["error"]


def test_info_names_the_console_app_and_user_that_sign_in(sandbox, web_signin, verifier):
    oauth = sandbox.info()["oauth"]
    console = oauth["console_app"]
    assert (console["name"], console["client_id"]) == (
        "eventsync console",
        "3MVG9sandboxEventsyncConsole",
    )
    assert oauth["authorize_url"] == f"{sandbox.url}/services/oauth2/authorize"
    callback = "http://localhost:39001/console/oauth/callback"
    url = _authorize_url(sandbox, console, verifier, redirect_uri=callback)
    sent = web_signin.callback(url, username=oauth["username"], password=oauth["password"])
    answer = _exchange(
        sandbox, console, sent["code"], verifier, redirect_uri=callback, client_secret=None
    )
    assert answer.status_code == 200 and answer.json()["refresh_token"]
