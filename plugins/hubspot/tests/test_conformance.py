"""HubSpot passes the eventsync conformance kit, against its own sandbox.

The sandbox's admin API gives the kit its fault controls: batch answers in a shuffled order
(HubSpot's come back in any order, and the sandbox shuffles them always), a lost answer (the
write is made, the answer is a 502) and a counter of the pages served. Against a real HubSpot
portal the same kit runs with ``Target(settings=...)`` and no controls; the checks that need
them are then reported as not applicable.
"""

from __future__ import annotations

import time
from typing import Any

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
from eventsync_hubspot.sandbox.wiring import sandbox_options
from eventsync_hubspot.webhooks import event as webhook_event
from eventsync_hubspot.webhooks import signed_request

PATH = "/hooks/conformance/hubspot"


def controls(sandbox: Any) -> Controls:
    """The kit's fault controls, through the sandbox's admin API."""

    def lose_next_answer() -> None:
        fault = {"endpoint": "*", "status": 502, "when": "after", "times": 1}
        requests.post(f"{sandbox.admin_url}/faults", json=fault, timeout=10).raise_for_status()

    def page_reads() -> int:
        calls = requests.get(f"{sandbox.admin_url}/counters", timeout=10).json()["calls"]
        return calls.get("search", 0) + calls.get("read", 0)

    return Controls(
        shuffle_answers=lambda on: None,  # always shuffled
        lose_next_answer=lose_next_answer,
        page_reads=page_reads,
    )


def _request(url: str, secret: str, events: list[dict[str, Any]], stamp: int | None = None):
    body, headers = signed_request(secret, url, events, stamp)
    return HttpRequest("POST", PATH, {**headers, "Host": url.split("/")[2]}, body)


def notifications(target: Target) -> NotificationSamples:
    """Deliveries as HubSpot signs them, and the ways they can be wrong."""
    info = target.handle.info()
    secret, url = info["client_secret"], f"http://127.0.0.1:8080{PATH}"
    event = webhook_event(
        info["portal_id"],
        1001,
        "contact.propertyChange",
        propertyName="firstname",
        propertyValue="Ada",
    )
    signed = _request(url, secret, [event])
    return NotificationSamples(
        settings=target.settings,
        signed=signed,
        unsigned=attrs.evolve(signed, headers={"Content-Type": "application/json"}),
        tampered=attrs.evolve(signed, body=signed.body.replace(b"1001", b"1002")),
        foreign=_request(url, secret, [{**event, "portalId": 999}]),
        stale=_request(url, secret, [event], int((time.time() - 3600) * 1000)),
    )


def wrong_token(good):
    """The sandbox's settings with an access token it refuses."""
    return attrs.evolve(good, env={**good.env, good.options["access_token_env"]: "pat-na1-nope"})


def contact() -> dict[str, str]:
    """A contact no earlier call made (emails are unique in HubSpot)."""
    return {"email": unique_email(), "firstname": unique("Ada"), "lastname": unique("Lovelace")}


KIT = SystemKit(
    system="hubspot",
    target=sandbox_target(
        "hubspot", sandbox_options(None), bad_settings=wrong_token, controls=controls
    ),
    objects=(
        ObjectSpec(
            object="contacts",
            fresh=contact,
            bad=lambda: {"email": "not-an-email", "firstname": "Bad"},
            match_key="email",
            missing_id="999999999",
        ),
    ),
    notifications=notifications,
)

TestHubSpotConformance = conformance_tests(KIT)
