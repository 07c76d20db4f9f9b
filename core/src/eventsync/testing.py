"""The conformance kit for plugin authors (install the ``testing`` extra).

Two factories return pytest test classes that check a plugin against the hook contracts:

* ``conformance_tests(system=..., ...)`` for a system plugin (a CRM or an event platform):
  the entry point resolves, ``check_pending()`` passes, the per-system hooks return None for
  other systems, authenticate works with good credentials and raises ``AuthenticationError``
  with bad ones, ``discover_schema`` has the right shape, a push/pull round trip against the
  plugin's own sandbox works, and a bad record comes back as a per-record failure.
* ``concern_plugin_tests(name)`` for a plugin that owns no system (e.g. ``pardot_guard``).

Opt-in fixtures (``pytest_plugins = ["eventsync.testing"]`` in a conftest): ``plugin_manager``
(a fresh manager), ``register_plugin`` (a plugin registered for one test) and ``no_backoff``
(retry waits removed).

Usage, in ``tests/test_conformance.py`` of a plugin::

    from eventsync.testing import RoundTrip, conformance_tests

    TestConformance = conformance_tests(
        system="mycrm",
        bad_settings=lambda good: attrs.evolve(good, env={**good.env, "MYCRM_KEY": "wrong"}),
        round_trip=RoundTrip(object="Contact", fields={"Email": "a@example.com"},
                             bad_fields={"Email": "not-an-email"}),
    )
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from importlib.metadata import entry_points
from typing import Any

import attrs
import pytest

from . import backoff
from .errors import AuthenticationError, EventsyncError
from .models import (
    FIELD_TYPES,
    FieldSchema,
    HttpRequest,
    ObjectSchema,
    PullRequest,
    PushItem,
    PushRequest,
    Schema,
    SystemSettings,
)
from .plugins import ENTRY_POINT_GROUP, Hooks, PluginManager, make_plugin_manager

__all__ = [
    "RoundTrip",
    "conformance_tests",
    "concern_plugin_tests",
    "plugin_manager",
    "register_plugin",
    "no_backoff",
]

_OTHER = "__no_such_system__"


@attrs.frozen
class RoundTrip:
    """What the round-trip checks write and read back.

    :ivar object: the object to insert into.
    :ivar fields: a record the sandbox accepts.
    :ivar bad_fields: a record the sandbox refuses (None skips the record-error check).
    :ivar compare: fields to compare after reading back (default: every key of ``fields``).
    """

    object: str
    fields: Mapping[str, Any]
    bad_fields: Mapping[str, Any] | None = None
    compare: tuple[str, ...] | None = None


@attrs.frozen
class _Foreign:
    """A connection of a system no plugin owns."""

    system: str = _OTHER
    org: str = "conformance"


def _class_fixture(fn: Callable[..., Any]) -> Any:
    """A class-scoped fixture defined as a classmethod (pytest's recommended form)."""
    return pytest.fixture(scope="class", name=fn.__name__)(classmethod(fn))  # type: ignore[arg-type]


def _entry_point(name: str):
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep
    return None


def _common_checks(plugin_name: str) -> dict[str, Any]:
    """Test methods every plugin must pass, system or concern."""

    def test_entry_point_resolves(self) -> None:
        ep = _entry_point(plugin_name)
        assert ep is not None, f"no entry point {plugin_name!r} in group {ENTRY_POINT_GROUP!r}"
        assert ep.load() is not None

    def test_check_pending_passes(self) -> None:
        pm = make_plugin_manager(allow=[plugin_name], environ={})
        assert pm.get_plugin(plugin_name) is not None
        pm.check_pending()

    def test_per_system_hooks_ignore_other_systems(self) -> None:
        pm = make_plugin_manager(allow=[plugin_name], environ={})
        foreign = _Foreign()
        settings = SystemSettings(_OTHER, "conformance")
        hook = pm.hook
        assert hook.authenticate(system=_OTHER, settings=settings) is None
        assert hook.api_usage(connection=foreign) is None
        assert all(result is None for result in hook.maintain(connection=foreign))
        assert hook.discover_schema(connection=foreign, objects=None) is None
        assert hook.pull(connection=foreign, request=PullRequest(object="x")) is None
        request = PushRequest(object="x", operation="insert", items=(PushItem("k"),))
        assert hook.push(connection=foreign, request=request) is None
        http = HttpRequest(method="POST", path="/", body=b"{}")
        assert hook.parse_notification(system=_OTHER, request=http, settings=settings) is None
        assert hook.start_sandbox(system=_OTHER, options={}) is None

    return {
        "test_entry_point_resolves": test_entry_point_resolves,
        "test_check_pending_passes": test_check_pending_passes,
        "test_per_system_hooks_ignore_other_systems": test_per_system_hooks_ignore_other_systems,
    }


def conformance_tests(
    *,
    system: str,
    round_trip: RoundTrip,
    bad_settings: Callable[[SystemSettings], SystemSettings],
    sandbox_options: Mapping[str, Any] | None = None,
    plugin_name: str | None = None,
) -> type:
    """A pytest test class checking the system plugin for ``system`` against the hook contracts.

    :param system: the system the plugin owns.
    :param round_trip: what to write and read back.
    :param bad_settings: turns the sandbox's working settings into ones that must fail.
    :param sandbox_options: options for the plugin's ``start_sandbox``.
    :param plugin_name: the entry-point name (default: ``system``).
    """
    name = plugin_name or system

    def hooks(cls) -> Hooks:
        return Hooks(make_plugin_manager(allow=[name], environ={}))

    def sandbox(cls, hooks: Hooks) -> Iterator[Any]:
        handle = hooks.start_sandbox(system, dict(sandbox_options or {}))
        try:
            yield handle
        finally:
            handle.stop()

    def connection(cls, hooks: Hooks, sandbox: Any) -> Any:
        return hooks.authenticate(sandbox.settings("conformance"))

    def test_sandbox_describes_itself(self, sandbox: Any) -> None:
        assert sandbox.system == system
        assert sandbox.url.startswith(
            ("http://127.0.0.1", "https://127.0.0.1", "http://localhost", "https://localhost")
        )
        assert isinstance(dict(sandbox.info()), dict)

    def test_authenticate_with_good_credentials(self, connection: Any) -> None:
        assert connection.system == system
        assert connection.org == "conformance"

    def test_authenticate_with_bad_credentials_raises(self, hooks: Hooks, sandbox: Any) -> None:
        with pytest.raises(AuthenticationError) as exc:
            hooks.authenticate(bad_settings(sandbox.settings("conformance")))
        assert exc.value.system == system
        assert exc.value.error, "AuthenticationError must carry the remote error"

    def test_discover_schema_shape(self, hooks: Hooks, connection: Any) -> None:
        schema = hooks.discover_schema(connection, [round_trip.object])
        assert isinstance(schema, Schema) and schema.system == system
        described = schema.object(round_trip.object)
        assert isinstance(described, ObjectSchema) and described.fields
        for field in described.fields:
            assert isinstance(field, FieldSchema)
            assert field.type in FIELD_TYPES, (
                f"{round_trip.object}.{field.name}: unknown type {field.type!r}"
            )
        for key in round_trip.fields:
            assert described.field(key) is not None, (
                f"{round_trip.object}.{key} is not in the schema"
            )

    def test_push_then_pull_round_trip(self, hooks: Hooks, connection: Any) -> None:
        request = PushRequest(round_trip.object, "insert", (PushItem("good", round_trip.fields),))
        [result] = hooks.push(connection, request)
        assert result.key == "good"
        assert result.ok, f"insert failed: {result.error}"
        assert result.id
        records = list(
            hooks.pull(
                connection,
                PullRequest(
                    object=round_trip.object,
                    fields=tuple(round_trip.compare or round_trip.fields),
                    ids=(result.id,),
                ),
            )
        )
        assert [r.id for r in records] == [result.id]
        for key in round_trip.compare or round_trip.fields:
            assert records[0].get(key) == round_trip.fields[key], key

    def test_bad_record_fails_alone(self, hooks: Hooks, connection: Any) -> None:
        if round_trip.bad_fields is None:
            pytest.skip("no bad record given for this plugin")
        request = PushRequest(
            round_trip.object,
            "insert",
            (
                PushItem("bad", round_trip.bad_fields),
                PushItem("good", round_trip.fields),
            ),
        )
        bad, good = hooks.push(connection, request)
        assert (bad.key, good.key) == ("bad", "good")
        assert not bad.ok and bad.error is not None
        assert bad.error.code and bad.error.message, "a record failure keeps the remote error"
        assert not bad.retryable
        assert good.ok, f"a bad record must not fail the rest: {good.error}"

    def test_errors_come_from_the_taxonomy(self, hooks: Hooks, sandbox: Any) -> None:
        try:
            hooks.authenticate(bad_settings(sandbox.settings("conformance")))
        except Exception as exc:  # the kit checks the class, whatever it is
            assert isinstance(exc, EventsyncError), (
                f"{type(exc).__name__} is not an eventsync error"
            )

    body = {
        **_common_checks(name),
        "hooks": _class_fixture(hooks),
        "sandbox": _class_fixture(sandbox),
        "connection": _class_fixture(connection),
        "test_sandbox_describes_itself": test_sandbox_describes_itself,
        "test_authenticate_with_good_credentials": test_authenticate_with_good_credentials,
        "test_authenticate_with_bad_credentials_raises": test_authenticate_with_bad_credentials_raises,
        "test_discover_schema_shape": test_discover_schema_shape,
        "test_push_then_pull_round_trip": test_push_then_pull_round_trip,
        "test_bad_record_fails_alone": test_bad_record_fails_alone,
        "test_errors_come_from_the_taxonomy": test_errors_come_from_the_taxonomy,
    }
    return type(f"Conformance[{system}]", (), body)


def concern_plugin_tests(name: str) -> type:
    """A pytest test class for a plugin that owns no system (checks and gates only)."""

    def test_preflight_returns_findings_list(self) -> None:
        hooks = Hooks(make_plugin_manager(allow=[name], environ={}))
        from .config import OrgConfig

        findings = hooks.preflight(OrgConfig(plan="business", name="conformance"), {})
        assert isinstance(findings, list)

    return type(
        f"Conformance[{name}]",
        (),
        {
            **_common_checks(name),
            "test_preflight_returns_findings_list": test_preflight_returns_findings_list,
        },
    )


# --- opt-in fixtures ----------------------------------------------------------------------


@pytest.fixture
def plugin_manager() -> PluginManager:
    """A fresh plugin manager with the built-ins and the installed entry points."""
    return make_plugin_manager(environ={})


@pytest.fixture
def register_plugin(plugin_manager: PluginManager) -> Iterator[Callable[[object, str], object]]:
    """Register a plugin object on ``plugin_manager`` for one test; unregistered afterwards."""
    registered: list[object] = []

    def register(plugin: object, name: str) -> object:
        plugin_manager.register(plugin, name=name)
        plugin_manager.check_pending()
        registered.append(plugin)
        return plugin

    yield register
    for plugin in registered:
        plugin_manager.unregister(plugin)


@pytest.fixture
def no_backoff() -> Iterator[None]:
    """Remove every retry wait made through ``eventsync.backoff`` for one test."""
    with backoff.disabled():
        yield
