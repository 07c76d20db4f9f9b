"""What plugins declare: profiles (role, settings, batch limit, case rule, defaults), and what
core does with it: roles inferred, defaults filled, batches split, case mistakes caught.

The plugins here are small in-process declarations; the systems behind them are never called
except where a test records what the engine asks of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import pytest
from eventsync import hookimpl
from eventsync.config import Config, FlowsConfig, OrgConfig, parse_config
from eventsync.errors import ConfigurationError
from eventsync.flows.base import FlowCheck, FlowContext
from eventsync.models import (
    FieldSchema,
    ObjectSchema,
    PushItem,
    PushRequest,
    PushResult,
    Schema,
    SystemProfile,
)
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.settings import describe, setting


@attrs.frozen(kw_only=True)
class TinySettings:
    url: str = setting(label="URL", help="Where the API is.")
    token_env: str | None = setting(None, label="Token", help="The API token.", secret=True)


@attrs.frozen
class Conn:
    org: str
    system: str = "tinycrm"


class TinyCrm:
    """A case-sensitive CRM with lowercase field names and a batch limit of 3."""

    def __init__(self, system: str = "tinycrm") -> None:
        self.system = system
        self.calls: list[int] = []

    @hookimpl
    def system_profiles(self) -> list[SystemProfile]:
        return [
            SystemProfile(
                system=self.system,
                role="crm",
                settings=TinySettings,
                max_batch=3,
                case_sensitive_fields=True,
                person_fields={
                    "first_name": "firstname",
                    "last_name": "lastname",
                    "email": "email",
                },
                flow_defaults={
                    "attendance": {
                        "target_object": "invitation",
                        "status_field": "state",
                        "attended_value": "attended",
                    }
                },
            )
        ]

    @hookimpl
    def discover_schema(self, connection: Any, objects: Any) -> Schema | None:
        if connection.system != self.system:
            return None
        fields = tuple(
            FieldSchema(n, "string") for n in ("email", "firstname", "lastname", "state")
        )
        return Schema(self.system, {"contact": ObjectSchema("contact", fields)})

    @hookimpl
    def push(self, connection: Any, request: PushRequest) -> list[PushResult] | None:
        if connection.system != self.system:
            return None
        self.calls.append(len(request.items))
        return [
            PushResult(item.key, ok=True, id=f"id-{item.key}") for item in reversed(request.items)
        ]


@pytest.fixture
def hooks() -> Iterator[tuple[Hooks, TinyCrm]]:
    crm = TinyCrm()
    pm = make_plugin_manager(extra_plugins={"tinycrm": crm}, environ={})
    yield Hooks(pm), crm


def org_data(**extra: Any) -> dict[str, Any]:
    return {
        "plan": "business",
        "plugins": ["tinycrm", "hopin"],
        "systems": {"tinycrm": {"url": "http://127.0.0.1:1"}, "hopin": {}},
        **extra,
    }


def test_roles_are_inferred_and_defaults_come_from_the_plugins(hooks):
    config = parse_config(
        {
            "orgs": {
                "acme": org_data(
                    flows={"export_registrations": {"target_object": "contact"}, "attendance": {}}
                )
            }
        },
        hooks=hooks[0],
    )
    org = config.org("acme")
    assert (org.crm, org.event_platform) == ("tinycrm", "hopin")
    export = org.flows["export_registrations"]
    assert export.match_key == "email"
    assert [(f.target, f.source) for f in export.fields] == [
        ("firstname", "firstName"), ("lastname", "lastName"), ("email", "email"),
    ]  # fmt: skip
    attendance = org.flows["attendance"]
    assert (attendance.target_object, attendance.status_field, attendance.attended_value) == (
        "invitation", "state", "attended",
    )  # fmt: skip


def test_a_flow_setting_no_plugin_defaults_is_required(hooks):
    with pytest.raises(ConfigurationError) as exc:
        parse_config(
            {"orgs": {"acme": org_data(flows={"import_registrations": {}})}}, hooks=hooks[0]
        )
    assert "$.orgs.acme.flows.import_registrations.source_object: required setting missing" in (
        exc.value.problems
    )


def test_the_declared_settings_are_structured_strictly(hooks):
    data = org_data()
    data["systems"]["tinycrm"] = {"urll": "x", "token": "s3cret"}
    with pytest.raises(ConfigurationError) as exc:
        parse_config({"orgs": {"acme": data}}, hooks=hooks[0])
    problems = "\n".join(exc.value.problems)
    assert "$.orgs.acme.systems.tinycrm.urll: unknown setting; did you mean 'url'?" in problems
    assert "$.orgs.acme.systems.tinycrm.url: required setting missing" in problems
    assert "$.orgs.acme.systems.tinycrm.token: secrets may not be written in the file" in problems
    assert "s3cret" not in problems


def test_settings_carry_labels_help_and_secrecy_for_forms():
    [url, token] = describe(TinySettings)
    assert (url.name, url.label, url.required, url.secret) == ("url", "URL", True, False)
    assert (token.name, token.secret, token.required, token.default) == (
        "token_env",
        True,
        False,
        None,
    )


def test_two_crm_systems_need_the_org_to_name_one():
    pm = make_plugin_manager(
        extra_plugins={"tinycrm": TinyCrm(), "othercrm": TinyCrm("othercrm")}, environ={}
    )
    data = org_data(flows={"magic_links": {"link_field": "link"}})
    data["plugins"] = ["tinycrm", "othercrm", "hopin"]
    data["systems"]["othercrm"] = {"url": "http://127.0.0.1:2"}
    with pytest.raises(ConfigurationError) as exc:
        parse_config({"orgs": {"acme": data}}, hooks=Hooks(pm))
    assert any(
        p.startswith(
            "$.orgs.acme.crm: several enabled plugins declare a crm system (othercrm, tinycrm)"
        )
        for p in exc.value.problems
    )
    config = parse_config({"orgs": {"acme": {**data, "crm": "othercrm"}}}, hooks=Hooks(pm))
    assert config.org("acme").crm == "othercrm"


def test_a_system_declared_twice_is_an_error():
    pm = make_plugin_manager(extra_plugins={"a": TinyCrm(), "b": TinyCrm()}, environ={})
    with pytest.raises(ConfigurationError, match="system 'tinycrm' is declared by two plugins"):
        Hooks(pm).profiles()


def test_pushes_are_split_to_the_declared_batch_limit_and_correlated_by_key(hooks):
    facade, crm = hooks
    config = parse_config({"orgs": {"acme": org_data()}}, hooks=facade)
    ctx = FlowContext(
        config=config, org=config.org("acme"), hooks=facade, store=None,  # type: ignore[arg-type]
        connect=lambda role: Conn("acme"), describe=lambda role, obj: None, transforms={},
        mark=lambda flow, entities: 0,
    )  # fmt: skip
    items = tuple(PushItem(str(i), {"email": f"p{i}@example.com"}) for i in range(8))
    results = ctx.push("crm", PushRequest("contact", "insert", items))
    assert crm.calls == [3, 3, 2]
    assert {r.key: r.id for r in results} == {str(i): f"id-{i}" for i in range(8)}


def test_case_sensitive_field_names_are_caught_with_a_hint(hooks):
    facade, _ = hooks
    schema = facade.discover_schema(Conn("acme"), ["contact"])
    contact = schema.object("contact")
    assert contact.case_sensitive and contact.field("FirstName") is None
    config = parse_config(
        {"orgs": {"acme": org_data(flows={"export_registrations": {
            "target_object": "contact", "match_key": "Email",
            "fields": [{"target": "FirstName", "source": "firstName"}],
        }})}},
        hooks=facade,
    )  # fmt: skip
    platform = Schema("hopin", {"registration": ObjectSchema("registration", (
        FieldSchema("firstName", "string"), FieldSchema("email", "email"),
    ))})  # fmt: skip
    org = config.org("acme")
    check = FlowCheck(config, org, "export_registrations", org.flows["export_registrations"],
                      {"crm": schema, "platform": platform}, facade.transforms())  # fmt: skip
    messages = [f.message for f in facade.flows()["export_registrations"].check(check)]
    assert any("did you mean 'firstname'?" in m for m in messages), messages
    assert any("Email does not exist (field names are case-sensitive here: did you mean 'email'?)"
               in m for m in messages), messages  # fmt: skip


def test_flows_config_made_in_code_keeps_instances():
    org = OrgConfig(plan="business", flows=FlowsConfig(export_registrations={"target_object": "x"}))
    assert org.flows.enabled() == ["export_registrations"]
    assert org.flows.attendance is None
    assert isinstance(Config(orgs={"acme": org}).org("acme").flows, FlowsConfig)
