"""The core conformance kit, run against the Hopin plugin and its sandbox.

Hopin is the event platform, so the kit writes what the flows write there: registrations
(inserted, their metadata updated, pulled since a watermark) and magic-link invitations
(upserted with look-before-create: a matched invitation is kept as it is).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json

import attrs
import requests
from eventsync.models import HttpRequest
from eventsync.testing import (
    Controls,
    NotificationSamples,
    ObjectSpec,
    SystemKit,
    Target,
    conformance_tests,
    sandbox_target,
    unique,
    unique_email,
)

TICKET_ID = "ConformanceTicket00000001"
REGISTRATIONS = "GET /v1/events/<event_id>/registrations"


def _wrong_key(good):
    return attrs.evolve(good, env={**good.env, good.options["api_key_env"]: "not-the-key"})


def _controls(sandbox) -> Controls:
    admin = sandbox.info()["admin_url"]

    def lose_next_answer() -> None:
        rule = {"method": "POST", "path": "/v1/tickets/*/magicLinks", "status": 503}
        requests.post(
            f"{admin}/faults", json={**rule, "when": "after", "count": 1}, timeout=10
        ).raise_for_status()

    def page_reads() -> int:
        calls = requests.get(f"{admin}/counters", timeout=10).json()["calls"]
        return int(calls.get(REGISTRATIONS, 0))

    return Controls(lose_next_answer=lose_next_answer, page_reads=page_reads)


def _delivery(info: dict, secret: str, **changes: object) -> HttpRequest:
    payload = {
        "id": unique("delivery"),
        "signal": "registrationCreated",
        "occurredAt": dt.datetime.now(dt.UTC).isoformat(),
        "organizationId": info["organization_id"],
        "eventId": info["event_id"],
        "data": {"id": "reg-1", "type": "registration", "attributes": {"email": "k@example.com"}},
        **changes,
    }
    body = json.dumps(payload).encode()
    signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", info["signature_header"]: f"sha256={signature}"}
    return HttpRequest("POST", "/hooks/conformance/hopin", headers, body)


def _notifications(target: Target) -> NotificationSamples:
    info = target.handle.info()
    signed = _delivery(info, info["webhook_secret"])
    return NotificationSamples(
        settings=target.settings,
        signed=signed,
        unsigned=attrs.evolve(signed, headers={"Content-Type": "application/json"}),
        tampered=attrs.evolve(signed, body=signed.body.replace(b"reg-1", b"reg-2")),
        foreign=_delivery(info, info["webhook_secret"], organizationId="SomeOtherOrganisation"),
        stale=_delivery(info, info["webhook_secret"], occurredAt="2020-01-01T00:00:00Z"),
    )


def _person() -> dict[str, str]:
    return {"email": unique_email(), "firstName": unique("Con"), "lastName": unique("Formance")}


TestHopinConformance = conformance_tests(
    SystemKit(
        system="hopin",
        target=sandbox_target(
            "hopin",
            {"ticket_id": TICKET_ID, "report_ready_after": 0.0},
            bad_settings=_wrong_key,
            controls=_controls,
        ),
        objects=(
            ObjectSpec(
                object="registration",
                fresh=lambda: {"ticketId": TICKET_ID, **_person()},
                bad=lambda: {"ticketId": TICKET_ID, **_person(), "email": "not-an-email"},
                changes=lambda: {"metadata": {"kit": unique()}},
                missing_id="NoSuchRegistration000001",
                filter_field="email",
            ),
            ObjectSpec(
                object="magicLink",
                fresh=lambda: {"ticketId": TICKET_ID, **_person(), "registrationId": unique("CRM")},
                match_key="email",
                upsert_writes=False,
                updates=False,
                watermark=False,
            ),
        ),
        notifications=_notifications,
        # Until plugin.py declares system_profiles. Hopin has no batch API: the plugin writes
        # item by item, so any limit is honoured; a small one keeps the check quick.
        max_batch=10,
    )
)
