"""The plugin manager factory and the typed facade."""

import pluggy
import pytest
from eventsync import hookimpl
from eventsync.errors import NoPluginForSystem, PluginLoadError
from eventsync.models import Finding, Record, SystemSettings, Verdict
from eventsync.plugins import Hooks, describe_plugins, make_plugin_manager


def names(pm):
    return {n for n, p in pm.list_name_plugin() if p is not None}


def test_entry_points_and_builtins_are_loaded():
    pm = make_plugin_manager(environ={})
    assert {
        "salesforce",
        "hopin",
        "pardot_guard",
        "builtin_mapping",
        "builtin_transforms",
    } <= names(pm)
    info = {i.name: i for i in describe_plugins(pm)}
    assert info["salesforce"].distribution == "eventsync-salesforce"
    assert info["builtin_mapping"].hooks == ("map_record",)


def test_allow_and_block_lists_from_environment_and_arguments():
    pm = make_plugin_manager(environ={"EVENTSYNC_PLUGINS": "salesforce,hopin"})
    assert "pardot_guard" not in names(pm) and "salesforce" in names(pm)
    pm = make_plugin_manager(environ={"EVENTSYNC_DISABLE_PLUGINS": "hopin"}, block=["pardot_guard"])
    assert not {"hopin", "pardot_guard"} & names(pm)
    pm = make_plugin_manager(environ={"EVENTSYNC_PLUGINS": ""})
    assert names(pm) == {"builtin_mapping", "builtin_transforms", "builtin_flows"}
    pm = make_plugin_manager(environ={}, allow=["hopin"])
    assert "salesforce" not in names(pm) and "hopin" in names(pm)


def test_misspelt_hook_implementation_fails_loudly():
    class Misspelt:
        @hookimpl
        def authenticat(self, system, settings):  # noqa: D102 - deliberately wrong name
            return None

    with pytest.raises(pluggy.PluginValidationError, match="authenticat"):
        make_plugin_manager(load_entrypoints=False, extra_plugins={"bad": Misspelt()})


def test_a_plugin_failing_to_import_is_reported_with_its_distribution(tmp_path, monkeypatch):
    dist = tmp_path / "broken_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[eventsync]\nbroken = broken_plugin_mod\n")
    (tmp_path / "broken_plugin_mod.py").write_text("raise ImportError('needs libfoo')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(PluginLoadError) as exc:
        make_plugin_manager(environ={})
    assert exc.value.distribution == "broken-plugin"
    assert "needs libfoo" in str(exc.value) and "EVENTSYNC_DISABLE_PLUGINS=broken" in str(exc.value)
    # Blocking it lets everything else load.
    assert "broken" not in names(
        make_plugin_manager(environ={"EVENTSYNC_DISABLE_PLUGINS": "broken"})
    )


class FakeCrm:
    """A system plugin for 'fakecrm' used to test per-org subsets."""

    @hookimpl
    def authenticate(self, system, settings):
        return (
            type("Conn", (), {"system": "fakecrm", "org": settings.org})()
            if system == "fakecrm"
            else None
        )

    @hookimpl
    def preflight(self, org, connections):
        return [Finding("warning", "fake", "from fakecrm", source="fakecrm")]


class DenyAll:
    @hookimpl
    def admit_record(self, flow, record, org):
        return Verdict(False, "opted out", "deny_all")


def test_per_org_subsets_call_only_enabled_plugins():
    pm = make_plugin_manager(
        load_entrypoints=False, extra_plugins={"fakecrm": FakeCrm(), "deny_all": DenyAll()}
    )
    hooks = Hooks(pm)
    with_guard = hooks.for_plugins(["fakecrm", "deny_all"])
    without = hooks.for_plugins(["fakecrm"])
    record = Record("fakecrm", "Lead", "1")
    assert with_guard.admit_record("export", record, None) == Verdict(
        False, "opted out", "deny_all"
    )
    assert without.admit_record("export", record, None).allow
    assert [f.code for f in without.preflight(None, {})] == ["fake"]
    assert hooks.for_plugins([]).preflight(None, {}) == []


def test_no_plugin_for_system_is_a_clear_error():
    pm = make_plugin_manager(load_entrypoints=False, extra_plugins={"fakecrm": FakeCrm()})
    hooks = Hooks(pm)
    assert hooks.authenticate(SystemSettings("fakecrm", "acme")).org == "acme"
    with pytest.raises(
        NoPluginForSystem, match="no plugin answered authenticate\\(\\) for system 'zoho'"
    ):
        hooks.authenticate(SystemSettings("zoho", "acme"))
    with pytest.raises(NoPluginForSystem):
        hooks.for_plugins([]).authenticate(SystemSettings("fakecrm", "acme"))


def test_transforms_collects_builtins_and_rejects_duplicates():
    class Shout:
        @hookimpl
        def register_transforms(self, register):
            register("shout", lambda v, a, t: str(v).upper() + "!")

    class Dup:
        @hookimpl
        def register_transforms(self, register):
            register("lower", lambda v, a, t: v)

    hooks = Hooks(make_plugin_manager(load_entrypoints=False, extra_plugins={"shout": Shout()}))
    transforms = hooks.transforms()
    assert transforms["shout"]("hi", {}, None) == "HI!" and "truncate" in transforms
    from eventsync.errors import MappingError

    with pytest.raises(MappingError, match="'lower' is registered twice"):
        Hooks(
            make_plugin_manager(load_entrypoints=False, extra_plugins={"dup": Dup()})
        ).transforms()
