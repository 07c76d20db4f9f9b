"""sandbox_env with a third-party CRM and event platform: everything comes from their hooks."""

from __future__ import annotations

import os
import stat
import tomllib
from typing import Any

import pytest
from eventsync import hookimpl
from eventsync.errors import ConfigurationError
from eventsync.models import SystemProfile, SystemSettings
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import (
    SandboxFlows,
    SandboxSystem,
    choice_note,
    choose_system,
    config_for,
    merge_flows,
    merge_options,
    sandbox_config_files,
    start_sandboxes,
    write_private,
)


class FakeHandle:
    """A sandbox that runs nowhere; records its options and whether it was stopped."""

    def __init__(self, system: str, options: dict[str, Any]) -> None:
        self.system, self.options, self.stopped = system, options, False
        self.url = f"https://{system}.invalid"

    def settings(self, org: str) -> SystemSettings:
        return SystemSettings(
            self.system,
            org,
            {"url": self.url, "token_env": f"{self.system.upper()}_TOKEN"},
            env={f"{self.system.upper()}_TOKEN": "s3cret"},
        )

    def info(self) -> dict[str, Any]:
        return {"system": self.system, "url": self.url}

    def stop(self) -> None:
        self.stopped = True


class AcmeCrm:
    """A CRM plugin from another distribution, with its sandbox wiring."""

    started: list[FakeHandle]

    def __init__(self) -> None:
        self.started = []

    @hookimpl
    def sandbox_systems(self) -> list[SandboxSystem]:
        return [SandboxSystem("acmecrm", "crm", "Acme CRM")]

    @hookimpl
    def system_profiles(self) -> list[SystemProfile]:
        return [SystemProfile("acmecrm", "crm", "Acme CRM")]

    @hookimpl
    def sandbox_options(self, system: str, notify_url: str | None) -> dict[str, Any] | None:
        if system != "acmecrm":
            return None
        return {"fields": ["Ticket_Code"], "webhooks": [notify_url] if notify_url else []}

    @hookimpl
    def start_sandbox(self, system: str, options: dict[str, Any]) -> FakeHandle | None:
        if system != "acmecrm":
            return None
        self.started.append(FakeHandle(system, options))
        return self.started[-1]

    @hookimpl
    def sandbox_flows(self, system: str) -> SandboxFlows | None:
        if system != "acmecrm":
            return None
        return SandboxFlows(
            settings={
                "export_registrations": {"target_object": "Contact", "match_key": "mail"},
                "import_registrations": {
                    "source_object": "Invitee",
                    "ticket_code_field": "Event.Ticket_Code",
                },
                "magic_links": {"link_field": "Link"},
            },
            fields={
                "export_registrations": {
                    "email": {"target": "mail", "transforms": ["lower"]},
                    "company": {"target": "org", "constant": "(none)"},
                    "phone": {"target": "tel"},
                },
                "import_registrations": {"email": {"source": "mail"}},
            },
        )


class ExpoPlatform:
    """An event-platform plugin from another distribution, with its sandbox wiring."""

    fail = False

    @hookimpl
    def sandbox_systems(self) -> list[SandboxSystem]:
        return [SandboxSystem("expo", "event_platform", "Expo")]

    @hookimpl
    def system_profiles(self) -> list[SystemProfile]:
        return [SystemProfile("expo", "event_platform", "Expo")]

    @hookimpl
    def sandbox_options(self, system: str, registrations: int) -> dict[str, Any] | None:
        return {"seed": {"registrations": registrations}} if system == "expo" else None

    @hookimpl
    def start_sandbox(self, system: str, options: dict[str, Any]) -> FakeHandle | None:
        if system != "expo":
            return None
        if self.fail:
            raise RuntimeError("expo sandbox cannot start")
        return FakeHandle(system, options)

    @hookimpl
    def sandbox_wiring(self, system: str, notify_url: str | None) -> dict[str, Any] | None:
        if system != "expo":
            return None
        return {"webhook": notify_url} if notify_url else {}

    @hookimpl
    def sandbox_flows(self, system: str) -> SandboxFlows | None:
        if system != "expo":
            return None
        return SandboxFlows(
            settings={"export_registrations": {"refunded": "skip"}},
            fields={
                "export_registrations": {
                    "email": {"source": "Email", "transforms": ["strip"]},
                    "company": {"source": "employer"},
                    "first_name": {"source": "given"},
                },
                "import_registrations": {
                    "email": {"target": "Email"},
                    "last_name": {"target": "family"},
                },
            },
        )


def hooks_with(**plugins: object) -> Hooks:
    return Hooks(make_plugin_manager(load_entrypoints=False, extra_plugins=plugins))


@pytest.fixture
def crm() -> AcmeCrm:
    return AcmeCrm()


@pytest.fixture
def hooks(crm: AcmeCrm) -> Hooks:
    return hooks_with(acmecrm=crm, expo=ExpoPlatform())


def test_the_plugins_supply_options_wiring_flows_and_the_config(hooks: Hooks, crm: AcmeCrm):
    pair = start_sandboxes(
        hooks,
        org="o",
        endpoint="http://127.0.0.1:9/",
        registrations=5,
        options={"acmecrm": {"fields": ["Extra"], "limit": 3}},
    )
    assert pair.crm.system == "acmecrm" and pair.platform.system == "expo"
    assert crm.started[0].options == {
        "fields": ["Ticket_Code", "Extra"],
        "webhooks": ["http://127.0.0.1:9/hooks/o/acmecrm"],
        "limit": 3,
    }
    assert pair.platform.options == {"seed": {"registrations": 5}}  # type: ignore[attr-defined]
    assert pair.options("expo")["webhook"] == "http://127.0.0.1:9/hooks/o/expo"
    assert "webhook" not in pair.options("acmecrm")
    assert pair.secrets() == {"ACMECRM_TOKEN": "s3cret", "EXPO_TOKEN": "s3cret"}

    info = pair.info()
    assert (info["crm"], info["event_platform"]) == ("acmecrm", "expo")
    assert info["expo"]["settings"]["webhook"].endswith("/hooks/o/expo")
    assert info["acmecrm"]["secrets"] == {"ACMECRM_TOKEN": "s3cret"}

    config = config_for(pair, state=":memory:", poll_interval=0.5)
    org = config.org("o")
    assert (org.crm, org.event_platform, org.plugins) == ("acmecrm", "expo", ("acmecrm", "expo"))
    export = org.flows.export_registrations
    assert export is not None and export.refunded == "skip" and export.poll_interval == 0.5
    assert [(f.target, f.source, f.constant) for f in export.fields] == [
        ("mail", "Email", None),
        ("org", "employer", None),
    ]
    assert [t.name for t in export.fields[0].transforms] == ["strip", "lower"]
    imported = org.flows.import_registrations
    assert imported is not None and imported.source_object == "Invitee"
    assert [(f.target, f.source) for f in imported.fields] == [("Email", "mail")]
    assert org.flows.magic_links is not None and org.flows.attendance is None
    pair.stop()
    assert pair.crm.stopped and pair.platform.stopped  # type: ignore[attr-defined]


def test_without_triggers_nothing_points_at_the_endpoint(hooks: Hooks, crm: AcmeCrm):
    pair = start_sandboxes(hooks, endpoint="http://127.0.0.1:9", triggers=False)
    assert crm.started[0].options["webhooks"] == []
    assert "webhook" not in pair.options("expo") and pair.endpoint is None


def test_a_sandbox_that_fails_to_start_stops_the_one_already_running(crm: AcmeCrm):
    platform = ExpoPlatform()
    platform.fail = True
    with pytest.raises(RuntimeError, match="expo sandbox cannot start"):
        start_sandboxes(hooks_with(acmecrm=crm, expo=platform))
    assert crm.started[0].stopped


def test_the_config_files_for_the_info_file(hooks: Hooks):
    pair = start_sandboxes(hooks, org="o", endpoint="http://127.0.0.1:8123")
    toml_text, secrets = sandbox_config_files(
        pair.info(), hooks=hooks, secrets_file="s.env", engine={"workers": 3}
    )
    data = tomllib.loads(toml_text)
    assert data["engine"]["listen"] == "127.0.0.1:8123" and data["engine"]["workers"] == 3
    org = data["orgs"]["o"]
    assert org["crm"] == "acmecrm" and org["systems"]["expo"]["token_env"] == "EXPO_TOKEN"
    assert org["flows"]["export_registrations"]["target_object"] == "Contact"
    assert "s3cret" not in toml_text
    assert secrets == "ACMECRM_TOKEN=s3cret\nEXPO_TOKEN=s3cret\n"


def test_field_halves_pair_by_role_and_a_target_constant_is_a_fallback():
    crm = SandboxFlows(
        fields={"f": {"company": {"target": "Co", "constant": "none"}, "x": {"target": "X"}}}
    )
    with_value = SandboxFlows(fields={"f": {"company": {"source": "org"}}})
    assert merge_flows(crm, with_value)["f"]["fields"] == [{"target": "Co", "source": "org"}]
    without = merge_flows(crm, SandboxFlows())
    assert without["f"]["fields"] == [{"target": "Co", "constant": "none"}]
    # Both halves claiming the target make no entry rather than a wrong one.
    both = SandboxFlows(fields={"f": {"x": {"target": "Y", "source": "y"}}})
    assert merge_flows(crm, both)["f"]["fields"] == [{"target": "Co", "constant": "none"}]


def test_merge_options_merges_tables_and_concatenates_lists():
    base = {"config": {"fields": {"A": [1]}, "rules": [1]}, "port": 1}
    extra = {"config": {"fields": {"A": [2], "B": [3]}, "rules": [2]}, "port": 2}
    assert merge_options(base, extra) == {
        "config": {"fields": {"A": [1, 2], "B": [3]}, "rules": [1, 2]},
        "port": 2,
    }
    assert base["config"]["fields"] == {"A": [1]}  # the inputs are left alone


def test_choosing_names_the_installed_systems(hooks: Hooks):
    assert choose_system(hooks, "crm").system == "acmecrm"
    with pytest.raises(ConfigurationError) as exc:
        choose_system(hooks, "crm", "hubspot")
    assert exc.value.problems == ("no CRM named 'hubspot' is installed; installed CRMs: acmecrm",)
    with pytest.raises(ConfigurationError) as exc:
        choose_system(hooks, "crm", "expo")
    assert exc.value.problems[0].startswith("'expo' is not a CRM but an event platform;")
    with pytest.raises(ConfigurationError, match=r"no installed event platform offers a sandbox"):
        choose_system(hooks_with(acmecrm=AcmeCrm()), "event_platform")


def test_several_installed_systems_of_a_role_must_be_chosen_between(hooks: Hooks):
    class Other:
        @hookimpl
        def sandbox_systems(self) -> list[SandboxSystem]:
            return [SandboxSystem("othercrm", "crm")]

    several = hooks_with(acmecrm=AcmeCrm(), expo=ExpoPlatform(), other=Other())
    with pytest.raises(ConfigurationError) as exc:
        start_sandboxes(several)
    assert exc.value.problems == (
        "several CRMs offer a sandbox (acmecrm, othercrm); choose one with --crm NAME",
    )
    assert choose_system(several, "crm", "othercrm").system == "othercrm"


def test_a_declared_default_is_chosen_among_several_and_the_note_says_so(hooks: Hooks):
    class Preferred:
        @hookimpl
        def sandbox_systems(self) -> list[SandboxSystem]:
            return [SandboxSystem("othercrm", "crm", default=True)]

    several = hooks_with(acmecrm=AcmeCrm(), expo=ExpoPlatform(), other=Preferred())
    assert choose_system(several, "crm").system == "othercrm"
    assert choose_system(several, "crm", "acmecrm").system == "acmecrm"
    assert choice_note(several, "crm") == (
        "several CRMs offer a sandbox; using othercrm (the default); --crm NAME chooses "
        "another (acmecrm)"
    )
    assert choice_note(several, "crm", "acmecrm") is None
    assert choice_note(several, "event_platform") is None  # only one: nothing was chosen

    class AlsoPreferred:
        @hookimpl
        def sandbox_systems(self) -> list[SandboxSystem]:
            return [SandboxSystem("thirdcrm", "crm", default=True)]

    two_defaults = hooks_with(acmecrm=AcmeCrm(), other=Preferred(), third=AlsoPreferred())
    with pytest.raises(ConfigurationError, match=r"several CRMs offer a sandbox \(acmecrm, "):
        choose_system(two_defaults, "crm")
    assert choice_note(two_defaults, "crm") is None


def test_a_profile_gives_the_role_and_a_system_without_sandbox_is_listed():
    class Profiles:
        @hookimpl
        def system_profiles(self) -> list[SystemProfile]:
            return [
                SystemProfile("acmecrm", "crm", label="Acme"),
                SystemProfile("bare", "crm"),
            ]

    class Misdeclared:
        @hookimpl
        def sandbox_systems(self) -> list[SandboxSystem]:
            return [SandboxSystem("acmecrm", "event_platform")]

    hooks = hooks_with(profiles=Profiles(), acme=Misdeclared())
    assert choose_system(hooks, "crm") == SandboxSystem("acmecrm", "crm", "Acme")
    with pytest.raises(ConfigurationError) as exc:
        choose_system(hooks, "crm", "bare")
    assert exc.value.problems == (
        "the CRM 'bare' offers no sandbox; installed CRMs: acmecrm, bare (no sandbox)",
    )


def test_write_private_narrows_an_existing_file(tmp_path):
    path = tmp_path / "info.json"
    path.write_text("old")
    path.chmod(0o644)
    write_private(path, "new")
    assert path.read_text() == "new"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
