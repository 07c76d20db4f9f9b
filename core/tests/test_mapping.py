"""Mapping: values from paths, constants and templates through transforms; validation."""

import pytest
from eventsync.errors import MappingError
from eventsync.mapping import apply_mapping, validate_mapping
from eventsync.models import (
    FieldMap,
    FieldSchema,
    ObjectSchema,
    Record,
    RecordMapping,
    Schema,
    Transform,
)
from eventsync.transforms import BUILTIN_TRANSFORMS as T

LEAD = ObjectSchema(
    "Lead",
    (
        FieldSchema("LastName", "string", length=10, nillable=False),
        FieldSchema("Company", "string", length=20, nillable=False),
        FieldSchema("Email", "email"),
        FieldSchema(
            "Status", "picklist", picklist_values=("Open", "Closed"), restricted_picklist=True
        ),
        FieldSchema("Visited__c", "date"),
        FieldSchema("Id", "id", createable=False, updateable=False, nillable=False),
        FieldSchema("IsConverted", "boolean", createable=False, updateable=False, nillable=False),
        FieldSchema("CreatedDate", "datetime", createable=False, updateable=False),
    ),
)
REGISTRATION = ObjectSchema(
    "registration",
    (
        FieldSchema("firstName", "string"),
        FieldSchema("lastName", "string"),
        FieldSchema("email", "email"),
        FieldSchema("createdAt", "datetime"),
        FieldSchema("answers", "json"),
        FieldSchema("count", "int"),
    ),
)
CM = ObjectSchema(
    "CampaignMember",
    (
        FieldSchema(
            "CampaignId", "reference", reference_to=("Campaign",), relationship_name="Campaign"
        ),
    ),
)
CAMPAIGN = ObjectSchema("Campaign", (FieldSchema("Code__c", "string"),))
SF = Schema("salesforce", {"Lead": LEAD, "CampaignMember": CM, "Campaign": CAMPAIGN})
HOPIN = Schema("hopin", {"registration": REGISTRATION})


def mapping(*fields):
    return RecordMapping("registration", "Lead", tuple(fields), name="export")


def test_source_constant_template_and_transforms():
    record = Record(
        "hopin",
        "registration",
        "r1",
        {
            "firstName": "  Ada ",
            "lastName": "Lovelace-Byron",
            "email": " ADA@EXAMPLE.COM ",
            "createdAt": "2026-11-28T10:11:12Z",
            "answers": {"company": "Analytical"},
        },
    )
    out = apply_mapping(
        record,
        mapping(
            FieldMap("LastName", source="lastName", transforms=(Transform("truncate"),)),
            FieldMap("Email", source="email", transforms=(Transform("strip"), Transform("lower"))),
            FieldMap("Company", template="{answers.company} Ltd"),
            FieldMap("Status", constant="Open"),
            FieldMap("Visited__c", source="createdAt", transforms=(Transform("date"),)),
        ),
        LEAD,
        T,
    )
    assert out == {
        "LastName": "Lovelace-B",
        "Email": "ada@example.com",
        "Company": "Analytical Ltd",
        "Status": "Open",
        "Visited__c": "2026-11-28",
    }


def test_value_map_and_restricted_picklist_at_runtime():
    record = Record("hopin", "registration", "r1", {"status": "weird"})
    m = mapping(
        FieldMap(
            "Status", source="status", transforms=(Transform("value_map", {"map": {"ok": "Open"}}),)
        )
    )
    with pytest.raises(MappingError) as exc:
        apply_mapping(record, m, LEAD, T)
    assert "mapping 'export' -> Lead.Status" in str(exc.value)
    assert "'weird' is not an allowed value" in str(exc.value)
    assert apply_mapping(Record("hopin", "registration", "r", {"status": "ok"}), m, LEAD, T) == {
        "Status": "Open"
    }


def test_transform_failure_names_the_entry():
    m = mapping(FieldMap("Visited__c", source="createdAt", transforms=(Transform("date"),)))
    with pytest.raises(MappingError, match=r"Lead.Visited__c: 'yesterday' is not an ISO 8601"):
        apply_mapping(Record("hopin", "registration", "r", {"createdAt": "yesterday"}), m, LEAD, T)


def test_datetime_transform_writes_salesforce_format():
    assert T["datetime"]("2026-11-28T10:11:12.5+02:00", {}, None) == "2026-11-28T08:11:12.500Z"


def test_valid_mapping_has_no_problems():
    m = mapping(
        FieldMap("LastName", source="lastName"),
        FieldMap("Company", constant="Acme"),
        FieldMap("Email", source="email"),
        FieldMap("Visited__c", source="createdAt", transforms=(Transform("date"),)),
    )
    assert validate_mapping(m, HOPIN, SF, operation="upsert", transforms=T) == []


def test_every_kind_of_mapping_problem_is_reported_at_once():
    m = mapping(
        FieldMap("Nope__c", source="email"),  # unknown target field
        FieldMap("Email", source="missing"),  # unknown source field
        FieldMap("Visited__c", source="count"),  # type mismatch
        FieldMap("CreatedDate", source="createdAt"),  # not createable/updateable
        FieldMap("Status", constant="Bogus"),  # picklist value not allowed
        FieldMap(
            "LastName", source="lastName", transforms=(Transform("shout"),)
        ),  # unknown transform
    )
    problems = validate_mapping(
        m, HOPIN, SF, operation="upsert", transforms=T, where="$.orgs.a.flows.x.fields"
    )
    text = "\n".join(problems)
    assert "target field 'Nope__c' does not exist on Lead" in text
    assert "source field 'missing' does not exist on registration" in text
    assert "type mismatch: a int value cannot be written to date field Lead.Visited__c" in text
    assert (
        "Lead.CreatedDate is not createable" in text
        and "Lead.CreatedDate is not updateable" in text
    )
    assert "'Bogus' is not an allowed value of picklist Lead.Status" in text
    assert "unknown transform 'shout'" in text
    assert "required field 'Company' is not mapped" in text
    assert all(p.startswith("$.orgs.a.flows.x.fields: ") for p in problems)
    assert "'Id'" not in text and "IsConverted" not in text  # not createable, not required


def test_relationship_paths_resolve_through_reference_fields():
    m = RecordMapping(
        "CampaignMember",
        "Lead",
        (
            FieldMap("LastName", source="Campaign.Code__c"),
            FieldMap("Company", source="Campaign.Nope__c"),
        ),
    )
    problems = validate_mapping(m, SF, SF, operation="update", transforms=T)
    assert (
        len(problems) == 1
        and "source field 'Campaign.Nope__c' does not exist on Campaign" in problems[0]
    )


def test_value_map_outputs_checked_against_picklist():
    m = mapping(
        FieldMap(
            "Status", source="email", transforms=(Transform("value_map", {"map": {"a": "Maybe"}}),)
        )
    )
    problems = validate_mapping(m, HOPIN, SF, operation="update", transforms=T)
    assert any("value map produces 'Maybe'" in p for p in problems)


def test_join_takes_the_default_separator_when_given_null_and_refuses_a_non_text_one():
    # Found by the property test: {"separator": None} raised AttributeError.
    from eventsync.transforms import join

    assert join(["a", "b"], {"separator": None}, None) == "a;b"
    assert join(["a", "b"], {"separator": ", "}, None) == "a, b"
    with pytest.raises(ValueError, match="join's separator must be text, not 3"):
        join(["a"], {"separator": 3}, None)
