"""ExampleCRM passes the eventsync conformance kit."""

import attrs
from eventsync.testing import RoundTrip, conformance_tests

TestExampleCrmConformance = conformance_tests(
    system="examplecrm",
    bad_settings=lambda good: attrs.evolve(good, env={"EXAMPLECRM_KEY": "wrong"}),
    round_trip=RoundTrip(
        object="Contact",
        fields={"Email": "ada@example.com", "LastName": "Lovelace"},
        bad_fields={"Email": "nameless@example.com"},
    ),
)
