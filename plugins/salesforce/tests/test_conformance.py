"""The core conformance kit, run against the salesforce plugin and its sandbox."""

from __future__ import annotations

import attrs
from eventsync.testing import RoundTrip, conformance_tests


def _wrong_password(good):
    return attrs.evolve(good, env={**good.env, "SF_PASSWORD": "not-the-password"})


TestSalesforceConformance = conformance_tests(
    system="salesforce",
    sandbox_options={"grant": "password"},
    bad_settings=_wrong_password,
    round_trip=RoundTrip(
        object="Lead",
        fields={"LastName": "Conformance", "Company": "Acme", "Email": "c@example.com"},
        bad_fields={"LastName": None},
    ),
)
