"""The sandbox's wire formats, compared field by field with Salesforce's documentation."""

from __future__ import annotations

import csv
import io
import re

import defusedxml.ElementTree as SafeET
from eventsync_salesforce.sandbox.ids import case_safe

ID18 = re.compile(r"^[A-Za-z0-9]{18}$")


def test_token_response_has_the_documented_fields(sandbox, rest):
    info = sandbox.info()
    response = rest.http.post(
        info["token_url"],
        data={
            "grant_type": "password",
            "client_id": info["client_id"],
            "client_secret": info["client_secret"],
            "username": info["username"],
            "password": info["password"],
        },
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {
        "access_token",
        "instance_url",
        "id",
        "token_type",
        "issued_at",
        "signature",
        "scope",
    }
    assert body["token_type"] == "Bearer"
    assert body["instance_url"] == sandbox.url
    assert body["issued_at"].isdigit() and len(body["issued_at"]) == 13  # epoch ms as a string
    assert body["id"].startswith(f"{sandbox.url}/id/{sandbox.org.org_id}/005")
    assert "refresh_token" not in body


def test_token_error_shape(sandbox, rest):
    response = rest.http.post(
        sandbox.info()["token_url"],
        data={
            "grant_type": "password",
            "client_id": sandbox.info()["client_id"],
            "client_secret": sandbox.info()["client_secret"],
            "username": "nobody@x",
            "password": "x",
        },
    )
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "authentication failure",
    }


def test_invalid_session_is_a_json_array(rest):
    response = rest.http.get(rest.base + "limits/", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]


def test_limit_info_header_on_every_rest_response(rest):
    response = rest("GET", "limits/")
    assert re.fullmatch(r"api-usage=\d+/\d+", response.headers["Sforce-Limit-Info"])
    body = response.json()
    assert set(body["DailyApiRequests"]) == {"Max", "Remaining"}


def test_versions_resource(rest):
    versions = rest("GET", "/services/data/").json()
    assert {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"} in versions


def test_global_describe_shape(rest):
    body = rest("GET", "sobjects").json()
    assert body["encoding"] == "UTF-8" and body["maxBatchSize"] == 200
    lead = next(s for s in body["sobjects"] if s["name"] == "Lead")
    for key in (
        "name",
        "label",
        "labelPlural",
        "keyPrefix",
        "custom",
        "createable",
        "updateable",
        "deletable",
        "queryable",
        "searchable",
        "urls",
    ):
        assert key in lead, key
    assert lead["keyPrefix"] == "00Q"
    assert lead["urls"] == {
        "sobject": "/services/data/v59.0/sobjects/Lead",
        "describe": "/services/data/v59.0/sobjects/Lead/describe",
        "rowTemplate": "/services/data/v59.0/sobjects/Lead/{ID}",
    }


def test_sobject_describe_fields(rest):
    body = rest("GET", "sobjects/Lead/describe").json()
    for key in (
        "name",
        "label",
        "labelPlural",
        "custom",
        "createable",
        "updateable",
        "deletable",
        "queryable",
        "keyPrefix",
        "childRelationships",
        "recordTypeInfos",
        "fields",
    ):
        assert key in body, key
    email = next(f for f in body["fields"] if f["name"] == "Email")
    for key in (
        "name",
        "label",
        "type",
        "length",
        "nillable",
        "createable",
        "updateable",
        "defaultedOnCreate",
        "externalId",
        "idLookup",
        "unique",
        "calculated",
        "custom",
        "picklistValues",
        "referenceTo",
        "relationshipName",
    ):
        assert key in email, key
    assert (email["type"], email["length"], email["idLookup"]) == ("email", 80, True)
    status = next(f for f in body["fields"] if f["name"] == "Status")
    assert set(status["picklistValues"][0]) == {
        "value",
        "label",
        "active",
        "defaultValue",
        "validFor",
    }
    ext = next(f for f in body["fields"] if f["name"] == "Hopin_Registration_Id__c")
    assert ext["externalId"] and ext["custom"] and ext["idLookup"]
    member = rest("GET", "sobjects/CampaignMember/describe").json()
    campaign_id = next(f for f in member["fields"] if f["name"] == "CampaignId")
    assert campaign_id["referenceTo"] == ["Campaign"]
    assert campaign_id["relationshipName"] == "Campaign"
    assert rest("GET", "sobjects/Lead/").json()["objectDescribe"]["name"] == "Lead"


def test_create_update_delete_status_codes(rest, unique):
    created = rest(
        "POST", "sobjects/Lead/", json={"LastName": "F", "Company": "C", "Email": f"{unique}@e.com"}
    )
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"id", "success", "errors"}
    assert body["success"] is True and body["errors"] == [] and body["id"].startswith("00Q")
    assert ID18.match(body["id"])
    updated = rest("PATCH", f"sobjects/Lead/{body['id']}", json={"Title": "CTO"})
    assert (updated.status_code, updated.content) == (204, b"")
    fetched = rest("GET", f"sobjects/Lead/{body['id']}").json()
    assert fetched["Title"] == "CTO"
    assert fetched["attributes"] == {
        "type": "Lead",
        "url": f"/services/data/v59.0/sobjects/Lead/{body['id']}",
    }
    deleted = rest("DELETE", f"sobjects/Lead/{body['id']}")
    assert (deleted.status_code, deleted.content) == (204, b"")
    again = rest("PATCH", f"sobjects/Lead/{body['id']}", json={"Title": "x"})
    assert again.json()[0]["errorCode"] == "ENTITY_IS_DELETED"
    missing = rest("GET", f"sobjects/Lead/{case_safe('00Q5g00000ZZZZZ')}")
    assert missing.status_code == 404
    assert missing.json()[0]["errorCode"] == "NOT_FOUND"


def test_undelete_restores_a_deleted_record_with_its_id(rest, admin, unique):
    created = rest(
        "POST", "sobjects/Lead/", json={"LastName": "U", "Company": "C", "Email": f"{unique}@e.com"}
    )
    lead = created.json()["id"]
    assert rest("DELETE", f"sobjects/Lead/{lead}").status_code == 204
    where = f"SELECT Id, IsDeleted, SystemModstamp FROM Lead WHERE Id = '{lead}'"
    assert rest("GET", "query/", params={"q": where}).json()["records"] == []
    [gone] = rest("GET", "queryAll/", params={"q": where}).json()["records"]
    assert gone["IsDeleted"] is True
    restored = admin.post("/undelete", {"ids": [lead], "as_user": "admin@sandbox.example"})
    assert restored == [{"id": lead, "success": True, "errors": []}]
    [back] = rest("GET", "query/", params={"q": where}).json()["records"]
    assert back["IsDeleted"] is False and back["SystemModstamp"] >= gone["SystemModstamp"]
    row = rest("GET", f"sobjects/Lead/{lead}").json()
    assert row["Id"] == lead and row["LastModifiedDate"] == row["SystemModstamp"]
    assert row["LastModifiedById"] != row["CreatedById"]  # the undeleting user
    assert rest("PATCH", f"sobjects/Lead/{lead}", json={"Title": "x"}).status_code == 204
    [again, missing, malformed] = admin.post(
        "/undelete", {"ids": [lead, case_safe("00Q5g00000ZZZZZ"), "nope"]}
    )
    assert again["errors"][0]["statusCode"] == "UNDELETE_FAILED"
    assert missing["errors"][0]["statusCode"] == "NOT_FOUND"
    assert malformed["errors"][0]["statusCode"] == "MALFORMED_ID"
    bad = admin.http.post(admin.url + "/undelete", json={"ids": lead})
    assert bad.status_code == 400 and "ids" in bad.json()["error"]


def test_undelete_refuses_a_campaign_membership_taken_meanwhile(rest, admin, unique):
    campaign = rest("POST", "sobjects/Campaign/", json={"Name": unique}).json()["id"]
    lead = rest(
        "POST", "sobjects/Lead/", json={"LastName": "D", "Company": "C", "Email": f"{unique}@e.com"}
    ).json()["id"]
    member = {"CampaignId": campaign, "LeadId": lead}
    first = rest("POST", "sobjects/CampaignMember/", json=member).json()["id"]
    assert rest("DELETE", f"sobjects/CampaignMember/{first}").status_code == 204
    assert rest("POST", "sobjects/CampaignMember/", json=member).status_code == 201
    [refused] = admin.post("/undelete", {"ids": [first]})
    assert refused["success"] is False
    assert refused["errors"][0] == {
        "statusCode": "DUPLICATE_VALUE",
        "message": "Already a campaign member.",
        "fields": [],
    }
    found = rest(
        "GET",
        "queryAll/",
        params={"q": f"SELECT IsDeleted FROM CampaignMember WHERE Id = '{first}'"},
    )
    assert [r["IsDeleted"] for r in found.json()["records"]] == [True]


def test_required_field_error(rest):
    response = rest("POST", "sobjects/Lead/", json={"LastName": "NoCompany"})
    assert response.status_code == 400
    assert response.json() == [
        {
            "message": "Required fields are missing: [Company]",
            "errorCode": "REQUIRED_FIELD_MISSING",
            "fields": ["Company"],
        }
    ]


def test_validation_rule_and_restricted_picklist(rest):
    rule = rest("POST", "sobjects/Lead/", json={"LastName": "V", "Company": "Forbidden Inc"})
    assert rule.json() == [
        {
            "message": "Company may not be Forbidden Inc",
            "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "fields": ["Company"],
        }
    ]
    bad = rest(
        "POST", "sobjects/Lead/", json={"LastName": "V", "Company": "C", "Tier__c": "Bronze"}
    )
    assert bad.json()[0]["errorCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert "bad value for restricted picklist field: Bronze" in bad.json()[0]["message"]
    long = rest(
        "POST",
        "sobjects/Lead/",
        json={"LastName": "V", "Company": "C", "Email": "a" * 80 + "@e.com"},
    )
    assert long.json()[0]["errorCode"] == "STRING_TOO_LONG"


def test_upsert_status_codes(rest, unique):
    path = f"sobjects/Lead/Hopin_Registration_Id__c/{unique}"
    created = rest("PATCH", path, json={"LastName": "U", "Company": "C"})
    assert created.status_code == 201
    assert created.json()["created"] is True and created.json()["success"] is True
    assert created.json()["errors"] == []
    updated = rest("PATCH", path, json={"Title": "T"})
    assert updated.status_code == 200
    assert updated.json() == {
        "id": created.json()["id"],
        "success": True,
        "errors": [],
        "created": False,
    }
    bad_field = rest("PATCH", f"sobjects/Lead/Nope__c/{unique}", json={"LastName": "x"})
    assert bad_field.status_code == 404
    assert bad_field.json()[0]["errorCode"] == "NOT_FOUND"
    assert bad_field.json()[0]["message"] == "The requested resource does not exist"


def test_upsert_with_several_matches_is_300(rest, unique):
    # Email is an idLookup field that is not unique: two records share it.
    for _ in range(2):
        rest(
            "POST",
            "sobjects/Lead/",
            json={"LastName": "D", "Company": "C", "Email": f"dup{unique}@e.com"},
        )
    response = rest("PATCH", f"sobjects/Lead/Email/dup{unique}@e.com", json={"Title": "x"})
    assert response.status_code == 300
    urls = response.json()
    assert len(urls) == 2 and all(
        u.startswith("/services/data/v59.0/sobjects/Lead/00Q") for u in urls
    )


def test_query_shape_and_next_records_url(rest, unique):
    for index in range(3):
        rest("POST", "sobjects/Lead/", json={"LastName": f"Q{index}", "Company": unique})
    first = rest(
        "GET",
        "query/",
        params={"q": f"SELECT Id, LastName FROM Lead WHERE Company = '{unique}' ORDER BY LastName"},
        headers={"Sforce-Query-Options": "batchSize=2"},
    ).json()
    assert first["totalSize"] == 3 and first["done"] is False
    assert re.fullmatch(r"/services/data/v59\.0/query/01g\w+-2", first["nextRecordsUrl"])
    assert first["records"][0]["attributes"]["type"] == "Lead"
    assert first["records"][0]["attributes"]["url"].startswith(
        "/services/data/v59.0/sobjects/Lead/"
    )
    second = rest("GET", first["nextRecordsUrl"]).json()
    assert second["done"] is True and "nextRecordsUrl" not in second
    assert [r["LastName"] for r in first["records"] + second["records"]] == ["Q0", "Q1", "Q2"]


def test_query_errors_use_salesforce_wording(rest):
    malformed = rest("GET", "query/", params={"q": "SELECT Id FROM Lead WHERE"})
    assert malformed.status_code == 400
    assert malformed.json()[0]["errorCode"] == "MALFORMED_QUERY"
    assert "unexpected token" in malformed.json()[0]["message"]
    invalid = rest("GET", "query/", params={"q": "SELECT Foo__c FROM Lead"})
    assert invalid.json()[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Foo__c' on entity 'Lead'" in invalid.json()[0]["message"]
    bad_type = rest("GET", "query/", params={"q": "SELECT Id FROM Nope__c"})
    assert bad_type.json()[0]["errorCode"] == "INVALID_TYPE"
    assert "sObject type 'Nope__c' is not supported" in bad_type.json()[0]["message"]


def test_collections_all_or_none_example(rest, unique):
    """The reference's allOrNone=true example: a valid record rolled back, a MALFORMED_ID."""
    contact = rest("POST", "sobjects/Contact/", json={"LastName": unique}).json()["id"]
    account = rest("POST", "sobjects/Account/", json={"Name": unique}).json()["id"]
    response = rest(
        "PATCH",
        "composite/sobjects",
        json={
            "allOrNone": True,
            "records": [
                {"attributes": {"type": "Contact"}, "id": contact, "Title": "x"},
                {"attributes": {"type": "Contact"}, "id": account, "Title": "y"},
            ],
        },
    )
    assert response.status_code == 200
    assert response.json() == [
        {
            "id": contact,
            "success": False,
            "errors": [
                {
                    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "message": "Record rolled back because not all records were valid and the "
                    "request was using AllOrNone header",
                    "fields": [],
                }
            ],
        },
        {
            "success": False,
            "errors": [
                {
                    "statusCode": "MALFORMED_ID",
                    "message": f"Contact ID: id value of incorrect type: {account}",
                    "fields": ["Id"],
                }
            ],
        },
    ]
    assert rest("GET", f"sobjects/Contact/{contact}").json()["Title"] is None


def test_collections_create_and_upsert_results(rest, unique):
    created = rest(
        "POST",
        "composite/sobjects",
        json={
            "allOrNone": False,
            "records": [
                {"attributes": {"type": "Lead"}, "LastName": "A", "Company": "C"},
                {"attributes": {"type": "Lead"}, "LastName": "B"},
            ],
        },
    ).json()
    assert created[0]["success"] is True and created[0]["errors"] == []
    assert created[1] == {
        "success": False,
        "errors": [
            {
                "statusCode": "REQUIRED_FIELD_MISSING",
                "message": "Required fields are missing: [Company]",
                "fields": ["Company"],
            }
        ],
    }
    upsert = rest(
        "PATCH",
        "composite/sobjects/Lead/Hopin_Registration_Id__c",
        json={
            "allOrNone": False,
            "records": [
                {
                    "attributes": {"type": "Lead"},
                    "Hopin_Registration_Id__c": f"u{unique}",
                    "LastName": "U",
                    "Company": "C",
                }
            ],
        },
    ).json()
    assert set(upsert[0]) == {"id", "success", "errors", "created"}
    assert upsert[0]["created"] is True


def test_request_limit_exceeded_is_403(rest, admin):
    before = admin.get("/counters")
    admin.post("/counters/reset", {"api_usage": before["daily_limit"]})
    try:
        response = rest("GET", "limits/")
        assert response.status_code == 403
        assert response.json() == [
            {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
        ]
    finally:
        admin.post("/counters/reset", {"api_usage": before["api_usage"]})


def test_campaign_member_rules(rest, unique):
    campaign = rest("POST", "sobjects/Campaign/", json={"Name": unique}).json()["id"]
    statuses = rest(
        "GET",
        "query/",
        params={
            "q": "SELECT Label, IsDefault, HasResponded FROM "
            f"CampaignMemberStatus WHERE CampaignId = '{campaign}' ORDER BY SortOrder"
        },
    )
    assert [
        (r["Label"], r["IsDefault"], r["HasResponded"]) for r in statuses.json()["records"]
    ] == [("Sent", True, False), ("Responded", False, True)]
    lead = rest(
        "POST",
        "sobjects/Lead/",
        json={"LastName": "M", "FirstName": "Ann", "Company": "C", "Email": f"{unique}@e.com"},
    )
    lead_id = lead.json()["id"]
    member = rest(
        "POST", "sobjects/CampaignMember/", json={"CampaignId": campaign, "LeadId": lead_id}
    )
    assert member.status_code == 201
    row = rest("GET", f"sobjects/CampaignMember/{member.json()['id']}").json()
    assert (row["Status"], row["HasResponded"], row["FirstName"], row["Email"]) == (
        "Sent",
        False,
        "Ann",
        f"{unique}@e.com",
    )
    duplicate = rest(
        "POST", "sobjects/CampaignMember/", json={"CampaignId": campaign, "LeadId": lead_id}
    )
    assert duplicate.status_code == 400
    assert duplicate.json() == [
        {"message": "Already a campaign member.", "errorCode": "DUPLICATE_VALUE", "fields": []}
    ]
    responded = rest(
        "PATCH", f"sobjects/CampaignMember/{member.json()['id']}", json={"Status": "Responded"}
    )
    assert responded.status_code == 204
    row = rest("GET", f"sobjects/CampaignMember/{member.json()['id']}").json()
    assert row["HasResponded"] is True and row["FirstRespondedDate"]
    unknown = rest(
        "PATCH", f"sobjects/CampaignMember/{member.json()['id']}", json={"Status": "Attended"}
    )
    assert unknown.status_code == 400 and unknown.json()[0]["fields"] == ["Status"]


def test_bulk_ingest_wire_format(rest, unique):
    job = rest(
        "POST",
        "jobs/ingest",
        json={
            "object": "Lead",
            "operation": "insert",
            "contentType": "CSV",
            "columnDelimiter": "COMMA",
            "lineEnding": "LF",
        },
    ).json()
    assert job["state"] == "Open" and job["jobType"] == "V2Ingest"
    assert job["concurrencyMode"] == "Parallel" and job["apiVersion"] == 59.0
    assert job["contentUrl"] == f"services/data/v59.0/jobs/ingest/{job['id']}/batches"
    upload = rest(
        "PUT",
        f"jobs/ingest/{job['id']}/batches",
        headers={"Content-Type": "text/csv"},
        data=f"LastName,Company\nB1,{unique}\nB2,\n",
    )
    assert upload.status_code == 201
    closed = rest("PATCH", f"jobs/ingest/{job['id']}", json={"state": "UploadComplete"}).json()
    assert closed["state"] in ("UploadComplete", "InProgress", "JobComplete")
    info = rest("GET", f"jobs/ingest/{job['id']}").json()
    assert info["state"] == "JobComplete"
    assert (info["numberRecordsProcessed"], info["numberRecordsFailed"]) == (2, 1)
    ok = list(
        csv.reader(io.StringIO(rest("GET", f"jobs/ingest/{job['id']}/successfulResults").text))
    )
    assert ok[0] == ["sf__Id", "sf__Created", "LastName", "Company"]
    assert ok[1][1:] == ["true", "B1", unique]
    failed = list(
        csv.reader(io.StringIO(rest("GET", f"jobs/ingest/{job['id']}/failedResults").text))
    )
    assert failed[0] == ["sf__Id", "sf__Error", "LastName", "Company"]
    assert failed[1][1].startswith("REQUIRED_FIELD_MISSING:")


def test_outbound_envelope_matches_the_captured_one(sandbox):
    """The envelope's structure and namespaces as in the reference capture."""
    org = sandbox.org
    rule = org.outbound.rules[0]
    lead_id = org.store.records["Lead"] and next(iter(org.store.records["Lead"]))
    from eventsync_salesforce.sandbox.outbound import Message

    body = org.outbound.envelope(rule, [Message("04l5g0000000001AAA", rule, lead_id, 0, 0)])
    root = SafeET.fromstring(body)
    env = "{http://schemas.xmlsoap.org/soap/envelope/}"
    out = "{http://soap.sforce.com/2005/09/outbound}"
    notes = root.find(f"{env}Body/{out}notifications")
    order = [child.tag.replace(out, "") for child in notes]
    assert order == [
        "OrganizationId",
        "ActionId",
        "SessionId",
        "EnterpriseUrl",
        "PartnerUrl",
        "Notification",
    ]
    assert notes.find(f"{out}OrganizationId").text == org.org_id
    assert notes.find(f"{out}ActionId").text.startswith("04k")
    assert (
        notes.find(f"{out}SessionId").get("{http://www.w3.org/2001/XMLSchema-instance}nil")
        == "true"
    )
    assert notes.find(f"{out}PartnerUrl").text.endswith(f"/services/Soap/u/59.0/{org.org_id[:15]}")
    sobject = notes.find(f"{out}Notification/{out}sObject")
    assert sobject.get("{http://www.w3.org/2001/XMLSchema-instance}type") == "sf:Lead"
    first = list(sobject)[0]
    assert first.tag == "{urn:sobject.enterprise.soap.sforce.com}Id" and first.text == lead_id


def test_admin_api_needs_its_token(sandbox):
    import requests

    response = requests.get(sandbox.url + "/_admin/counters", verify=sandbox.ca_bundle)
    assert response.status_code == 401


def test_unique_external_id(rest, unique):
    first = rest(
        "POST",
        "sobjects/Lead/",
        json={"LastName": "E", "Company": "C", "Hopin_Registration_Id__c": f"x{unique}"},
    )
    second = rest(
        "POST",
        "sobjects/Lead/",
        json={"LastName": "E", "Company": "C", "Hopin_Registration_Id__c": f"X{unique}"},
    )
    assert second.status_code == 400
    assert second.json() == [
        {
            "message": "duplicate value found: Hopin_Registration_Id__c duplicates value on record "
            f"with id: {first.json()['id']}",
            "errorCode": "DUPLICATE_VALUE",
            "fields": ["Hopin_Registration_Id__c"],
        }
    ]


def test_custom_object_from_config(rest, unique):
    campaign = rest("POST", "sobjects/Campaign/", json={"Name": unique}).json()["id"]
    ticket = rest(
        "POST",
        "sobjects/Ticket__c/",
        json={"Name": "VIP", "Code__c": f"VIP-{unique}", "Campaign__c": campaign, "Seats__c": 3},
    )
    assert ticket.status_code == 201 and ticket.json()["id"].startswith("a0")
    rows = rest(
        "GET",
        "query/",
        params={
            "q": "SELECT Name, Seats__c, Campaign__r.Name FROM "
            f"Ticket__c WHERE Code__c = 'VIP-{unique}'"
        },
    ).json()
    assert rows["records"][0]["Campaign__r"]["Name"] == unique
    assert rows["records"][0]["Seats__c"] == 3
    describe = rest("GET", "sobjects/Ticket__c/describe").json()
    assert describe["custom"] is True
    ref = next(f for f in describe["fields"] if f["name"] == "Campaign__c")
    assert (ref["referenceTo"], ref["relationshipName"]) == (["Campaign"], "Campaign__r")


def test_permission_set_assignment_query(rest, sandbox):
    """The effective-permission query (PermissionSetAssignment joined to PermissionSet)."""
    users = sandbox.info()["users"]
    query = (
        "SELECT Id, PermissionSet.Name FROM PermissionSetAssignment WHERE AssigneeId = "
        "'{}' AND PermissionSet.PermissionsApiEnabled = true"
    )
    with_api = rest(
        "GET", "query/", params={"q": query.format(users["integration@sandbox.example"])}
    ).json()
    assert [r["PermissionSet"]["Name"] for r in with_api["records"]] == ["Eventsync_Integration"]
    without = rest(
        "GET", "query/", params={"q": query.format(users["noperm@sandbox.example"])}
    ).json()
    assert without["totalSize"] == 0


def test_fault_probability_and_counters(rest, admin):
    admin.post("/faults", {"endpoint": "limits", "status": 503, "probability": 0.0})
    assert rest("GET", "limits/").status_code == 200
    admin.delete("/faults")
    fault = admin.post(
        "/faults",
        {"endpoint": "limits", "method": "GET", "status": 429, "message": "slow down", "times": 1},
    )
    assert fault["id"] > 0
    before = admin.get("/counters")["by_endpoint"].get("limits", 0)
    throttled = rest("GET", "limits/")
    assert (throttled.status_code, throttled.text) == (429, "slow down")
    assert rest("GET", "limits/").status_code == 200
    assert admin.get("/counters")["by_endpoint"]["limits"] == before + 2
    bad = admin.http.post(admin.url + "/faults", json={"endpoint": "x", "colour": "red"})
    assert bad.status_code == 400


def test_campaign_member_status_labels_can_be_added(rest, unique):
    campaign = rest("POST", "sobjects/Campaign/", json={"Name": unique}).json()["id"]
    added = rest(
        "POST",
        "sobjects/CampaignMemberStatus/",
        json={"CampaignId": campaign, "Label": "Attended", "HasResponded": True, "SortOrder": 3},
    )
    assert added.status_code == 201
    again = rest(
        "POST",
        "sobjects/CampaignMemberStatus/",
        json={"CampaignId": campaign, "Label": "attended", "SortOrder": 4},
    )
    assert again.json()[0]["errorCode"] == "DUPLICATE_VALUE"
    contact = rest("POST", "sobjects/Contact/", json={"LastName": unique}).json()["id"]
    member = rest(
        "POST",
        "sobjects/CampaignMember/",
        json={"CampaignId": campaign, "ContactId": contact, "Status": "Attended"},
    )
    assert member.status_code == 201
    row = rest("GET", f"sobjects/CampaignMember/{member.json()['id']}").json()
    assert (row["HasResponded"], row["LeadOrContactId"]) == (True, contact)


def test_unknown_query_locator(rest):
    response = rest("GET", "query/01gXXXXXXXXXXXX-200")
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"
