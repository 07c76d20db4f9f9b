"""discover_schema and pull against the sandbox."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from eventsync.errors import DiscoveryError, FatalError
from eventsync.models import Filter, PullRequest, Watermark
from eventsync_salesforce import plugin
from eventsync_salesforce import pull as pull_mod
from eventsync_salesforce.schema import SchemaCache


def test_discover_default_objects(conn):
    schema = plugin.discover_schema(conn, None)
    assert schema.system == "salesforce"
    assert {
        "Lead",
        "Contact",
        "Account",
        "Campaign",
        "CampaignMember",
        "CampaignMemberStatus",
    } <= set(schema.objects)
    lead = schema.object("lead")
    last = lead.field("LastName")
    assert (last.type, last.length, last.nillable, last.required_on_create) == (
        "string",
        80,
        False,
        True,
    )
    ext = lead.field("Hopin_Registration_Id__c")
    assert ext.external_id and ext.id_lookup and ext.unique
    status = lead.field("Status")
    assert status.defaulted_on_create and "Open - Not Contacted" in status.picklist_values
    assert lead.field("Tier__c").restricted_picklist
    assert lead.field("Id").type == "id" and not lead.field("Id").createable
    member = schema.object("CampaignMember")
    campaign_id = member.field("CampaignId")
    assert (campaign_id.type, campaign_id.reference_to, campaign_id.relationship_name) == (
        "reference",
        ("Campaign",),
        "Campaign",
    )
    assert not campaign_id.updateable
    assert member.relationship("Campaign") is campaign_id


def test_discover_unknown_object(conn):
    with pytest.raises(DiscoveryError) as exc:
        plugin.discover_schema(conn, ["Nope__c"])
    assert "Nope__c" in str(exc.value)


def test_schema_is_cached(conn, admin):
    plugin.discover_schema(conn, ["Account"])
    before = admin.calls("describe")
    plugin.discover_schema(conn, ["Account"])
    assert admin.calls("describe") == before


def test_workers_missing_the_cache_together_describe_once(conn, admin):
    # A runner's workers start their first batches at once: a slow global describe would
    # otherwise be made by each of them (and each describe of the object after it).
    cache = SchemaCache(ttl=3600.0)
    admin.post("/faults", {"endpoint": "describe_global", "status": 0, "latency": 0.5})
    before = (admin.calls("describe_global"), admin.calls("describe"))
    start = threading.Barrier(4)
    got: list[str] = []

    def first_batch() -> None:
        start.wait(120)
        got.append(cache.object(conn, "Lead").name)

    threads = [threading.Thread(target=first_batch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert got == ["Lead"] * 4
    after = (admin.calls("describe_global"), admin.calls("describe"))
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)
    assert cache.describes == 1


def test_schema_refreshed_when_salesforce_answers_invalid_field(sandbox, admin, unique):
    conn = plugin.authenticate("salesforce", sandbox.settings("acme"))
    assert plugin.discover_schema(conn, ["Lead"]).object("Lead").field("Obsolete__c")
    admin.post("/schema/remove_field", {"object": "Lead", "field": "Obsolete__c"})
    with pytest.raises(FatalError) as exc:
        list(plugin.pull(conn, PullRequest("Lead", fields=("Id", "Obsolete__c"))))
    assert exc.value.code == "INVALID_FIELD"
    describes = admin.calls("describe")
    refreshed = plugin.discover_schema(conn, ["Lead"]).object("Lead")
    assert refreshed.field("Obsolete__c") is None
    assert admin.calls("describe") == describes + 1


def _seed(conn, company, count):
    items = [
        {
            "attributes": {"type": "Lead"},
            "LastName": f"P{i:03d}",
            "Company": company,
            "Email": f"p{i}@{company}.com",
        }
        for i in range(count)
    ]
    return conn.sf.restful(
        "composite/sobjects", method="POST", json={"allOrNone": False, "records": items}
    )


def test_pagination_over_several_pages_streams(conn, admin, unique):
    _seed(conn, unique, 45)
    request = PullRequest(
        "Lead",
        fields=("LastName", "Email"),
        filters=(Filter("Company", "=", unique),),
        page_size=10,
    )
    before = admin.calls("query")
    stream = plugin.pull(conn, request)
    first = next(stream)
    assert admin.calls("query") == before + 1  # only the first page was fetched
    rest = list(stream)
    assert admin.calls("query") == before + 5
    records = [first, *rest]
    assert [r.get("LastName") for r in records] == [f"P{i:03d}" for i in range(45)]
    assert all(r.system == "salesforce" and r.object == "Lead" and r.id for r in records)
    assert all(isinstance(r.modified_at, dt.datetime) for r in records)


def test_pull_by_ids_and_escaped_filters(conn, unique):
    tricky = f"O'Brien \\ {unique}"
    created = conn.sf.Lead.create({"LastName": tricky, "Company": unique})
    conn.sf.Lead.create({"LastName": "Other", "Company": unique})
    by_filter = list(
        plugin.pull(
            conn,
            PullRequest(
                "Lead",
                fields=("LastName",),
                filters=(
                    Filter("LastName", "=", tricky),
                    Filter("Company", "in", [unique, "x' OR Name != '"]),
                ),
            ),
        )
    )
    assert [r.id for r in by_filter] == [created["id"]]
    by_id = list(plugin.pull(conn, PullRequest("Lead", fields=("LastName",), ids=(created["id"],))))
    assert [r.get("LastName") for r in by_id] == [tricky]
    like = list(
        plugin.pull(
            conn,
            PullRequest(
                "Lead",
                fields=("LastName",),
                filters=(Filter("Company", "=", unique), Filter("LastName", "like", "O'Brien%")),
            ),
        )
    )
    assert len(like) == 1


def test_watermark_with_overlap_and_order(conn, unique):
    _seed(conn, unique, 5)
    everything = list(
        plugin.pull(
            conn,
            PullRequest("Lead", fields=("LastName",), filters=(Filter("Company", "=", unique),)),
        )
    )
    stamps = [(r.modified_at, r.id) for r in everything]
    assert stamps == sorted(stamps)
    last = everything[-1]
    after = list(
        plugin.pull(
            conn,
            PullRequest(
                "Lead",
                fields=("LastName",),
                filters=(Filter("Company", "=", unique),),
                since=Watermark(last.modified_at, last.id),
            ),
        )
    )
    assert last.id not in [r.id for r in after]
    conn.sf.Lead.update(everything[0].id, {"Title": "changed"})
    overlapping = list(
        plugin.pull(
            conn,
            PullRequest(
                "Lead",
                fields=("LastName",),
                filters=(Filter("Company", "=", unique),),
                since=Watermark(last.modified_at + dt.timedelta(seconds=1), last.id),
                overlap=5,
            ),
        )
    )
    assert {last.id, everything[0].id} <= {r.id for r in overlapping}


def test_watermark_soql_shape(conn):
    schema = conn.schema.object(conn, "Lead")
    stamp = dt.datetime(2024, 1, 2, 3, 4, 5, 600000, tzinfo=dt.UTC)
    text = pull_mod.build(
        schema, PullRequest("Lead", fields=("Email",), since=Watermark(stamp, "00Q000000000001AAA"))
    )
    assert text == (
        "SELECT Email, Id, SystemModstamp FROM Lead WHERE (SystemModstamp > "
        "2024-01-02T03:04:05Z OR (SystemModstamp = 2024-01-02T03:04:05Z AND "
        "Id > '00Q000000000001AAA')) ORDER BY SystemModstamp ASC, Id ASC"
    )


def test_relationship_paths_and_deleted(conn, rest, unique):
    campaign = rest(
        "POST", "sobjects/Campaign/", json={"Name": unique, "Hopin_Ticket_Code__c": f"TC-{unique}"}
    ).json()["id"]
    lead = rest("POST", "sobjects/Lead/", json={"LastName": "Rel", "Company": unique}).json()["id"]
    member = rest(
        "POST", "sobjects/CampaignMember/", json={"CampaignId": campaign, "LeadId": lead}
    ).json()["id"]
    [record] = list(
        plugin.pull(
            conn,
            PullRequest(
                "CampaignMember",
                fields=("Status", "Campaign.Hopin_Ticket_Code__c", "Lead.CreatedDate"),
                filters=(Filter("CampaignId", "=", campaign),),
            ),
        )
    )
    assert record.id == member
    assert record.get("Campaign.Hopin_Ticket_Code__c") == f"TC-{unique}"
    assert isinstance(record.get("Lead.CreatedDate"), dt.datetime)
    rest("DELETE", f"sobjects/Lead/{lead}")
    live = list(plugin.pull(conn, PullRequest("Lead", ids=(lead,), fields=("LastName",))))
    assert live == []
    [gone] = list(
        plugin.pull(
            conn, PullRequest("Lead", ids=(lead,), fields=("LastName",), include_deleted=True)
        )
    )
    assert gone.deleted is True


def test_pull_limit(conn, unique):
    _seed(conn, unique, 4)
    records = list(
        plugin.pull(
            conn,
            PullRequest(
                "Lead", fields=("LastName",), limit=2, filters=(Filter("Company", "=", unique),)
            ),
        )
    )
    assert len(records) == 2
