"""ExampleCRM passes the eventsync conformance kit, against its own sandbox.

The sandbox's admin API gives the kit its fault controls: batch answers out of order (as
HubSpot's come back), a lost answer, and a counter of the pages served. Against a real
ExampleCRM account the same kit runs with ``Target(settings=...)`` and no controls; the checks
that need them are then reported as not applicable.
"""

from __future__ import annotations

import time

import attrs
import requests
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
from eventsync_examplecrm.sandbox import ExampleSandbox
from eventsync_examplecrm.webhooks import signed_request


def controls(sandbox: ExampleSandbox) -> Controls:
    """The kit's fault controls, through the sandbox's admin API."""

    def faults(**spec: object) -> None:
        requests.post(f"{sandbox.admin_url}/faults", json=spec, timeout=10).raise_for_status()

    def page_reads() -> int:
        calls = requests.get(f"{sandbox.admin_url}/counters", timeout=10).json()["calls"]
        return calls.get("search", 0) + calls.get("batch/read", 0)

    return Controls(
        shuffle_answers=lambda on: faults(shuffle=on),
        lose_next_answer=lambda: faults(lose_answers=1),
        page_reads=page_reads,
    )


def notifications(target: Target) -> NotificationSamples:
    """Deliveries as the sandbox signs them, and the ways they can be wrong."""
    info = target.handle.info()
    secret, path = info["webhook_secret"], "/hooks/conformance/examplecrm"
    event = {"eventId": unique("evt"), "object": "contact", "objectId": "1001", "change": "updated"}
    payload = {"accountId": info["account_id"], "events": [event]}
    signed = signed_request(secret, path, payload)
    return NotificationSamples(
        settings=target.settings,
        signed=signed,
        unsigned=attrs.evolve(signed, headers={"Content-Type": "application/json"}),
        tampered=attrs.evolve(signed, body=signed.body.replace(b"1001", b"1002")),
        foreign=signed_request(secret, path, {**payload, "accountId": "9999"}),
        stale=signed_request(secret, path, payload, int((time.time() - 3600) * 1000)),
    )


def wrong_key(good):
    """The sandbox's settings with an API key it refuses."""
    return attrs.evolve(good, env={**good.env, good.options["api_key_env"]: "not-the-key"})


def contact() -> dict[str, str]:
    """A contact no earlier call made (emails are unique in ExampleCRM)."""
    return {"email": unique_email(), "firstname": unique("Ada"), "lastname": unique("Lovelace")}


KIT = SystemKit(
    system="examplecrm",
    target=sandbox_target("examplecrm", bad_settings=wrong_key, controls=controls),
    objects=(
        ObjectSpec(
            object="contact",
            fresh=contact,
            bad=lambda: {"email": "not-an-email", "firstname": "Bad"},
            match_key="email",
            missing_id="999999999",
            deletes=True,
        ),
    ),
    notifications=notifications,
)

TestExampleCrmConformance = conformance_tests(KIT)
