"""Per-field update policies keep what salespeople typed into the CRM, on both state stores.

Three registrations meet two existing Leads and one new person. Each policy is exercised on an
existing value: ``if_empty`` fills only an empty field, ``on_create`` and constants and
``default`` placeholders are written only when a record is created, ``never_clear`` never
blanks a value. The current values come from the match query (unlinked) and from the read by
id (linked, second round); the audit trail names only the fields that changed.
"""

from __future__ import annotations

from eventsync.models import Filter, PushItem, PushRequest
from eventsync_salesforce.sandbox.wiring import LINK_FIELD, REGISTRATION_ID_FIELD, STATUS_FIELD

FIELDS = [
    {"target": "LastName", "source": "lastName"},
    {"target": "Email", "source": "email"},
    {
        "target": "Company",
        "source": "headline",
        "transforms": [{"name": "default", "value": "Hopin attendee"}],
    },
    {"target": "FirstName", "source": "firstName", "policy": "if_empty"},
    {"target": "Website", "source": "website", "policy": "never_clear"},
    {"target": "LeadSource", "constant": "Other"},
    {"target": "Title", "source": "headline", "policy": "on_create"},
]
READ = ("Email", "LastName", "FirstName", "Company", "Website", "LeadSource", "Title")
FLOWS = {"export_registrations": {"target_object": "Lead", "match_key": "Email", "fields": FIELDS}}


def _lead(env, email: str) -> dict:
    [lead] = env.sf_query("Lead", READ, Filter("Email", "=", email))
    return {name: lead.get(name) for name in READ} | {"Id": lead.id}


def _run(env) -> None:
    assert env.engine.wait_idle(60)
    store = env.engine.store
    assert store.dead_letter_count() == 0, store.dead_letters()


def test_each_policy_keeps_existing_crm_values(make_env):
    env = make_env(triggers=False, pollers=False, start=False, flows=FLOWS)
    env.sf_insert(
        "Lead",
        [
            {
                "Email": "bob@example.com",
                "LastName": "Bobson",
                "FirstName": "Robert",
                "Company": "BobCo",
                "Website": "https://bob.example",
                "LeadSource": "Web",
                "Title": "CTO",
            },
            {"Email": "carol@example.com", "LastName": "Carr", "Company": "CarolCo", "Title": "VP"},
        ],
    )
    bob = env.register("bob@example.com", firstName="Bob", lastName="Bobson-New", headline="")
    carol = env.register(
        "carol@example.com", firstName="Carol", headline="Speaker", website="https://carol.new"
    )
    env.register("dave@example.com", firstName="Dave", lastName="Dent", headline="")
    assert env.engine.backfill("e2e", "export_registrations").finished
    env.engine.start()
    _run(env)

    got = _lead(env, "bob@example.com")
    assert got["LastName"] == "Bobson-New"  # always
    assert got["FirstName"] == "Robert"  # if_empty: had a value
    assert got["Company"] == "BobCo"  # a default placeholder: create only
    assert got["Website"] == "https://bob.example"  # never_clear: the source is empty
    assert got["LeadSource"] == "Web"  # a constant: create only
    assert got["Title"] == "CTO"  # on_create

    got = _lead(env, "carol@example.com")
    assert got["FirstName"] == "Carol"  # if_empty: was empty
    assert got["Company"] == "Speaker"  # a real source value: always
    assert got["Website"] == "https://carol.new"  # never_clear writes a non-empty value
    assert got["Title"] == "VP"
    assert got["LeadSource"] is None

    got = _lead(env, "dave@example.com")  # created: every value, placeholders included
    assert (got["FirstName"], got["Company"], got["LeadSource"]) == (
        "Dave",
        "Hopin attendee",
        "Other",
    )

    audit = env.engine.store.audit_entries(org="e2e", flow="export_registrations", entity=bob)
    assert [(a.operation, a.fields) for a in audit] == [("update", ("LastName",))]

    # Second round: bob is linked now; the read by id supplies the current values.
    lead_id = _lead(env, "bob@example.com")["Id"]
    [cleared] = env.hooks.push(
        env.crm, PushRequest("Lead", "update", (PushItem("u", {"FirstName": None}, id=lead_id),))
    )
    assert cleared.ok, cleared.error
    env.hopin_admin("PATCH", f"/registrations/{bob}", {"firstName": "Bobby", "website": ""})
    env.hopin_admin("PATCH", f"/registrations/{carol}", {"website": ""})
    env.engine.sync_entity("e2e", "export_registrations", bob)
    env.engine.sync_entity("e2e", "export_registrations", carol)
    _run(env)
    assert _lead(env, "bob@example.com")["FirstName"] == "Bobby"  # emptied in the CRM: filled
    assert _lead(env, "carol@example.com")["Website"] == "https://carol.new"
    log = env.engine.store.sync_log(flow="export_registrations", entity=carol, outcome="done")
    assert "held by policy" in log[0].message and "Website" in log[0].message


def test_the_update_only_attendance_flow_applies_policies(make_env, wait):
    flows = {
        "import_registrations": {
            "source_object": "CampaignMember",
            "ticket_code_field": "Campaign.Hopin_Ticket_Code__c",
            "fields": [{"target": "email", "source": "Email"}],
        },
        "attendance": {
            "target_object": "CampaignMember",
            "status_field": "Status",
            "attended_value": "Attended",
            "fields": [
                {"target": STATUS_FIELD, "constant": "Came", "policy": "always"},
                {"target": LINK_FIELD, "source": "email", "policy": "if_empty"},
            ],
        },
    }
    env = make_env(triggers=True, pollers=False, flows=flows)
    [member] = env.members(env.campaign(), ["ada@example.com"])
    [kept] = env.hooks.push(
        env.crm,
        PushRequest(
            "CampaignMember",
            "update",
            (PushItem("m", {LINK_FIELD: "https://typed.example/ada"}, id=member),),
        ),
    )
    assert kept.ok, kept.error
    [link] = wait("the invitation", lambda: env.magic_links("ada@example.com"))
    env.hopin_admin("POST", f"/magicLinks/{link.id}/accept")
    env.hopin_admin("POST", "/attendance", {"email": "ada@example.com", "durationSeconds": 600})
    row = wait("Attended", lambda: (m := env.member(member)).get("Status") == "Attended" and m)
    assert row.get(STATUS_FIELD) == "Came"  # a constant given policy "always"
    assert row.get(LINK_FIELD) == "https://typed.example/ada"  # if_empty: it had a value


def test_records_no_policy_applies_to_take_the_plain_upsert(make_env):
    # A default placeholder guards only the records it fills: registrations with a headline go
    # to the plugin's external-id upsert (one Collections call, no match query); one without
    # is matched by the flow, so the Company a salesperson typed survives.
    fields = [
        {"target": "LastName", "source": "lastName"},
        {"target": "Email", "source": "email"},
        {
            "target": "Company",
            "source": "headline",
            "transforms": [{"name": "default", "value": "Hopin attendee"}],
        },
        {"target": REGISTRATION_ID_FIELD, "source": "id"},
    ]
    flows = {
        "export_registrations": {
            "target_object": "Lead",
            "match_key": REGISTRATION_ID_FIELD,
            "fields": fields,
        }
    }
    env = make_env(triggers=False, pollers=False, start=False, flows=flows)
    env.register("ann@example.com", lastName="Ann", headline="Speaker")
    env.register("ben@example.com", lastName="Ben", headline="Engineer")
    env.sf_admin("POST", "/counters/reset", {})
    assert env.engine.backfill("e2e", "export_registrations").finished
    env.engine.start()
    _run(env)
    calls = env.sf_admin("GET", "/counters")["by_endpoint"]
    assert calls.get("query", 0) == 0, calls
    assert calls.get("collections") == 1, calls
    assert _lead(env, "ann@example.com")["Company"] == "Speaker"
    assert _lead(env, "ben@example.com")["Company"] == "Engineer"

    cleo = env.register("cleo@example.com", lastName="Cleo", headline="")
    env.sf_insert(
        "Lead",
        [
            {
                "Email": "cleo@example.com",
                "LastName": "C",
                "Company": "CleoCo",
                REGISTRATION_ID_FIELD: cleo,
            }
        ],
    )
    env.sf_admin("POST", "/counters/reset", {})
    assert env.engine.backfill("e2e", "export_registrations").finished
    _run(env)
    calls = env.sf_admin("GET", "/counters")["by_endpoint"]
    assert calls.get("query") == 1, calls  # the flow's own match, for the placeholder
    got = _lead(env, "cleo@example.com")
    assert (got["LastName"], got["Company"]) == ("Cleo", "CleoCo")
