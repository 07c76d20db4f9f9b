"""The core conformance kit, run against the salesforce plugin and its sandbox."""

from __future__ import annotations

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

ENVELOPE = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org}</OrganizationId>
   <Notification>
    <Id>04l1N00000HVEMpQAP</Id>
    <sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>00Q1N00000bS2eOUAS</sf:Id><sf:Email>kit@example.com</sf:Email>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"""


def _wrong_password(good):
    return attrs.evolve(good, env={**good.env, "SF_PASSWORD": "not-the-password"})


def _controls(sandbox) -> Controls:
    """The sandbox counts SOQL pages (query and queryMore) per endpoint category."""
    info = sandbox.info()

    def page_reads() -> int:
        counters = requests.get(
            f"{info['admin_url']}/counters",
            headers={"X-Admin-Token": info["admin_token"]},
            verify=info["ca_bundle"],
            timeout=10,
        ).json()
        return int(counters["by_endpoint"].get("query", 0))

    def lose_next_answer() -> None:
        # The next Collections write takes effect, then its answer is lost as a 503.
        requests.post(
            f"{info['admin_url']}/faults",
            json={"endpoint": "collections", "status": 503, "times": 1, "when": "after"},
            headers={"X-Admin-Token": info["admin_token"]},
            verify=info["ca_bundle"],
            timeout=10,
        ).raise_for_status()

    return Controls(page_reads=page_reads, lose_next_answer=lose_next_answer)


#: The sandbox's settings then carry it as outbound_token_env: the endpoint URL's secret.
TOKEN = "conformance-outbound-token-0123456789"


def _message(org_id: str, token: str = TOKEN) -> HttpRequest:
    body = ENVELOPE.format(org=org_id).encode()
    return HttpRequest(
        "POST",
        f"/hooks/conformance/salesforce/{token}",
        {"Content-Type": "text/xml"},
        body,
        suffix=token,
    )


def _notifications(target: Target) -> NotificationSamples:
    org_id = target.settings.options["org_id"]
    return NotificationSamples(
        settings=target.settings,
        signed=_message(org_id),
        unsigned=_message(org_id, token=""),
        foreign=_message("00D000000000001EAA"),
    )


def _lead() -> dict[str, str]:
    return {"LastName": unique("Kit"), "Company": "Acme", "Email": unique_email()}


UNSIGNED = (
    "Outbound Messages carry no signature over their body: the token in the URL authenticates "
    "the sender (notification_unsigned_rejected) and the OrganizationId is checked "
    "(notification_foreign_rejected)"
)

TestSalesforceConformance = conformance_tests(
    SystemKit(
        system="salesforce",
        target=sandbox_target(
            "salesforce",
            {"grant": "password", "outbound_token": TOKEN},
            bad_settings=_wrong_password,
            controls=_controls,
        ),
        objects=(
            ObjectSpec(
                object="Lead",
                fresh=_lead,
                bad=lambda: {"LastName": None, "Company": "Acme"},
                match_key="Email",
                missing_id="00Q000000000001",
                deletes=True,
                deleted_visible=True,
            ),
        ),
        notifications=_notifications,
        min_page_size=200,  # Sforce-Query-Options batchSize cannot go lower
        not_applicable={
            "notification_tampered_rejected": UNSIGNED,
            "notification_stale_rejected": "Outbound Messages carry no timestamp to check",
        },
    )
)
