"""discover_schema, and the hooks through a real plugin manager."""

from __future__ import annotations

import pytest
from eventsync.errors import DiscoveryError
from eventsync.models import FIELD_TYPES, PullRequest
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync_hopin import plugin


def test_schema_has_the_flow_objects_with_types(fresh):
    schema = plugin.discover_schema(fresh.connection, None)
    assert schema.system == "hopin"
    assert set(schema.objects) == {
        "organization",
        "event",
        "ticket",
        "registration",
        "magicLink",
        "attendance",
    }
    for obj in schema.objects.values():
        for field in obj.fields:
            assert field.type in FIELD_TYPES, (obj.name, field.name)
    registration = schema.object("registration")
    for name in (
        "email",
        "firstName",
        "lastName",
        "headline",
        "website",
        "ticketId",
        "status",
        "metadata",
    ):
        assert registration.field(name) is not None, name
    link = schema.object("magicLink")
    assert link.field("magicLink").type == "url" and not link.field("magicLink").createable
    assert link.field("email").required_on_create and link.field("ticketId").required_on_create
    assert schema.object("ticket").field("integrationCode").external_id


def test_custom_questions_come_from_bank_questions(fresh, admin):
    question = admin.call(
        "POST",
        f"/tickets/{fresh.ticket_id}/bankQuestions",
        {
            "title": "T-shirt size",
            "questionType": "select",
            "options": ["S", "M", "L"],
            "required": True,
        },
    )["data"]
    admin.call("POST", f"/tickets/{fresh.ticket_id}/bankQuestions", {"title": "Why?"})
    schema = plugin.discover_schema(fresh.connection, ["registration"])
    field = schema.object("registration").field(f"answers.{question['id']}")
    assert field is not None and field.label == "T-shirt size"
    assert (
        field.type == "picklist" and field.picklist_values == ("S", "M", "L") and not field.nillable
    )
    assert sum(f.name.startswith("answers.") for f in schema.object("registration").fields) == 2
    reg = admin.registration(
        fresh.event_id,
        fresh.ticket_id,
        "q@example.com",
        answers=[{"questionId": question["id"], "answer": "M"}],
    )
    [record] = plugin.pull(fresh.connection, PullRequest("registration", ids=(reg["id"],)))
    assert record.get(f"answers.{question['id']}") == "M"


def test_unknown_object_is_a_discovery_error(fresh):
    with pytest.raises(DiscoveryError, match="nope"):
        plugin.discover_schema(fresh.connection, ["nope"])
    assert plugin.discover_schema(object(), None) is None


def test_hooks_through_the_plugin_manager(sandbox):
    hooks = Hooks(make_plugin_manager(allow=["hopin"], environ={}))
    connection = hooks.authenticate(sandbox.settings("acme"))
    assert connection.system == "hopin"
    records = list(hooks.pull(connection, PullRequest("ticket")))
    assert sandbox.info()["ticket_id"] in [r.id for r in records]
