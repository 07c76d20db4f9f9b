"""Configuration: strict structuring, every problem in one run with its path, no literal secrets."""

import tomllib

import pytest
from eventsync.config import example_config, load_config, parse_config
from eventsync.errors import ConfigurationError


def example():
    return tomllib.loads(example_config())


def problems(data):
    with pytest.raises(ConfigurationError) as exc:
        parse_config(data)
    return exc.value.problems


def test_example_config_is_valid_and_enables_all_four_flows():
    config = parse_config(example())
    org = config.org("acme")
    assert org.flows.enabled() == [
        "export_registrations",
        "import_registrations",
        "magic_links",
        "attendance",
    ]
    assert org.settings("salesforce").get("grant") == "jwt"


def test_structural_mistakes_are_all_reported_with_paths():
    data = example()
    data["engine"]["workers"] = "two"
    data["orgs"]["acme"]["bogus"] = 1
    data["orgs"]["acme"]["flows"]["export_registrations"]["fields"][0]["sorce"] = "x"
    data["orgs"]["acme"]["plugins"] = "salesforce"
    data["orgs"]["beta"] = {"plugins": ["salesforce"]}
    found = problems(data)
    assert set(found) >= {
        "$.engine.workers: expected a whole number, got str 'two'",
        "$.orgs.acme.bogus: unknown setting (known: plan, plugins, crm, event_platform, "
        "systems, flows, plugin_options, erasure, queue)",
        "$.orgs.acme.flows.export_registrations.fields[0].sorce: unknown setting",
        '$.orgs.acme.plugins: expected a list of names, e.g. ["salesforce"]',
        "$.orgs.beta.plan: required setting missing",
    }


def test_semantic_mistakes_are_all_reported_with_paths():
    data = example()
    data["orgs"]["acme"]["systems"]["salesforce"]["client_secret"] = "hunter2"
    data["orgs"]["acme"]["systems"]["hopin"]["api_key_env"] = "not a var"
    data["orgs"]["acme"]["flows"]["export_registrations"]["fields"].append(
        {"target": "X", "source": "a", "constant": 1}
    )
    data["engine"]["batch_size"] = 5000
    data["orgs"]["small"] = {"plan": "starter", "systems": {}}
    found = "\n".join(problems(data))
    assert (
        "$.orgs.acme.systems.salesforce.client_secret: secrets may not be written in the file"
        in found
    )
    assert "hunter2" not in found
    assert "$.orgs.acme.systems.hopin.api_key_env: must name an environment variable" in found
    assert (
        "$.orgs.acme.flows.export_registrations.fields[5]: give exactly one of source, constant or template"
        in found
    )
    assert "$.engine.batch_size: must be between 1 and 1000" in found
    assert "$.orgs.small.plan: unknown plan 'starter'" in found


def test_a_key_holding_the_path_separator_keeps_its_whole_path():
    # Found by test_properties_config: cattrs writes "message @ path", and a key with " @ "
    # in it was cut there, giving problems like "y.plan: expected text, got int 5 @ $.orgs.x".
    data = example()
    data["orgs"]["x @ y"] = {"plan": 5, "bogus": 1}
    data["orgs"]["acme"]["systems"]["hopin"]["report_columns"] = {"a @ b": 1}
    assert set(problems(data)) >= {
        "$.orgs.x @ y.plan: expected text, got int 5",
        "$.orgs.x @ y.bogus: unknown setting (known: plan, plugins, crm, event_platform, "
        "systems, flows, plugin_options, erasure, queue)",
        "$.orgs.acme.systems.hopin.report_columns.a @ b: expected text, got int 1",
    }


def test_plan_without_entitlement_cannot_enable_a_flow():
    data = example()
    data["entitlements"]["starter"] = ["export_registrations"]
    data["orgs"]["acme"]["plan"] = "starter"
    found = problems(data)
    assert any(
        p.startswith("$.orgs.acme.flows.import_registrations: plan 'starter' is not entitled")
        for p in found
    )
    assert not any("export_registrations: plan" in p for p in found)


def test_a_flow_without_configuration_is_off():
    data = example()
    del data["orgs"]["acme"]["flows"]["attendance"]
    assert "attendance" not in parse_config(data).org("acme").flows.enabled()


def test_toml_syntax_error_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[orgs.acme\nplan=1")
    with pytest.raises(ConfigurationError, match="invalid TOML"):
        load_config(bad)
    with pytest.raises(ConfigurationError, match="eventsync init"):
        load_config(tmp_path / "missing.toml")


def test_transforms_accept_names_and_tables():
    config = parse_config(example())
    fields = config.mapping("acme", "export_registrations", "registration", "Lead").fields
    company = next(f for f in fields if f.target == "Company")
    assert [t.name for t in company.transforms] == ["default", "truncate"]
    assert company.transforms[0].args == {"value": "Unknown"}


def test_sqlite_synchronous_is_checked_and_reaches_the_store(tmp_path):
    import attrs
    from eventsync.engine import open_store

    data = example()
    data["engine"]["sqlite_synchronous"] = "OFF"
    [problem] = [p for p in problems(data) if "sqlite_synchronous" in p]
    assert problem.startswith("$.engine.sqlite_synchronous: 'OFF' is not FULL")
    for given, level in (("FULL", 2), ("normal", 1)):
        data["engine"]["sqlite_synchronous"] = given
        config = parse_config(data)
        state = str(tmp_path / f"{given}.sqlite3")
        config = attrs.evolve(config, engine=attrs.evolve(config.engine, state=state))
        store = open_store(config)
        try:
            with store.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == level
        finally:
            store.close()
