"""Attendance through the Reports API: create, poll, download, parse."""

from __future__ import annotations

import datetime as dt

import pytest
from eventsync.errors import FatalError, RecordError
from eventsync.models import Filter, PullRequest
from eventsync_hopin import plugin


@pytest.fixture
def attended(fresh, admin):
    """Two attendees (one with two sessions) and one no-show."""
    ada = admin.registration(fresh.event_id, fresh.ticket_id, "ada@example.com")
    bob = admin.registration(fresh.event_id, fresh.ticket_id, "bob@example.com")
    admin.registration(fresh.event_id, fresh.ticket_id, "noshow@example.com")
    for reg, start, end, session in (
        (ada, "2026-06-01T09:00:00Z", "2026-06-01T09:45:00Z", "Keynote"),
        (ada, "2026-06-01T10:00:00Z", "2026-06-01T10:30:00Z", "Workshop"),
        (bob, "2026-06-01T09:05:00Z", "2026-06-01T09:10:00Z", "Keynote"),
    ):
        admin.call(
            "POST",
            "/attendance",
            {"registrationId": reg["id"], "joinedAt": start, "leftAt": end, "session": session},
        )
    return ada, bob


def test_attendance_report_round_trip(fresh, admin, attended):
    ada, bob = attended
    admin.call("DELETE", "/counters")
    records = {r.id: r for r in plugin.pull(fresh.connection, PullRequest("attendance"))}
    assert set(records) == {ada["id"], bob["id"]}, "no-shows are not in the attendance report"
    first = records[ada["id"]]
    assert first.object == "attendance" and first.fields["email"] == "ada@example.com"
    assert first.fields["joinedAt"] == dt.datetime(2026, 6, 1, 9, 0, tzinfo=dt.UTC)
    assert first.fields["leftAt"] == dt.datetime(2026, 6, 1, 10, 30, tzinfo=dt.UTC)
    assert first.fields["durationSeconds"] == 75 * 60
    assert first.fields["sessions"] == ["Keynote", "Workshop"]
    assert records[bob["id"]].fields["durationSeconds"] == 300
    calls = admin.counters()
    assert calls["POST /v1/events/<event_id>/reports/<report_type>"] == 1
    assert calls["GET /v1/reports/<report_id>"] >= 1
    assert calls["GET /v1/reports/<report_id>/download"] == 1


def test_attendance_from_duration_only(fresh, admin):
    reg = admin.registration(fresh.event_id, fresh.ticket_id, "short@example.com")
    admin.call("POST", "/attendance", {"email": "short@example.com", "durationSeconds": 2700})
    [row] = plugin.pull(fresh.connection, PullRequest("attendance"))
    assert row.id == reg["id"] and row.fields["durationSeconds"] == 2700
    assert row.fields["leftAt"] - row.fields["joinedAt"] == dt.timedelta(seconds=2700)


def test_attendance_filtered_by_email(fresh, attended):
    found = list(
        plugin.pull(
            fresh.connection,
            PullRequest("attendance", filters=(Filter("email", "=", "bob@example.com"),)),
        )
    )
    assert [r.fields["email"] for r in found] == ["bob@example.com"]


def test_report_type_and_columns_are_configurable(fresh, attended, tweak):
    renamed = plugin.authenticate(
        "hopin",
        tweak(
            fresh.settings, report_columns={"email": "Email", "minutesOnline": "Duration (seconds)"}
        ),
    )
    [one, *_] = plugin.pull(renamed, PullRequest("attendance"))
    assert "minutesOnline" in one.fields and "Join Time" in one.fields, (
        "unmapped columns keep their header"
    )
    wrong_type = plugin.authenticate("hopin", tweak(fresh.settings, report_type="nope"))
    with pytest.raises(RecordError, match="unknown report type"):
        list(plugin.pull(wrong_type, PullRequest("attendance")))
    missing = plugin.authenticate(
        "hopin", tweak(fresh.settings, report_columns={"email": "E-mail"})
    )
    with pytest.raises(FatalError, match="report_columns"):
        list(plugin.pull(missing, PullRequest("attendance")))
