"""The core conformance kit, run against the Hopin plugin and its sandbox."""

from __future__ import annotations

import attrs
from eventsync.testing import RoundTrip, conformance_tests

TICKET_ID = "ConformanceTicket00000001"


def _wrong_key(good):
    return attrs.evolve(good, env={**good.env, good.options["api_key_env"]: "not-the-key"})


TestHopinConformance = conformance_tests(
    system="hopin",
    sandbox_options={"ticket_id": TICKET_ID, "report_ready_after": 0.0},
    bad_settings=_wrong_key,
    round_trip=RoundTrip(
        object="magicLink",
        fields={
            "ticketId": TICKET_ID,
            "email": "kit@example.com",
            "firstName": "Con",
            "lastName": "Formance",
            "registrationId": "CRM-0001",
        },
        bad_fields={
            "ticketId": TICKET_ID,
            "email": "not-an-email",
            "firstName": "Bad",
            "lastName": "Record",
        },
    ),
)
