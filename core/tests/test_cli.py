"""The eventsync command, run as a real process."""

import json


def test_help_lists_commands(run_cli):
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("check", "init", "plugins"):
        assert command in result.stdout


def test_init_then_offline_check_is_clean(run_cli, tmp_path):
    assert run_cli("init").returncode == 0
    assert (tmp_path / "eventsync.toml").exists()
    assert run_cli("init").returncode == 2  # refuses to overwrite
    result = run_cli("check", "--offline")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "clean" in result.stdout


def test_check_lists_every_problem_and_exits_2(run_cli, tmp_path):
    (tmp_path / "bad.toml").write_text(
        '[engine]\nworkers = "x"\n[orgs.a]\nplan = "gold"\nbogus = 1\n'
        '[orgs.a.systems.salesforce]\npassword = "hunter2"\n'
    )
    result = run_cli("check", "--config", "bad.toml", "--json")
    assert result.returncode == 2
    report = json.loads(result.stdout)
    assert report["ok"] is False
    # One pass: a structural mistake in the org no longer hides its other mistakes.
    assert set(report["configuration_problems"]) >= {
        "$.engine.workers: expected a whole number, got str 'x'",
        "$.orgs.a.bogus: unknown setting (known: plan, plugins, crm, event_platform, systems, "
        "flows, plugin_options, erasure, queue)",
        "$.orgs.a.plan: unknown plan 'gold' (plans with entitlements: business, enterprise)",
    }
    assert any(
        p.startswith("$.orgs.a.systems.salesforce.password: secrets may not be written")
        for p in report["configuration_problems"]
    )
    (tmp_path / "bad2.toml").write_text(
        '[orgs.a]\nplan = "gold"\n[orgs.a.systems.salesforce]\npassword = "hunter2"\n'
    )
    result = run_cli("check", "--config", "bad2.toml")
    assert result.returncode == 2
    assert "$.orgs.a.plan: unknown plan 'gold'" in result.stderr
    assert "$.orgs.a.systems.salesforce.password" in result.stderr
    assert "hunter2" not in result.stderr + result.stdout


def test_a_plugin_that_is_not_installed_is_a_configuration_problem(run_cli, tmp_path):
    run_cli("init")
    result = run_cli("check", "--json", "--offline", env={"EVENTSYNC_PLUGINS": ""})
    assert result.returncode == 2
    problems = json.loads(result.stdout)["configuration_problems"]
    assert any(
        p.startswith("$.orgs.acme.plugins: plugin 'salesforce' is not installed or is blocked")
        for p in problems
    ), problems


def test_plugins_json_shows_distributions_hooks_and_orgs(run_cli):
    run_cli("init")
    result = run_cli("plugins", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["salesforce"]["distribution"] == "eventsync-salesforce"
    assert rows["salesforce"]["orgs"] == ["acme"]
    assert rows["pardot_guard"]["orgs"] == []
    assert rows["builtin_transforms"]["hooks"] == ["register_transforms"]


def test_plugins_table_is_readable(run_cli):
    result = run_cli("plugins")
    assert result.returncode == 0
    assert "eventsync-hopin" in result.stdout and "register_transforms" in result.stdout


def test_status_lists_dead_letters_and_retry_moves_them_back(run_cli, tmp_path):
    from eventsync.models import RemoteFailure
    from eventsync.store import StateStore

    run_cli("init")
    config = tmp_path / "eventsync.toml"
    config.write_text(
        config.read_text().replace('state = "eventsync.sqlite"', 'state = "state.sqlite"')
    )
    store = StateStore.open(path=tmp_path / "state.sqlite", max_attempts=1)
    store.mark("acme", "export_registrations", "reg-1")
    [item] = store.lease("test")
    store.fail(
        item,
        RemoteFailure("FIELD_CUSTOM_VALIDATION_EXCEPTION", "Spam companies may not register"),
        retryable=False,
    )
    store.close()

    status = run_cli("status", "--dead-letters")
    assert status.returncode == 1
    assert "Spam companies may not register" in status.stdout and "reg-1" in status.stdout
    as_json = json.loads(run_cli("status", "--json").stdout)
    assert as_json["dead_letters"][0]["code"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION"

    # A selection that names nothing is a usage error and moves nothing.
    for args, expected in (
        (("--org", "nosuch"), "--org nosuch: no such organisation (known: acme)"),
        (("--flow", "nosuch"), "--flow nosuch: no organisation configures it"),
        (("--id", "999"), "--id 999: no such dead letter"),
        (("--org", "acme", "--flow", "attendance", "--id", "1"), "--id 1: no such dead letter of acme/attendance"),
    ):  # fmt: skip
        refused = run_cli("retry", *args)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert expected in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr
    assert json.loads(run_cli("status", "--json").stdout)["dead_letters"]  # still there

    retried = run_cli("retry", "--json")
    assert retried.returncode == 0 and json.loads(retried.stdout) == {"retried": 1}
    after = run_cli("status", "--json")
    assert after.returncode == 0
    flows = {f["flow"]: f for f in json.loads(after.stdout)["flows"]}
    assert (
        flows["export_registrations"]["pending"] == 1
        and flows["export_registrations"]["dead_letters"] == 0
    )


def test_backfill_of_an_unconfigured_flow_is_a_usage_error(run_cli, tmp_path):
    run_cli("init")
    result = run_cli("backfill", "no_such_flow")
    assert result.returncode == 2
    assert "no organisation has the flow 'no_such_flow' configured" in result.stderr


def test_run_refuses_a_flow_the_plan_is_not_entitled_to(run_cli, tmp_path):
    run_cli("init")
    config = tmp_path / "eventsync.toml"
    text = config.read_text().replace('plan = "business"', 'plan = "starter"')
    config.write_text(
        text.replace("[entitlements]\n", '[entitlements]\nstarter = ["export_registrations"]\n')
    )
    for command in (("run",), ("check", "--offline")):
        result = run_cli(*command)
        assert result.returncode == 2, command
        assert (
            "$.orgs.acme.flows.import_registrations: plan 'starter' is not entitled to this flow"
            in result.stderr
        )


PLANTED = """
[engine]
listen = "127.0.0.1:99999"
workers = "two"
batch_size = 0

[orgs.acme]
plan = "business"
plugins = ["salesforce", "hopin", "pardot_guard", "no_such_plugin"]
colour = "blue"

[orgs.acme.systems.salesforce]
login_url = "https://login.salesforce.com"
client_id = "3MVG9"
username = "integration@acme.example"
private_key_env = "SF_PRIVATE_KEY"
max_retries = "many"
logn_url = "https://test.salesforce.com"
grant = "magic"

[orgs.acme.systems.hopin]
api_key_env = "HOPIN_API_KEY"
page_size = "lots"
colour = "red"

[orgs.acme.plugin_options.pardot_guard]
check_opt_outs = true

[orgs.acme.flows.export_registrations]
target_object = "Lead"
poll_interval = "hourly"

[[orgs.acme.flows.export_registrations.fields]]
target = "Email"
source = "email"
constant = "x"

[orgs.acme.flows.my_flow]
enabled = true

[orgs.ACME]
plan = "business"
plugins = ["salesforce", "hopin"]

[orgs.ACME.flows.magic_links]
link_field = "Link__c"
"""


def test_check_offline_reports_every_planted_mistake_with_its_path_and_exits_2(run_cli, tmp_path):
    (tmp_path / "planted.toml").write_text(PLANTED)
    result = run_cli("check", "--offline", "--json", "--config", "planted.toml")
    assert result.returncode == 2, result.stdout + result.stderr
    problems = json.loads(result.stdout)["configuration_problems"]
    expected = [
        "$.engine.listen: '127.0.0.1:99999' is not HOST:PORT",
        "$.engine.workers: expected a whole number",
        "$.engine.batch_size: must be between 1 and",
        "$.orgs.acme.plugins: plugin 'no_such_plugin' is not installed",
        "$.orgs.acme.colour: unknown setting",
        "$.orgs.acme.systems.salesforce.max_retries: expected a whole number, got str 'many'",
        "$.orgs.acme.systems.salesforce.logn_url: unknown setting; did you mean 'login_url'?",
        "$.orgs.acme.systems.salesforce.grant:",
        "$.orgs.acme.systems.hopin.page_size: expected a whole number",
        "$.orgs.acme.systems.hopin.colour: unknown setting",
        "$.orgs.acme.plugin_options.pardot_guard.check_opt_outs: unknown setting; did you mean "
        "'check_opt_out'?",
        "$.orgs.acme.flows.export_registrations.poll_interval: expected a number",
        "$.orgs.acme.flows.export_registrations.fields[0]: give exactly one of source, constant",
        "$.orgs.acme.flows.my_flow: no installed plugin provides the flow 'my_flow'",
        "$.orgs.ACME: the organisation 'acme' has the same name in another letter case",
        "$.orgs.ACME.crm: system 'salesforce' has no [orgs.ACME.systems.salesforce] settings",
    ]
    missing = [e for e in expected if not any(p.startswith(e) for p in problems)]
    assert not missing, f"not reported: {missing}\nreported: {problems}"
    assert "Traceback" not in result.stderr
    # The table a person reads shows the same problems; "[orgs.acme...]" is not eaten as markup.
    table = run_cli("check", "--offline", "--config", "planted.toml")
    assert table.returncode == 2
    assert "Traceback" not in table.stderr
    flat = "".join(ch for ch in table.stderr if not ch.isspace() and ch not in "│┃")
    assert "hasno[orgs.ACME.systems.salesforce]settings" in flat, table.stderr
