"""authenticate: every grant, bad credentials, session renewal, TLS trust, API usage."""

from __future__ import annotations

import attrs
import pytest
import trustme
from eventsync.errors import AuthenticationError, ConfigurationError, RetryableError
from eventsync.models import PullRequest
from eventsync_salesforce import plugin
from eventsync_salesforce.connection import SalesforceConnection

GRANTS = ["jwt", "password", "client_credentials", "refresh_token", "access_token"]


@pytest.mark.parametrize("grant", GRANTS)
def test_every_grant_authenticates_and_queries(sandbox, grant):
    conn = plugin.authenticate("salesforce", sandbox.settings("acme", grant=grant))
    assert isinstance(conn, SalesforceConnection)
    assert (conn.system, conn.org) == ("salesforce", "acme")
    assert conn.sf.query("SELECT COUNT() FROM User")["totalSize"] >= 2


def test_other_systems_are_not_ours(sandbox):
    assert plugin.authenticate("hopin", sandbox.settings("acme")) is None


def _with_env(settings, **env):
    return attrs.evolve(settings, env={**settings.env, **env})


@pytest.mark.parametrize(
    ("grant", "change", "error", "description"),
    [
        ("password", {"SF_PASSWORD": "wrong"}, "invalid_grant", "authentication failure"),
        ("password", {"SF_CLIENT_SECRET": "wrong"}, "invalid_client", "invalid client credentials"),
        (
            "client_credentials",
            {"SF_CLIENT_SECRET": "wrong"},
            "invalid_client",
            "invalid client credentials",
        ),
        (
            "refresh_token",
            {"SF_REFRESH_TOKEN": "5Aepnope"},
            "invalid_grant",
            "expired access/refresh token",
        ),
    ],
)
def test_bad_secrets_raise_authentication_error(sandbox, grant, change, error, description):
    settings = _with_env(sandbox.settings("acme", grant=grant), **change)
    with pytest.raises(AuthenticationError) as exc:
        plugin.authenticate("salesforce", settings)
    assert (exc.value.system, exc.value.error, exc.value.description) == (
        "salesforce",
        error,
        description,
    )
    assert "wrong" not in str(exc.value)


def test_jwt_signed_with_another_key_is_refused(sandbox, tmp_path):
    other = trustme.CA().issue_cert("intruder", key_type=trustme.KeyType.RSA)
    key = tmp_path / "other.pem"
    other.private_key_pem.write_to_path(str(key))
    settings = sandbox.settings("acme", grant="jwt", private_key_file=str(key))
    with pytest.raises(AuthenticationError) as exc:
        plugin.authenticate("salesforce", settings)
    assert (exc.value.error, exc.value.description) == ("invalid_grant", "invalid assertion")


def test_jwt_for_unknown_user_and_client(sandbox):
    with pytest.raises(AuthenticationError) as exc:
        plugin.authenticate("salesforce", sandbox.settings("acme", username="ghost@x"))
    assert exc.value.error == "invalid_grant"
    with pytest.raises(AuthenticationError) as exc:
        plugin.authenticate("salesforce", sandbox.settings("acme", client_id="3MVGnope"))
    assert (exc.value.error, exc.value.description) == (
        "invalid_client_id",
        "client identifier invalid",
    )


def test_missing_settings_are_configuration_errors(sandbox):
    settings = sandbox.settings("acme", grant="password")
    broken = attrs.evolve(settings, env={})
    with pytest.raises(ConfigurationError) as exc:
        plugin.authenticate("salesforce", broken)
    assert "$.orgs.acme.systems.salesforce" in str(exc.value)
    with pytest.raises(ConfigurationError):
        plugin.authenticate(
            "salesforce", attrs.evolve(settings, options={**settings.options, "grant": "saml"})
        )


def test_certificate_is_verified_against_the_configured_ca(sandbox):
    """Without the sandbox CA the TLS handshake fails: verification is never disabled."""
    untrusting = sandbox.settings("acme", ca_bundle=None)
    with pytest.raises(RetryableError) as exc:
        plugin.authenticate("salesforce", untrusting)
    assert exc.value.code == "CONNECTION_ERROR"
    assert "CERTIFICATE_VERIFY_FAILED" in str(exc.value)


def test_session_renewed_transparently_after_forced_expiry(sandbox, admin, unique):
    conn = plugin.authenticate("salesforce", sandbox.settings("acme"))
    conn.sf.Lead.create({"LastName": "Renew", "Company": unique})
    assert admin.post("/sessions/expire")["expired"] >= 1
    records = list(plugin.pull(conn, PullRequest("Lead", fields=("LastName",), filters=())))
    assert records
    assert conn.renewals == 1
    admin.post("/sessions/expire")
    job = conn.call(
        "bulk2",
        lambda: conn.sf.bulk2.Lead.insert(
            records=[{"LastName": "B", "Company": unique}], wait=0.01
        ),
    )
    assert job[0]["numberRecordsProcessed"] == 1
    assert conn.renewals == 2


def test_given_access_token_cannot_be_renewed(sandbox, admin):
    conn = plugin.authenticate("salesforce", sandbox.settings("acme", grant="access_token"))
    admin.post("/sessions/expire")
    with pytest.raises(AuthenticationError) as exc:
        list(plugin.pull(conn, PullRequest("User", fields=("Id",))))
    assert exc.value.error == "INVALID_SESSION_ID"


def test_api_usage_read_from_every_response(conn, admin):
    conn.sf.limits()
    usage = plugin.api_usage(conn)
    assert usage is not None
    assert usage.used == admin.calls()
    assert usage.limit == admin.get("/counters")["daily_limit"]
    assert 0 < usage.share < 1
    assert plugin.api_usage(object()) is None


def test_jwt_verified_against_a_configured_certificate(tmp_path):
    signer = trustme.CA().issue_cert("connected-app", key_type=trustme.KeyType.RSA)
    cert, key = tmp_path / "app.crt", tmp_path / "app.key"
    signer.cert_chain_pems[0].write_to_path(str(cert))
    signer.private_key_pem.write_to_path(str(key))
    handle = plugin.start_sandbox(
        "salesforce", {"jwt_certificate_file": str(cert), "jwt_private_key_file": str(key)}
    )
    try:
        assert plugin.authenticate("salesforce", handle.settings("acme")).org == "acme"
        other = tmp_path / "other.key"
        trustme.CA().issue_cert("x", key_type=trustme.KeyType.RSA).private_key_pem.write_to_path(
            str(other)
        )
        with pytest.raises(AuthenticationError):
            plugin.authenticate("salesforce", handle.settings("acme", private_key_file=str(other)))
    finally:
        handle.stop()
