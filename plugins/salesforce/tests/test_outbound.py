"""Outbound messages end to end, and parse_notification's refusals."""

from __future__ import annotations

import time

import attrs
import pytest
from eventsync.errors import BadNotification
from eventsync.models import HttpRequest, PushItem, PushRequest
from eventsync_salesforce import plugin


def wait_for(predicate, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def notes_for(receiver, record_id):
    with receiver.lock:
        return [(n, e) for n in receiver.notifications for e in n.entities if e.id == record_id]


def web_lead(conn, unique, source="Web"):
    [result] = plugin.push(
        conn,
        PushRequest(
            "Lead",
            "insert",
            (
                PushItem(
                    "k",
                    {
                        "LastName": "Out",
                        "Company": unique,
                        "Email": f"{unique}@e.com",
                        "LeadSource": source,
                    },
                ),
            ),
        ),
    )
    assert result.ok
    return result.id


def test_round_trip_and_ack(conn, receiver, admin, sandbox, unique):
    lead_id = web_lead(conn, unique)
    assert wait_for(lambda: notes_for(receiver, lead_id))
    [(note, entity)] = notes_for(receiver, lead_id)
    assert note.system == "salesforce" and note.kind == "outbound_message"
    assert note.org_id == sandbox.org.org_id
    assert (entity.object, entity.fields["Email"], entity.fields["LeadSource"]) == (
        "Lead",
        f"{unique}@e.com",
        "Web",
    )
    assert note.dedupe_ids[0].startswith("04l")
    assert note.response.status == 200
    assert b"<Ack>true</Ack>" in note.response.body
    assert wait_for(
        lambda: any(
            m["record_id"] == lead_id and m["delivered"] for m in admin.get("/outbound")["messages"]
        )
    )


def test_retried_with_backoff_until_acknowledged(conn, receiver, admin, unique):
    with receiver.lock:
        receiver.fail_next = 2
    lead_id = web_lead(conn, unique)
    assert wait_for(
        lambda: any(
            m["record_id"] == lead_id and m["delivered"] for m in admin.get("/outbound")["messages"]
        )
    )
    [message] = [m for m in admin.get("/outbound")["messages"] if m["record_id"] == lead_id]
    assert message["attempts"] == 3
    assert len(notes_for(receiver, lead_id)) == 1


def test_resent_notification_is_recognised(conn, receiver, admin, unique):
    admin.post("/outbound/mode", {"duplicate": True})
    try:
        lead_id = web_lead(conn, unique)
        assert wait_for(lambda: len(notes_for(receiver, lead_id)) == 2)
    finally:
        admin.post("/outbound/mode", {"duplicate": False})
    (first, _), (second, _) = notes_for(receiver, lead_id)
    assert first.dedupe_ids == second.dedupe_ids
    assert first.dedupe_ids[0] in receiver.resent


def test_out_of_order_delivery(conn, receiver, admin, unique):
    admin.post("/outbound/mode", {"reorder": True})
    try:
        results = plugin.push(
            conn,
            PushRequest(
                "Lead",
                "insert",
                tuple(
                    PushItem(str(i), {"LastName": f"O{i}", "Company": unique, "LeadSource": "Web"})
                    for i in range(3)
                ),
            ),
        )
        ids = [r.id for r in results]
        assert wait_for(lambda: all(notes_for(receiver, i) for i in ids))
    finally:
        admin.post("/outbound/mode", {"reorder": False})
    [(note, _)] = notes_for(receiver, ids[0])
    assert [e.id for e in note.entities] == list(reversed(ids))


def test_condition_import_wizard_and_permission_suppress_messages(conn, receiver, admin, unique):
    other = web_lead(conn, unique + "o", source="Other")
    imported = admin.post(
        "/import",
        {
            "object": "Lead",
            "records": [{"LastName": "Imp", "Company": unique, "LeadSource": "Web"}],
        },
    )[0]["id"]
    noperm = admin.post(
        "/seed",
        {
            "object": "Lead",
            "as_user": "noperm@sandbox.example",
            "records": [{"LastName": "NP", "Company": unique, "LeadSource": "Web"}],
        },
    )[0]["id"]
    triggered = admin.post(
        "/import",
        {
            "object": "Lead",
            "trigger_workflow": True,
            "records": [{"LastName": "Imp2", "Company": unique, "LeadSource": "Web"}],
        },
    )[0]["id"]
    assert wait_for(lambda: notes_for(receiver, triggered))
    time.sleep(0.2)
    for silent in (other, imported, noperm):
        assert notes_for(receiver, silent) == []
    records = {m["record_id"] for m in admin.get("/outbound")["messages"]}
    assert not {other, imported, noperm} & records


def test_rules_can_be_added_through_the_admin_api(conn, receiver, admin, unique):
    rule = admin.post(
        "/outbound/rules",
        {
            "name": f"Campaigns_{unique}",
            "object": "Campaign",
            "endpoint_url": receiver.url,
            "fields": ["Name"],
        },
    )
    assert rule["action_id"].startswith("04k")
    campaign = conn.sf.Campaign.create({"Name": unique})["id"]
    assert wait_for(lambda: notes_for(receiver, campaign))
    [(_, entity)] = notes_for(receiver, campaign)
    assert (entity.object, entity.fields["Name"]) == ("Campaign", unique)


# --- parse_notification refusals ----------------------------------------------------------

ENVELOPE = """<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>{org}</OrganizationId>
   <ActionId>04k1N0000008pXOQAY</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://acme.my.salesforce.com/services/Soap/c/42.0/00Do0000000e0vQ</EnterpriseUrl>
   <PartnerUrl>https://acme.my.salesforce.com/services/Soap/u/42.0/00Do0000000e0vQ</PartnerUrl>
   <Notification>
    <Id>04l1N00000HVEMpQAP</Id>
    <sObject xsi:type="sf:Lead" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>00Q1N00000bS2eOUAS</sf:Id><sf:Email>k@example.com</sf:Email><sf:LastName>Flores</sf:LastName>
     <sf:Title xsi:nil="true"/>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"""

ORG_ID = "00Do0000000e0vQEAQ"

ACK = (
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
    b'<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack>'
    b"</notificationsResponse></soapenv:Body></soapenv:Envelope>"
)


@pytest.fixture
def om_settings(sandbox):
    settings = sandbox.settings("acme")
    return attrs.evolve(settings, options={**settings.options, "org_id": ORG_ID})


def request(body, content_type="text/xml; charset=utf-8", method="POST"):
    data = body.encode() if isinstance(body, str) else body
    return HttpRequest(
        method=method, path="/salesforce/acme", headers={"Content-Type": content_type}, body=data
    )


def test_parses_the_reference_envelope(om_settings):
    note = plugin.parse_notification(
        "salesforce", request(ENVELOPE.format(org=ORG_ID)), om_settings
    )
    assert note.dedupe_ids == ("04l1N00000HVEMpQAP",)
    [entity] = note.entities
    assert (entity.object, entity.id) == ("Lead", "00Q1N00000bS2eOUAS")
    assert entity.fields == {
        "Id": "00Q1N00000bS2eOUAS",
        "Email": "k@example.com",
        "LastName": "Flores",
        "Title": None,
    }
    assert note.response.body.endswith(ACK)
    assert note.response.content_type.startswith("text/xml")
    # the 15-character form of the org id is accepted too
    short = plugin.parse_notification(
        "salesforce", request(ENVELOPE.format(org=ORG_ID[:15])), om_settings
    )
    assert short.entities == note.entities
    assert plugin.parse_notification("hopin", request("x"), om_settings) is None


BOMB = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>&lol3;
</soapenv:Body></soapenv:Envelope>"""


@pytest.mark.parametrize(
    ("http", "status"),
    [
        (request("<soapenv:Envelope"), 400),
        (request(BOMB), 400),
        (request(ENVELOPE.format(org="00D000000000001AAA")), 403),
        (request(ENVELOPE.format(org=ORG_ID), content_type="application/json"), 415),
        (request(ENVELOPE.format(org=ORG_ID), method="GET"), 405),
        (request("<a xmlns='x'/>"), 400),
        (request(ENVELOPE.format(org=ORG_ID).replace("<Id>04l1N00000HVEMpQAP</Id>", "")), 400),
    ],
)
def test_refusals(om_settings, http, status):
    with pytest.raises(BadNotification) as exc:
        plugin.parse_notification("salesforce", http, om_settings)
    assert exc.value.status == status


def test_refused_without_configured_org_id(sandbox):
    settings = sandbox.settings("acme")
    bare = attrs.evolve(
        settings, options={k: v for k, v in settings.options.items() if k != "org_id"}
    )
    with pytest.raises(BadNotification) as exc:
        plugin.parse_notification("salesforce", request(ENVELOPE.format(org=ORG_ID)), bare)
    assert exc.value.status == 403
