"""authenticate: API key and OAuth, and errors that name what is wrong."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import attrs
import pytest
import requests
from eventsync.errors import AuthenticationError, ConfigurationError
from eventsync_hopin import plugin


def _env(settings, **values):
    return attrs.evolve(settings, env={**settings.env, **values})


def test_api_key_connects_to_the_seeded_organisation(sandbox, settings):
    connection = plugin.authenticate("hopin", settings)
    assert connection.system == "hopin" and connection.org == "acme"
    assert connection.organization_id == sandbox.info()["organization_id"]
    assert connection.organization_name == "Demo Organisation"
    assert plugin.authenticate("salesforce", settings) is None


def test_wrong_key_says_credentials(settings):
    bad = _env(settings, **{settings.options["api_key_env"]: "wrong"})
    with pytest.raises(AuthenticationError) as exc:
        plugin.authenticate("hopin", bad)
    assert "credentials rejected" in str(exc.value) and "API key" in str(exc.value)
    assert "wrong" not in str(exc.value), "the secret never appears in errors"


def test_wrong_url_says_base_url(sandbox, settings, tweak):
    not_api = tweak(settings, base_url=f"{sandbox.url}/not-the-api")
    with pytest.raises(AuthenticationError) as exc:
        plugin.authenticate("hopin", not_api)
    assert "base_url" in str(exc.value) and "404" in str(exc.value)
    closed = tweak(settings, base_url="http://127.0.0.1:9", retries=0)
    with pytest.raises(AuthenticationError) as exc:
        plugin.authenticate("hopin", closed)
    assert "unreachable" in str(exc.value) and "base_url" in str(exc.value)


def test_wrong_organisation_and_event(settings, tweak):
    with pytest.raises(AuthenticationError) as exc:
        plugin.authenticate("hopin", tweak(settings, organization_id="x" * 25))
    assert "organisation" in str(exc.value) and "organization_id" in str(exc.value)
    with pytest.raises(AuthenticationError) as exc:
        plugin.authenticate("hopin", tweak(settings, event_id="y" * 25))
    assert "event_id" in str(exc.value)


def test_organisation_is_found_when_not_configured(sandbox, settings):
    options = {k: v for k, v in settings.options.items() if k != "organization_id"}
    connection = plugin.authenticate("hopin", attrs.evolve(settings, options=options))
    assert connection.organization_id == sandbox.info()["organization_id"]


def test_bad_options_are_configuration_errors(settings, tweak):
    with pytest.raises(ConfigurationError) as exc:
        plugin.authenticate("hopin", tweak(settings, nonsense=1, filter_encoding="xml"))
    text = str(exc.value)
    assert "$.orgs.acme.systems.hopin" in text and "nonsense" in text
    missing = attrs.evolve(settings, env={})
    with pytest.raises(ConfigurationError):
        plugin.authenticate("hopin", missing)


def _oauth_tokens(sandbox):
    info = sandbox.info()
    redirect = "http://127.0.0.1:1/callback"
    authorize = requests.get(
        f"{sandbox.url}/oauth/authorize",
        allow_redirects=False,
        timeout=5,
        params={
            "client_id": info["oauth_client_id"],
            "redirect_uri": redirect,
            "scope": "api",
            "state": "s1",
            "response_type": "code",
            "resource": "org",
        },
    )
    assert authorize.status_code == 302
    query = parse_qs(urlsplit(authorize.headers["Location"]).query)
    assert query["state"] == ["s1"]
    token = requests.post(
        f"{sandbox.url}/oauth/token",
        timeout=5,
        params={
            "grant_type": "authorization_code",
            "code": query["code"][0],
            "redirect_uri": redirect,
            "client_id": info["oauth_client_id"],
            "client_secret": info["oauth_client_secret"],
            "resource": "org",
        },
    )
    assert token.status_code == 200, token.text
    return token.json()


def _oauth_settings(sandbox, settings, access, refresh):
    info = sandbox.info()
    options = {k: v for k, v in settings.options.items() if k != "api_key_env"}
    options.update(
        auth="oauth",
        oauth_client_id=info["oauth_client_id"],
        access_token_env="H_ACCESS",
        refresh_token_env="H_REFRESH",
        client_secret_env="H_CLIENT_SECRET",
    )
    env = {"H_ACCESS": access, "H_REFRESH": refresh, "H_CLIENT_SECRET": info["oauth_client_secret"]}
    return attrs.evolve(settings, options=options, env=env)


def test_oauth_tokens_connect_and_refresh_on_401(sandbox, settings):
    tokens = _oauth_tokens(sandbox)
    assert tokens["access_token"] and tokens["refresh_token"]
    good = plugin.authenticate(
        "hopin", _oauth_settings(sandbox, settings, tokens["access_token"], tokens["refresh_token"])
    )
    assert good.organization_id == sandbox.info()["organization_id"]
    fresh_tokens = _oauth_tokens(sandbox)
    stale = _oauth_settings(
        sandbox, settings, "expired-access-token", fresh_tokens["refresh_token"]
    )
    refreshed = plugin.authenticate("hopin", stale)
    assert refreshed.organization_id == sandbox.info()["organization_id"]


def test_oauth_helpers_authorize_and_exchange(sandbox, settings):
    from eventsync_hopin.auth import authorize_url, exchange_code
    from eventsync_hopin.options import load_options

    oauth = _oauth_settings(sandbox, settings, "unused", "unused")
    url = authorize_url(load_options(oauth), "http://127.0.0.1:1/cb", "st")
    assert url.startswith(f"{sandbox.url}/oauth/authorize?") and "scope=api" in url
    grant = requests.get(url, allow_redirects=False, timeout=5)
    code = parse_qs(urlsplit(grant.headers["Location"]).query)["code"][0]
    tokens = exchange_code(oauth, code, "http://127.0.0.1:1/cb")
    assert tokens["access_token"] and tokens["refresh_token"]
    with pytest.raises(AuthenticationError, match="code exchange refused"):
        exchange_code(oauth, code, "http://127.0.0.1:1/cb")


def test_oauth_refresh_refused_says_so(sandbox, settings):
    broken = _oauth_settings(sandbox, settings, "expired", "not-a-refresh-token")
    with pytest.raises(AuthenticationError) as exc:
        plugin.authenticate("hopin", broken)
    assert "refresh refused" in str(exc.value) and "invalid" in str(exc.value)
