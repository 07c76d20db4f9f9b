"""Models: frozen records, dotted paths, secrets through environment variables."""

import attrs
import pytest
from eventsync.errors import ConfigurationError
from eventsync.models import FieldSchema, ObjectSchema, Record, Schema, SystemSettings, get_path


def test_records_are_frozen():
    record = Record("salesforce", "Lead", "00Q1", {"Email": "a@b.c"})
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        record.id = "x"


def test_dotted_paths_follow_relationships_and_stop_at_none():
    fields = {"Campaign": {"Hopin_Ticket_Code__c": "ABC"}, "Lead": None}
    assert get_path(fields, "Campaign.Hopin_Ticket_Code__c") == "ABC"
    assert get_path(fields, "Lead.Email") is None
    assert Record("s", "o", None, fields).get("Campaign.Missing") is None


def test_required_on_create_follows_salesforce_rule():
    assert FieldSchema("LastName", "string", nillable=False).required_on_create
    assert not FieldSchema("IsX", "boolean", nillable=False).required_on_create
    assert not FieldSchema(
        "OwnerId", "reference", nillable=False, defaulted_on_create=True
    ).required_on_create


def test_schema_lookups_are_case_insensitive():
    lead = ObjectSchema("Lead", (FieldSchema("Email", "email"),))
    schema = Schema("salesforce", {"Lead": lead})
    assert schema.object("lead") is lead
    assert lead.field("EMAIL").name == "Email"


def test_secret_reads_the_named_variable_and_never_shows_it():
    settings = SystemSettings(
        "salesforce", "acme", {"client_secret_env": "SF_SECRET"}, env={"SF_SECRET": "s3cr3t"}
    )
    assert settings.secret("client_secret") == "s3cr3t"
    assert "s3cr3t" not in repr(settings)


def test_missing_secret_names_the_path_and_variable():
    settings = SystemSettings("salesforce", "acme", {"client_secret_env": "SF_SECRET"}, env={})
    with pytest.raises(ConfigurationError) as exc:
        settings.secret("client_secret")
    assert "$.orgs.acme.systems.salesforce.client_secret_env" in str(exc.value)
    assert "SF_SECRET is not set" in str(exc.value)
