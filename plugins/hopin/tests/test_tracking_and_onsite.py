"""UTM parameters and referrer, onsite registrations and check-ins: the derived registration
fields, the attendance report's check-in time, and the sandbox that records them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import requests
from eventsync.config import parse_config
from eventsync.errors import ConfigurationError
from eventsync.models import PullRequest
from eventsync_hopin import plugin
from eventsync_hopin.options import DEFAULT_REGISTRATION_ATTRIBUTES
from eventsync_hopin.sandbox import start

UTM = "utm_source=newsletter&utm_medium=email&utm_campaign=launch&utm_term=sync&utm_content=cta"


def _registration(fresh: Any, registration_id: str, settings: Any = None) -> Any:
    connection = plugin.authenticate("hopin", settings) if settings else fresh.connection
    [record] = plugin.pull(connection, PullRequest("registration", ids=(registration_id,)))
    return record


def _ticket_url(admin: Any, fresh: Any) -> str:
    ticket = admin.call("GET", "/state")["tickets"][fresh.ticket_id]
    return str(ticket["attributes"]["registrationUrl"])


def test_utm_parameters_and_referrer_from_the_registration_url(fresh, admin):
    url = f"{_ticket_url(admin, fresh)}&{UTM}"
    answer = requests.post(
        url,
        data={"email": "utm@example.com", "firstName": "Uma", "lastName": "Tracked"},
        headers={"Referer": "https://blog.example.com/launch"},
        timeout=5,
    )
    assert answer.status_code == 201, answer.text
    record = _registration(fresh, answer.json()["data"]["id"])
    assert record.get("ticketId") == fresh.ticket_id and record.get("email") == "utm@example.com"
    assert {f: record.get(f) for f in ("utmSource", "utmMedium", "utmCampaign")} == {
        "utmSource": "newsletter",
        "utmMedium": "email",
        "utmCampaign": "launch",
    }
    assert (record.get("utmTerm"), record.get("utmContent")) == ("sync", "cta")
    assert record.get("referrer") == "https://blog.example.com/launch"
    assert record.get("channel") == "online" and record.get("onsite") is False


def test_a_registration_without_tracking_has_empty_tracking_fields(fresh, admin):
    made = admin.registration(fresh.event_id, fresh.ticket_id, "plain@example.com")
    record = _registration(fresh, made["id"])
    for field in DEFAULT_REGISTRATION_ATTRIBUTES:
        if field != "channel":
            assert field in record.fields and record.get(field) is None, field


def test_the_registration_page_refuses_an_unknown_code_and_a_bad_email(sandbox, admin, fresh):
    url = _ticket_url(admin, fresh)
    unknown = requests.post(url.rsplit("=", 1)[0] + "=NOPE", data={"email": "a@b.co"}, timeout=5)
    assert unknown.status_code == 404 and "NOPE" in unknown.text
    bad = requests.post(url, data={"email": "not-an-email"}, timeout=5)
    assert bad.status_code == 422


def test_registration_attributes_reads_other_wire_paths(fresh, admin, tweak):
    made = admin.registration(
        fresh.event_id,
        fresh.ticket_id,
        "nested@example.com",
        tracking={"utm_source": "partner"},
        utmMedium="banner",
        referrer="https://elsewhere.example.com",
    )
    settings = tweak(
        fresh.settings, registration_attributes={"utmSource": "tracking.utm_source", "referrer": ""}
    )
    record = _registration(fresh, made["id"], settings)
    assert record.get("utmSource") == "partner"
    assert record.get("utmMedium") == "banner", "fields left out keep their default paths"
    assert record.get("referrer") is None, '"" leaves the field empty'


def test_an_unknown_registration_field_is_refused_with_its_path(settings, tweak):
    with pytest.raises(ConfigurationError) as exc:
        plugin.authenticate("hopin", tweak(settings, registration_attributes={"utmSorce": "x"}))
    problem = str(exc.value)
    assert "$.orgs.acme.systems.hopin.registration_attributes" in problem
    assert "'utmSorce'" in problem and "utmSource" in problem


def test_an_unknown_registration_field_is_refused_when_the_file_is_read(settings):
    options = {**settings.options, "registration_attributes": {"utmSorce": "x"}}
    data = {
        "orgs": {
            "acme": {
                "plan": "enterprise",
                "plugins": ["hopin"],
                "event_platform": "hopin",
                "systems": {"hopin": options},
            }
        }
    }
    with pytest.raises(ConfigurationError) as exc:
        parse_config(data, source="<test>")
    assert "registration_attributes: unknown field 'utmSorce'" in str(exc.value)


def test_an_onsite_registration_is_checked_in_with_a_badge(fresh, admin):
    made = admin.call(
        "POST",
        f"/events/{fresh.event_id}/onsite",
        {"ticketId": fresh.ticket_id, "email": "door@example.com", "firstName": "Dora"},
        expect=201,
    )["data"]
    record = _registration(fresh, made["id"])
    assert record.get("channel") == "onsite" and record.get("onsite") is True
    assert isinstance(record.get("checkedInAt"), dt.datetime)
    assert isinstance(record.get("badgePrintedAt"), dt.datetime)


def test_an_online_registration_checked_in_at_the_venue(fresh, admin):
    made = admin.registration(fresh.event_id, fresh.ticket_id, "early@example.com")
    at = "2026-06-01T08:30:00Z"
    admin.call("POST", f"/registrations/{made['id']}/checkIn", {"checkedInAt": at})
    record = _registration(fresh, made["id"])
    assert record.get("channel") == "online" and record.get("onsite") is False
    assert record.get("checkedInAt") == dt.datetime(2026, 6, 1, 8, 30, tzinfo=dt.UTC)
    assert record.get("badgePrintedAt") is None
    # Checking in again keeps the first time.
    admin.call("POST", f"/registrations/{made['id']}/checkIn", {"badgePrinted": True})
    again = _registration(fresh, made["id"])
    assert again.get("checkedInAt") == dt.datetime(2026, 6, 1, 8, 30, tzinfo=dt.UTC)
    assert isinstance(again.get("badgePrintedAt"), dt.datetime)


def test_onsite_channel_values_decide_the_onsite_flag(fresh, admin, tweak):
    made = admin.registration(fresh.event_id, fresh.ticket_id, "kiosk@example.com", channel="Kiosk")
    assert _registration(fresh, made["id"]).get("onsite") is False
    settings = tweak(fresh.settings, onsite_channel_values=["door", "kiosk"])
    assert _registration(fresh, made["id"], settings).get("onsite") is True


def test_the_attendance_report_carries_check_ins(fresh, admin):
    online = admin.registration(fresh.event_id, fresh.ticket_id, "online@example.com")
    both = admin.registration(fresh.event_id, fresh.ticket_id, "both@example.com")
    admin.registration(fresh.event_id, fresh.ticket_id, "absent@example.com")
    door = admin.call(
        "POST",
        f"/events/{fresh.event_id}/onsite",
        {
            "ticketId": fresh.ticket_id,
            "email": "door@example.com",
            "checkedInAt": "2026-06-01T09:00:00Z",
        },
        expect=201,
    )["data"]
    for reg in (online, both):
        admin.call(
            "POST",
            "/attendance",
            {
                "registrationId": reg["id"],
                "joinedAt": "2026-06-01T10:00:00Z",
                "leftAt": "2026-06-01T10:30:00Z",
            },
        )
    admin.call(
        "POST", f"/registrations/{both['id']}/checkIn", {"checkedInAt": "2026-06-01T09:15:00Z"}
    )
    rows = {r.get("email"): r for r in plugin.pull(fresh.connection, PullRequest("attendance"))}
    assert set(rows) == {"online@example.com", "both@example.com", "door@example.com"}
    assert rows["door@example.com"].id == door["id"]
    assert rows["door@example.com"].get("checkedInAt") == dt.datetime(
        2026, 6, 1, 9, 0, tzinfo=dt.UTC
    )
    assert rows["door@example.com"].get("joinedAt") is None
    assert rows["door@example.com"].get("durationSeconds") == 0
    assert rows["both@example.com"].get("checkedInAt") == dt.datetime(
        2026, 6, 1, 9, 15, tzinfo=dt.UTC
    )
    assert rows["online@example.com"].get("checkedInAt") is None


@pytest.fixture(scope="module")
def report_without_check_ins() -> Iterator[Any]:
    """A sandbox whose attendance report knows nothing of onsite check-ins."""
    handle = start({"report_check_ins": False, "report_ready_after": 0.05})
    try:
        yield handle
    finally:
        handle.stop()


@pytest.mark.parametrize("merge", [False, True])
def test_attendance_check_ins_adds_those_the_report_lacks(report_without_check_ins, merge):
    sandbox = report_without_check_ins
    info = sandbox.info()
    email = f"door-{merge}@example.com"
    door = requests.post(
        f"{info['admin_url']}/events/{info['event_id']}/onsite",
        json={"ticketId": info["ticket_id"], "email": email},
        timeout=5,
    ).json()["data"]
    settings = sandbox.settings("acme")
    options = {**settings.options, "report_poll_interval": 0.02, "attendance_check_ins": merge}
    connection = plugin.authenticate("hopin", attrs.evolve(settings, options=options))
    rows = {r.id: r for r in plugin.pull(connection, PullRequest("attendance"))}
    if not merge:
        assert door["id"] not in rows, "this report does not list onsite check-ins"
        return
    row = rows[door["id"]]
    assert row.get("email") == email and row.get("registrationId") == door["id"]
    assert isinstance(row.get("checkedInAt"), dt.datetime) and row.get("durationSeconds") == 0


def test_the_schema_declares_the_tracking_and_onsite_fields(fresh):
    schema = plugin.discover_schema(fresh.connection, ["registration", "attendance"])
    registration = schema.object("registration")
    for name in ("utmSource", "utmMedium", "utmCampaign", "utmTerm", "utmContent", "referrer"):
        assert registration.field(name) is not None, name
    assert registration.field("onsite").type == "boolean"
    assert registration.field("checkedInAt").type == "datetime"
    assert registration.field("badgePrintedAt").type == "datetime"
    assert schema.object("attendance").field("checkedInAt").type == "datetime"
