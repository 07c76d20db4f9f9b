"""The sandbox's SOQL: every construct integrations use, through simple-salesforce."""

from __future__ import annotations

import pytest
from eventsync_salesforce.sandbox import soql
from simple_salesforce.exceptions import SalesforceMalformedRequest


@pytest.fixture(scope="module")
def people(conn, unique_company):
    sf = conn.sf
    rows = [
        {
            "LastName": "Alpha",
            "FirstName": "Ann",
            "Company": unique_company,
            "Title": "CEO",
            "Email": "ann@alpha.com",
            "LeadSource": "Web",
        },
        {
            "LastName": "Bravo",
            "FirstName": None,
            "Company": unique_company,
            "Title": "CTO",
            "Email": "bob@bravo.org",
            "LeadSource": "Other",
        },
        {
            "LastName": "Charlie",
            "FirstName": "Cy",
            "Company": unique_company,
            "Title": None,
            "Email": "o'neil@charlie.com",
            "LeadSource": None,
        },
        {
            "LastName": "Delta",
            "FirstName": "Di",
            "Company": unique_company,
            "Title": "VP",
            "Email": None,
            "LeadSource": "Web",
        },
    ]
    for row in rows:
        sf.Lead.create({k: v for k, v in row.items() if v is not None})
    return sf


@pytest.fixture(scope="module")
def unique_company():
    import uuid

    return "Soql" + uuid.uuid4().hex[:8]


def names(sf, where, company, order="LastName", extra=""):
    text = f"SELECT LastName FROM Lead WHERE Company = '{company}'"
    if where:
        text += f" AND ({where})"
    text += f" ORDER BY {order}{extra}"
    return [r["LastName"] for r in sf.query(text)["records"]]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Title = 'CEO'", ["Alpha"]),
        ("Title = 'ceo'", ["Alpha"]),  # text comparison is case-insensitive
        ("Title != 'CEO'", ["Bravo", "Charlie", "Delta"]),
        ("Title <> 'CEO'", ["Bravo", "Charlie", "Delta"]),
        ("LastName < 'C'", ["Alpha", "Bravo"]),
        ("LastName <= 'Charlie'", ["Alpha", "Bravo", "Charlie"]),
        ("LastName > 'Charlie'", ["Delta"]),
        ("LastName >= 'Charlie'", ["Charlie", "Delta"]),
        ("Title IN ('CEO', 'VP')", ["Alpha", "Delta"]),
        ("Title NOT IN ('CEO', 'VP')", ["Bravo", "Charlie"]),
        ("Email LIKE '%.com'", ["Alpha", "Charlie"]),
        ("Email LIKE 'b_b@%'", ["Bravo"]),
        ("Title = null", ["Charlie"]),
        ("Email != null", ["Alpha", "Bravo", "Charlie"]),
        ("Email = 'o\\'neil@charlie.com'", ["Charlie"]),
        ("NOT Title = 'CEO'", ["Bravo", "Charlie", "Delta"]),
        ("(Title = 'CEO' OR Title = 'CTO') AND LeadSource = 'Web'", ["Alpha"]),
        ("Title = 'CEO' OR (Title = 'CTO' AND LeadSource = 'Other')", ["Alpha", "Bravo"]),
        ("NOT (LeadSource = 'Web' OR LeadSource = null)", ["Bravo"]),
        ("HasOptedOutOfEmail = false", ["Alpha", "Bravo", "Charlie", "Delta"]),
        ("CreatedDate > 2020-01-01T00:00:00Z", ["Alpha", "Bravo", "Charlie", "Delta"]),
        ("CreatedDate < 2020-01-01T00:00:00.000+0000", []),
        ("CreatedDate = TODAY", ["Alpha", "Bravo", "Charlie", "Delta"]),
        ("CreatedDate = LAST_N_DAYS:3", ["Alpha", "Bravo", "Charlie", "Delta"]),
        ("CreatedDate = YESTERDAY", []),
    ],
)
def test_where(people, unique_company, where, expected):
    assert names(people, where, unique_company) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Email IN ('ANN@alpha.com', 'Bob@Bravo.org', 'nobody@x.com')", ["Alpha", "Bravo"]),
        ("Email = 'O\\'NEIL@charlie.com'", ["Charlie"]),
        ("Email IN ('ann@alpha.com') AND Title = 'CTO'", []),
        ("Email NOT IN ('ann@alpha.com') AND Email != null", ["Bravo", "Charlie"]),
    ],
)
def test_a_match_query_led_by_a_text_field_ignores_case(people, unique_company, where, expected):
    """The shape of a match query (the text condition first: the sandbox looks up its values
    before evaluating the rest): the same answers as any other condition."""
    text = f"SELECT LastName FROM Lead WHERE {where} AND Company = '{unique_company}'"
    found = [r["LastName"] for r in people.query(text + " ORDER BY LastName")["records"]]
    assert found == expected


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("LastName DESC", ["Delta", "Charlie", "Bravo", "Alpha"]),
        ("Title ASC NULLS FIRST, LastName", ["Charlie", "Alpha", "Bravo", "Delta"]),
        ("Title ASC NULLS LAST", ["Alpha", "Bravo", "Delta", "Charlie"]),
        ("Title DESC", ["Delta", "Bravo", "Alpha", "Charlie"]),
        ("Title DESC NULLS FIRST", ["Charlie", "Delta", "Bravo", "Alpha"]),
        ("LeadSource ASC NULLS LAST, LastName DESC", ["Bravo", "Delta", "Alpha", "Charlie"]),
    ],
)
def test_order_by(people, unique_company, order, expected):
    assert names(people, "", unique_company, order) == expected


def test_limit_offset_and_count(people, unique_company):
    assert names(people, "", unique_company, "LastName", " LIMIT 2") == ["Alpha", "Bravo"]
    assert names(people, "", unique_company, "LastName", " LIMIT 2 OFFSET 1") == [
        "Bravo",
        "Charlie",
    ]
    count = people.query(f"SELECT COUNT() FROM Lead WHERE Company = '{unique_company}'")
    assert (count["totalSize"], count["records"]) == (4, [])


def test_relationship_fields(conn, rest, unique):
    campaign = rest(
        "POST", "sobjects/Campaign/", json={"Name": unique, "Hopin_Ticket_Code__c": f"T-{unique}"}
    ).json()["id"]
    lead = rest("POST", "sobjects/Lead/", json={"LastName": "R", "Company": unique}).json()["id"]
    rest("POST", "sobjects/CampaignMember/", json={"CampaignId": campaign, "LeadId": lead})
    rows = conn.sf.query(
        "SELECT Id, Campaign.Hopin_Ticket_Code__c, Lead.Company, Contact.LastName "
        f"FROM CampaignMember WHERE Campaign.Hopin_Ticket_Code__c = 'T-{unique}'"
    )["records"]
    assert len(rows) == 1
    assert rows[0]["Campaign"]["Hopin_Ticket_Code__c"] == f"T-{unique}"
    assert rows[0]["Campaign"]["attributes"]["type"] == "Campaign"
    assert rows[0]["Lead"]["Company"] == unique
    assert rows[0]["Contact"] is None


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("SELECT Id FROM Lead GROUP BY Id", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead WHERE Name = ", "MALFORMED_QUERY"),
        ("SELECT Id Lead", "MALFORMED_QUERY"),
        ("SELECT Id FROM Lead WHERE Bogus__c = 1", "INVALID_FIELD"),
        ("SELECT Nothing.Name FROM Lead", "INVALID_FIELD"),
        ("SELECT Id FROM Lead ORDER BY Nope", "INVALID_FIELD"),
        ("SELECT Id FROM Nope", "INVALID_TYPE"),
    ],
)
def test_errors(conn, text, code):
    with pytest.raises(SalesforceMalformedRequest) as exc:
        conn.sf.query(text)
    assert exc.value.content[0]["errorCode"] == code


def test_parser_unit():
    query = soql.parse(
        "select Id from Lead where not (A = 1 or B in ('x')) order by Id desc "
        "nulls last limit 5 offset 2"
    )
    assert query.object == "Lead" and query.limit == 5 and query.offset == 2
    assert query.order[0].descending and query.order[0].nulls_last is True
    assert isinstance(query.where, soql.BoolOp) and query.where.op == "not"
