"""Connections: private app tokens, the portal check, and OAuth with rotating refresh tokens
kept atomically in the token file."""

from __future__ import annotations

import json
import stat

import attrs
import pytest
import requests
from eventsync.errors import AuthenticationError, ConfigurationError
from eventsync.models import PullRequest, SystemSettings
from eventsync_hubspot.oauth import exchange_code

REDIRECT = "https://app.example.com/oauth-callback"


def oauth_settings(sandbox, tmp_path, refresh_token: str | None = None) -> SystemSettings:
    env = {"HS_CLIENT_SECRET": sandbox.client_secret}
    if refresh_token is not None:
        env["HS_REFRESH"] = refresh_token
    return SystemSettings(
        "hubspot",
        "acme",
        {
            "portal_id": sandbox.portal_id,
            "auth": "oauth",
            "client_id": sandbox.client_id,
            "client_secret_env": "HS_CLIENT_SECRET",
            "refresh_token_env": "HS_REFRESH",
            "token_file": str(tmp_path / "hubspot-token.json"),
            "url": sandbox.url,
        },
        env=env,
    )


def test_a_wrong_token_is_an_authentication_error_with_hubspots_words(hooks, sandbox):
    good = sandbox.settings("acme")
    bad = attrs.evolve(good, env={**good.env, good.options["access_token_env"]: "pat-na1-0000"})
    with pytest.raises(AuthenticationError) as exc:
        hooks.authenticate(bad)
    assert exc.value.error == "INVALID_AUTHENTICATION"
    assert "private app access token is invalid" in exc.value.description


def test_a_token_of_another_portal_is_refused(hooks, sandbox):
    good = sandbox.settings("acme")
    other = attrs.evolve(good, options={**good.options, "portal_id": "1234"})
    with pytest.raises(AuthenticationError, match="PORTAL_MISMATCH"):
        hooks.authenticate(other)


def test_oauth_settings_name_what_they_lack(hooks, sandbox, tmp_path):
    settings = oauth_settings(sandbox, tmp_path, "x")
    lacking = attrs.evolve(
        settings, options={k: v for k, v in settings.options.items() if k != "token_file"}
    )
    with pytest.raises(
        ConfigurationError,
        match=r"\$\.orgs\.acme\.systems\.hubspot\.token_file: required with auth = oauth",
    ):
        hooks.authenticate(lacking)


def test_oauth_code_exchange_refresh_rotation_and_revocation(hooks, sandbox, tmp_path, admin):
    code = admin(sandbox, "POST", "/oauth/code", {"redirect_uri": REDIRECT})["code"]
    first = exchange_code(oauth_settings(sandbox, tmp_path), code, REDIRECT)
    token_file = tmp_path / "hubspot-token.json"
    assert json.loads(token_file.read_text())["refresh_token"] == first
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600

    # No refresh token in the environment: the file's is used, and rotated on every refresh.
    conn = hooks.authenticate(oauth_settings(sandbox, tmp_path))
    second = json.loads(token_file.read_text())["refresh_token"]
    assert second != first
    admin(sandbox, "POST", "/oauth/expire")
    assert list(hooks.pull(conn, PullRequest("contacts"))) == []  # a 401, refreshed, sent again
    third = json.loads(token_file.read_text())["refresh_token"]
    assert third != second
    assert not list(tmp_path.glob(".hubspot-token.json.*")), "no temporary file is left behind"

    # A stale refresh token in the environment does not matter once the file has a newer one.
    again = hooks.authenticate(oauth_settings(sandbox, tmp_path, refresh_token=first))
    assert again.system == "hubspot"

    admin(sandbox, "POST", "/oauth/revoke")
    admin(sandbox, "POST", "/oauth/expire")
    with pytest.raises(AuthenticationError) as exc:
        list(hooks.pull(again, PullRequest("contacts")))
    assert exc.value.error == "BAD_REFRESH_TOKEN"
    assert exc.value.description == "missing or unknown refresh token"


def test_oauth_without_any_refresh_token_says_which_variable_is_unset(hooks, sandbox, tmp_path):
    with pytest.raises(ConfigurationError, match="HS_REFRESH is not set"):
        hooks.authenticate(oauth_settings(sandbox, tmp_path))


def test_a_wrong_client_secret_is_an_authentication_error(hooks, sandbox, tmp_path):
    settings = oauth_settings(sandbox, tmp_path, "whatever")
    settings = attrs.evolve(settings, env={**settings.env, "HS_CLIENT_SECRET": "nope"})
    with pytest.raises(AuthenticationError, match="BAD_CLIENT_SECRET"):
        hooks.authenticate(settings)
    assert requests.get(f"{sandbox.admin_url}/oauth/refreshes", timeout=10).json() == {
        "refreshes": 0
    }
