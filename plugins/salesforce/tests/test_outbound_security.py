"""Outbound Messages: the URL token, exact organization ids and the per-message limits."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from eventsync.config import parse_config
from eventsync.errors import BadNotification, ConfigurationError
from eventsync.models import HttpRequest, SystemSettings
from eventsync_salesforce import outbound, plugin
from eventsync_salesforce.orgid import case_safe_suffix, org_id_problem, same_org
from eventsync_salesforce.sandbox import ids as sandbox_ids

ORG_ID = "00Do0000000e0vQEAQ"
TOKEN = "current-token-0123456789abcdef"
PREVIOUS = "previous-token-0123456789abcdef"


def envelope(org: str = ORG_ID, notifications: int = 1, extra: str = "") -> bytes:
    notes = "".join(
        f"<Notification><Id>04l1N00000HVE{i:05d}</Id>"
        f'<sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"<sf:Id>00Q1N00000bS{i:06d}</sf:Id>{extra}</sObject></Notification>"
        for i in range(notifications)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{org}</OrganizationId>{notes}</notifications>"
        "</soapenv:Body></soapenv:Envelope>"
    ).encode()


def request(body: bytes | None = None, suffix: str = TOKEN) -> HttpRequest:
    return HttpRequest(
        "POST",
        f"/hooks/acme/salesforce/{suffix}".rstrip("/"),
        {"Content-Type": "text/xml; charset=utf-8"},
        envelope() if body is None else body,
        suffix=suffix,
    )


def settings(**options: str) -> SystemSettings:
    env = {"SF_OUTBOUND_TOKEN": TOKEN, "SF_OUTBOUND_TOKEN_OLD": PREVIOUS}
    base = {"org_id": ORG_ID, "outbound_token_env": "SF_OUTBOUND_TOKEN"}
    merged = {k: v for k, v in {**base, **options}.items() if v is not None}
    return SystemSettings("salesforce", "acme", options=merged, env=env)


def refused(http: HttpRequest, configured: SystemSettings | None = None) -> BadNotification:
    with pytest.raises(BadNotification) as exc:
        plugin.parse_notification("salesforce", http, configured or settings())
    return exc.value


# --- organization ids ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("id15", "suffix"),
    [
        ("00Do0000000e0vQ", "EAQ"),
        ("00D000000000001", "EAA"),
        ("00D5g00000SBX01", "EAH"),
        ("AAAAAAAAAAAAAAA", "555"),
        ("aaaaaaaaaaaaaaa", "AAA"),
        ("aBcDeFgHiJkLmNo", "KVK"),
    ],
)
def test_case_safe_suffix(id15, suffix):
    assert case_safe_suffix(id15) == suffix
    assert sandbox_ids.case_safe(id15) == id15 + suffix  # the sandbox agrees


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (ORG_ID, None),
        (ORG_ID[:15], None),
        ("00Do0000000e0vQEAA", "must be EAQ"),
        ("00Do0000000e0vQeaq", "must be EAQ"),  # the checksum is upper case
        ("00DO0000000E0VQEAQ", "must be MA0"),  # case changed: another id
        ("00Do0000000e0v", "15- or 18-character"),
        ("00Do0000000e0vQE", "15- or 18-character"),
        ("00Do0000000e0v-EAQ", "15- or 18-character"),
        ("001o0000000e0vQ", "starts with 00D"),
    ],
)
def test_org_id_problems(value, words):
    problem = org_id_problem(value)
    assert (problem is None) if words is None else (words in (problem or ""))


@pytest.mark.parametrize(
    ("given", "expected", "same"),
    [
        (ORG_ID, ORG_ID, True),
        (ORG_ID[:15], ORG_ID, True),
        (ORG_ID, ORG_ID[:15], True),
        (ORG_ID.lower(), ORG_ID, False),
        (ORG_ID[:15].lower(), ORG_ID, False),
        (ORG_ID.upper(), ORG_ID, False),
        ("00Do0000000e0vq" + case_safe_suffix("00Do0000000e0vq"), ORG_ID, False),
        ("00Do0000000e0vQEAA", ORG_ID, False),
        ("", ORG_ID, False),
    ],
)
def test_same_org_is_exact(given, expected, same):
    assert same_org(given, expected) is same


def test_a_misspelt_org_id_is_a_configuration_error():
    data = {
        "engine": {"state": "state.sqlite"},
        "orgs": {
            "acme": {
                "plan": "enterprise",
                "plugins": ["salesforce"],
                "crm": "salesforce",
                "systems": {"salesforce": {"org_id": "00Do0000000e0vQEAA"}},
            }
        },
    }
    with pytest.raises(ConfigurationError) as exc:
        parse_config(data, source="test")
    assert "org_id '00Do0000000e0vQEAA': its last three characters must be EAQ" in str(exc.value)


@pytest.mark.parametrize(
    "org",
    [ORG_ID.lower(), ORG_ID.upper(), "00Do0000000e0vq", ORG_ID[:15] + "EAA", "00D000000000001EAA"],
)
def test_messages_from_an_id_differing_in_case_or_checksum_are_refused(org):
    error = refused(request(envelope(org)))
    assert error.status == 403 and "does not belong" in error.message


def test_both_forms_of_the_right_id_are_accepted():
    for org in (ORG_ID, ORG_ID[:15]):
        note = plugin.parse_notification("salesforce", request(envelope(org)), settings())
        assert note.org_id == org and len(note.entities) == 1


# --- the token ----------------------------------------------------------------------------


def test_a_configured_token_is_required_on_every_message():
    note = plugin.parse_notification("salesforce", request(), settings())
    assert note.entities and note.replay_horizon == outbound.REPLAY_HORIZON
    plain = refused(request(suffix=""))
    assert plain.status == 403 and "needs the organisation's token" in plain.message
    wrong = refused(request(suffix=TOKEN[:-1] + "X"))
    assert wrong.status == 403 and wrong.message == "wrong token in the endpoint URL"
    assert TOKEN not in plain.message + wrong.message


def test_non_ascii_and_overlong_tokens_are_refused_not_crashing():
    for given in ("tökén-0123456789abcdef", "x" * 10_000, TOKEN + "/extra"):
        assert refused(request(suffix=given)).status == 403


def test_rotation_accepts_the_current_and_the_previous_token():
    rotating = settings(outbound_token_previous_env="SF_OUTBOUND_TOKEN_OLD")
    for token in (TOKEN, PREVIOUS):
        assert plugin.parse_notification("salesforce", request(suffix=token), rotating).entities
    assert refused(request(suffix=PREVIOUS)).status == 403  # once the rotation is over
    assert refused(request(suffix="another-token-0123456789"), rotating).status == 403


def test_without_a_token_only_the_plain_route_is_served():
    untokened = settings(outbound_token_env=None)
    assert plugin.parse_notification("salesforce", request(suffix=""), untokened).entities
    error = refused(request(suffix=TOKEN), untokened)
    assert error.status == 403 and "no outbound_token_env" in error.message


@pytest.mark.parametrize(
    ("options", "env", "words"),
    [
        ({"outbound_token_env": "SF_UNSET"}, {}, "SF_UNSET is not set"),
        ({"outbound_token_env": "SF_SHORT"}, {"SF_SHORT": "short"}, "shorter than 16"),
        ({"outbound_token_env": "SF_EMPTY"}, {"SF_EMPTY": ""}, "shorter than 16"),
        ({"outbound_token_previous_env": "SF_UNSET"}, {}, "SF_UNSET is not set"),
    ],
)
def test_a_broken_token_setting_refuses_everything(options, env, words):
    configured = settings(**options)
    configured = SystemSettings(
        "salesforce", "acme", options=configured.options, env={**configured.env, **env}
    )
    for suffix in ("", TOKEN, "short"):
        error = refused(request(suffix=suffix), configured)
        assert error.status == 403 and words in error.message


def test_the_token_is_checked_before_the_body_is_read():
    error = refused(request(b"<not xml", suffix="forged-0123456789abcdef"))
    assert error.status == 403


# --- limits -------------------------------------------------------------------------------


def test_at_most_100_notifications_a_message():
    note = plugin.parse_notification("salesforce", request(envelope(notifications=100)), settings())
    assert len(note.entities) == len(note.dedupe_ids) == 100
    error = refused(request(envelope(notifications=101)))
    assert error.status == 413 and "more than 100 notifications" in error.message
    assert refused(request(envelope(notifications=5000))).status == 413


def test_deep_xml_is_refused():
    deep = "<sf:x>" * 50 + "</sf:x>" * 50
    error = refused(request(envelope(extra=deep)))
    assert error.status == 400 and "deeper than 12" in error.message
    hostile = b"<a>" * 200_000 + b"</a>" * 200_000
    assert refused(request(hostile)).status == 400


# --- preflight ----------------------------------------------------------------------------


def _org(options, crm="salesforce", imports=True):
    flows = {"import_registrations": SimpleNamespace(enabled=True)} if imports else {}
    return SimpleNamespace(name="acme", crm=crm, systems={"salesforce": options}, flows=flows)


def test_preflight_warns_while_messages_are_trusted_on_the_org_id_alone():
    [finding] = plugin.preflight(_org({"org_id": ORG_ID}), {})
    assert (finding.severity, finding.code) == ("warning", "outbound_token")
    assert finding.where == "$.orgs.acme.systems.salesforce.outbound_token_env"
    assert "/hooks/acme/salesforce/TOKEN" in finding.fix
    tokened = {"org_id": ORG_ID, "outbound_token_env": "SF_OUTBOUND_TOKEN"}
    assert plugin.preflight(_org(tokened), {}) == []
    assert plugin.preflight(_org({"org_id": ORG_ID}, imports=False), {}) == []
    assert plugin.preflight(_org({"org_id": ORG_ID}, crm="other"), {}) == []
