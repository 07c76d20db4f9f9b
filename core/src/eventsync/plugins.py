"""The plugin manager factory and the typed facade over its hooks.

There is no module-global manager: ``make_plugin_manager()`` builds one, ``Hooks`` wraps it
with one typed method per hook, and ``Hooks.for_plugins()`` narrows it to the plugins one
organisation enables (through pluggy's ``subset_hook_caller``).

Loading order, following pytest and tox: entry points of group ``eventsync`` (minus the
block list, and limited to the allow list when one is given), then the built-ins, then
``check_pending()`` so a misspelt hook implementation fails loudly.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from importlib.metadata import Distribution, entry_points
from typing import Any

import attrs
import pluggy

from . import hookspecs
from .errors import ConfigurationError, MappingError, NoPluginForSystem, PluginLoadError
from .hookspecs import PROJECT, Connection, SandboxHandle, TransformFn
from .models import (
    ApiUsage,
    Finding,
    HttpRequest,
    Notification,
    OAuthGrant,
    OAuthStart,
    ObjectSchema,
    PullRequest,
    PushRequest,
    PushResult,
    Record,
    RecordMapping,
    Schema,
    Subscription,
    SubscriptionReport,
    SystemProfile,
    SystemSettings,
    Verdict,
)

__all__ = [
    "PluginManager",
    "ENTRY_POINT_GROUP",
    "BUILTIN_PLUGINS",
    "ALLOW_ENV",
    "BLOCK_ENV",
    "PluginInfo",
    "make_plugin_manager",
    "Hooks",
    "describe_plugins",
]

ENTRY_POINT_GROUP = "eventsync"
#: Built-in plugins of core, registered under these short names. They cannot be blocked
#: because the engine's default behaviour (mapping, transforms, flows) lives in them.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("builtin_mapping", "eventsync.mapping"),
    ("builtin_transforms", "eventsync.transforms"),
    ("builtin_flows", "eventsync.flows"),
)
#: Comma-separated allow list of entry-point plugin names; an empty value loads none.
ALLOW_ENV = "EVENTSYNC_PLUGINS"
#: Comma-separated block list of entry-point plugin names.
BLOCK_ENV = "EVENTSYNC_DISABLE_PLUGINS"


def _names(value: str | None) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset(n.strip() for n in value.split(",") if n.strip())


@attrs.frozen
class PluginInfo:
    """What ``eventsync plugins`` shows about one registered plugin."""

    name: str
    distribution: str
    version: str
    hooks: tuple[str, ...]
    builtin: bool
    #: The systems it declares, e.g. ``("salesforce (crm)",)``.
    systems: tuple[str, ...] = ()


class PluginManager(pluggy.PluginManager):
    """A pluggy manager that remembers which distribution each entry-point plugin came from."""

    def __init__(self) -> None:
        super().__init__(PROJECT)
        self.distributions: dict[str, Distribution] = {}


def make_plugin_manager(
    *,
    allow: Iterable[str] | None = None,
    block: Iterable[str] = (),
    load_entrypoints: bool = True,
    extra_plugins: Mapping[str, object] | None = None,
    environ: Mapping[str, str] | None = None,
) -> PluginManager:
    """Build a plugin manager with the eventsync hookspecs and its plugins registered.

    :param allow: entry-point plugin names to load (None: all). Combined with ``EVENTSYNC_PLUGINS``.
    :param block: entry-point plugin names never to load. Combined with ``EVENTSYNC_DISABLE_PLUGINS``.
    :param load_entrypoints: False to load built-ins only (tests).
    :param extra_plugins: further plugin objects by name (tests, embedders).
    :param environ: the environment to read the allow/block variables from (default os.environ).
    :raises PluginLoadError: an entry point failed to import; names its distribution.
    :raises ConfigurationError: the block list names a built-in plugin.
    :raises pluggy.PluginValidationError: a plugin implements a hook that does not exist.
    """
    env = os.environ if environ is None else environ
    pm = PluginManager()
    pm.add_hookspecs(hookspecs)

    allowed = _names(env.get(ALLOW_ENV))
    if allow is not None:
        allowed = frozenset(allow) if allowed is None else allowed & frozenset(allow)
    blocked = frozenset(block) | (_names(env.get(BLOCK_ENV)) or frozenset())
    builtin = {name for name, _ in BUILTIN_PLUGINS}
    if refused := sorted(blocked & builtin):
        raise ConfigurationError(
            [
                f"{BLOCK_ENV} / [engine] plugins_block: the built-in plugin {name!r} cannot be "
                f"blocked (the engine's mapping, transforms and flows live in it); remove it "
                f"from the list, and turn a flow off by leaving out its [orgs.NAME.flows] table"
                for name in refused
            ]
        )
    for name in blocked:
        pm.set_blocked(name)

    if load_entrypoints:
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in blocked or (allowed is not None and ep.name not in allowed):
                continue
            if pm.get_plugin(ep.name) is not None:
                continue
            dist = ep.dist.name if ep.dist is not None else "unknown"
            try:
                plugin = ep.load()
            except Exception as exc:  # any import failure: report it with its distribution
                raise PluginLoadError(ep.name, dist, exc) from exc
            pm.register(plugin, name=ep.name)
            if ep.dist is not None:
                pm.distributions[ep.name] = ep.dist

    for name, module in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module), name=name)
    for name, plugin in (extra_plugins or {}).items():
        pm.register(plugin, name=name)
    pm.check_pending()
    return pm


def describe_plugins(pm: PluginManager) -> list[PluginInfo]:
    """List every registered plugin with its distribution, version and implemented hooks."""
    infos = []
    for name, plugin in pm.list_name_plugin():
        if plugin is None:  # blocked
            continue
        dist = pm.distributions.get(name)
        hooks = tuple(sorted(h.name for h in pm.get_hookcallers(plugin) or ()))
        builtin = dist is None
        declare = getattr(plugin, "system_profiles", None)
        profiles = declare() if "system_profiles" in hooks and callable(declare) else ()
        infos.append(
            PluginInfo(
                name=name,
                distribution=dist.metadata["name"] if dist is not None else "eventsync",
                version=dist.version if dist is not None else _core_version(),
                hooks=hooks,
                builtin=builtin,
                systems=tuple(f"{p.system} ({p.role})" for p in profiles or ()),
            )
        )
    return sorted(infos, key=lambda i: (i.builtin, i.name))


def _core_version() -> str:
    from . import __version__

    return __version__


class Hooks:
    """Typed facade over ``pm.hook``: one method per hook, clear errors when nobody answers.

    Engine code calls these methods and never touches ``pm.hook`` directly.
    """

    def __init__(self, pm: PluginManager, enabled: Iterable[str] | None = None) -> None:
        self.pm = pm
        self.enabled: frozenset[str] | None = None if enabled is None else frozenset(enabled)
        self._callers: dict[str, Any] = {}
        self._profiles: dict[str, SystemProfile] | None = None

    def for_plugins(self, enabled: Iterable[str]) -> Hooks:
        """A facade that calls only the built-ins and the named entry-point plugins."""
        return Hooks(self.pm, enabled)

    @property
    def plugin_names(self) -> list[str]:
        """Names of the plugins this facade calls."""
        names = [n for n, p in self.pm.list_name_plugin() if p is not None]
        if self.enabled is None:
            return names
        builtin = {n for n, _ in BUILTIN_PLUGINS}
        return [n for n in names if n in self.enabled or n in builtin]

    def caller(self, name: str) -> Any:
        """The hook caller of ``name`` narrowed to this facade's plugins, for the hooks that
        have no typed method here (the sandbox and demo hooks, called by ``sandbox_env``)."""
        return self._caller(name)

    def _caller(self, name: str) -> Any:
        if self.enabled is None:
            return getattr(self.pm.hook, name)
        caller = self._callers.get(name)
        if caller is None:
            keep = set(self.plugin_names)
            remove = [p for n, p in self.pm.list_name_plugin() if p is not None and n not in keep]
            caller = self.pm.subset_hook_caller(name, remove_plugins=remove)
            self._callers[name] = caller
        return caller

    def _first(self, hook: str, for_system: str, **kwargs: Any) -> Any:
        result = self._caller(hook)(**kwargs)
        if result is None:
            raise NoPluginForSystem(hook, for_system, self.plugin_names)
        return result

    # --- declarations -------------------------------------------------------------------

    def profiles(self) -> dict[str, SystemProfile]:
        """Every system the enabled plugins declare, by system name."""
        if self._profiles is not None:
            return dict(self._profiles)
        found: dict[str, SystemProfile] = {}
        problems: list[str] = []
        for batch in self._caller("system_profiles")():
            for profile in batch or ():
                if profile.system in found:
                    problems.append(f"system {profile.system!r} is declared by two plugins")
                found[profile.system] = profile
        if problems:
            raise ConfigurationError(problems)
        self._profiles = found
        return dict(found)

    def profile(self, system: str) -> SystemProfile | None:
        """The profile of ``system``, or None when no enabled plugin declares it."""
        return self.profiles().get(system)

    def options_schemas(self) -> dict[str, type]:
        """Options classes of the enabled concern plugins, by plugin name."""
        found: dict[str, type] = {}
        for batch in self._caller("options_schemas")():
            found.update(batch or {})
        return found

    # --- per-system hooks (firstresult) -------------------------------------------------

    def authenticate(self, settings: SystemSettings) -> Connection:
        """Connect to ``settings.system``; raises NoPluginForSystem or AuthenticationError."""
        return self._first(
            "authenticate", settings.system, system=settings.system, settings=settings
        )

    def maintain(self, connection: Connection) -> None:
        """Let every enabled plugin look after a live connection."""
        self._caller("maintain")(connection=connection)

    def subscribe(
        self, connection: Connection, previous: Sequence[Subscription] = ()
    ) -> SubscriptionReport | None:
        """Create, renew and end the notification subscriptions of ``connection``'s system;
        None when its plugin subscribes to nothing by API."""
        return self._caller("subscribe")(connection=connection, previous=tuple(previous))

    def oauth_start(
        self, system: str, settings: Mapping[str, Any], redirect_uri: str, state: str
    ) -> OAuthStart | None:
        """The authorize URL and PKCE verifier of an interactive sign-in to ``system``; None
        when its plugin has no interactive sign-in."""
        return self._caller("oauth_start")(
            system=system, settings=settings, redirect_uri=redirect_uri, state=state
        )

    def oauth_finish(
        self,
        system: str,
        settings: Mapping[str, Any],
        redirect_uri: str,
        code: str,
        verifier: str,
        secrets: Mapping[str, str] | None = None,
    ) -> OAuthGrant | None:
        """Exchange an authorization code of ``system`` for what to save; None when its
        plugin has no interactive sign-in."""
        return self._caller("oauth_finish")(
            system=system,
            settings=settings,
            redirect_uri=redirect_uri,
            code=code,
            verifier=verifier,
            secrets=dict(secrets or {}),
        )

    def api_usage(self, connection: Connection) -> ApiUsage | None:
        """The remote API usage last seen on ``connection``, if the plugin reports one."""
        return self._caller("api_usage")(connection=connection)

    def discover_schema(
        self, connection: Connection, objects: Sequence[str] | None = None
    ) -> Schema:
        """Describe the objects of ``connection``'s system, with the field-name case rule its
        profile declares."""
        schema: Schema = self._first(
            "discover_schema", connection.system, connection=connection, objects=objects
        )
        profile = self.profile(connection.system)
        if profile is None or not profile.case_sensitive_fields:
            return schema
        return attrs.evolve(
            schema,
            objects={
                name: attrs.evolve(obj, case_sensitive=True) for name, obj in schema.objects.items()
            },
        )

    def pull(self, connection: Connection, request: PullRequest) -> Iterator[Record]:
        """Stream records from ``connection``'s system."""
        return self._first("pull", connection.system, connection=connection, request=request)

    def push(self, connection: Connection, request: PushRequest) -> list[PushResult]:
        """Write a batch to ``connection``'s system; one result per item, in order."""
        results = self._first("push", connection.system, connection=connection, request=request)
        if len(results) != len(request.items):
            raise RuntimeError(
                f"plugin for {connection.system!r} returned {len(results)} push results "
                f"for {len(request.items)} items; the push hook must return one per item"
            )
        return results

    def parse_notification(self, settings: SystemSettings, request: HttpRequest) -> Notification:
        """Verify and parse an inbound notification; raises BadNotification on bad input."""
        return self._first(
            "parse_notification",
            settings.system,
            system=settings.system,
            request=request,
            settings=settings,
        )

    def start_sandbox(self, system: str, options: Mapping[str, Any] | None = None) -> SandboxHandle:
        """Start the sandbox of ``system``."""
        return self._first("start_sandbox", system, system=system, options=dict(options or {}))

    # --- mapping ------------------------------------------------------------------------

    def transforms(self) -> dict[str, TransformFn]:
        """Every transform registered by any enabled plugin, by name."""
        found: dict[str, TransformFn] = {}
        problems: list[str] = []

        def register(name: str, fn: TransformFn) -> None:
            if name in found:
                problems.append(f"transform {name!r} is registered twice")
            found[name] = fn

        self._caller("register_transforms")(register=register)
        if problems:
            raise MappingError(problems)
        return found

    def map_record(
        self,
        record: Record,
        mapping: RecordMapping,
        target: ObjectSchema | None,
        transforms: Mapping[str, TransformFn],
    ) -> dict[str, Any]:
        """Map ``record`` to target field values."""
        return self._first(
            "map_record",
            record.system,
            record=record,
            mapping=mapping,
            target=target,
            transforms=transforms,
        )

    def flows(self) -> dict[str, Any]:
        """Every registered flow by name."""
        found: dict[str, Any] = {}
        problems: list[str] = []

        def register(flow: Any) -> None:
            if flow.name in found:
                problems.append(f"flow {flow.name!r} is registered twice")
            found[flow.name] = flow

        self._caller("register_flows")(register=register)
        if problems:
            raise ConfigurationError(problems)
        return found

    def trigger_missed(self, flow: str, record: Record, org: Any, waited: float) -> list[Finding]:
        """Tell every enabled plugin that a record's real-time trigger never arrived."""
        found = self._caller("trigger_missed")(flow=flow, record=record, org=org, waited=waited)
        return [f for f in found if f is not None]

    # --- collecting hooks ---------------------------------------------------------------

    def required_fields(self, flow: str, object: str, org: Any) -> list[str]:
        """Extra source fields enabled plugins need, merged and de-duplicated."""
        merged: dict[str, None] = {}
        for fields in self._caller("required_fields")(flow=flow, object=object, org=org):
            merged.update(dict.fromkeys(fields))
        return list(merged)

    def preflight(self, org: Any, connections: Mapping[str, Connection]) -> list[Finding]:
        """Every enabled plugin's findings for ``org``."""
        findings: list[Finding] = []
        for batch in self._caller("preflight")(org=org, connections=connections):
            findings.extend(batch or ())
        return findings

    def admit_record(
        self,
        flow: str,
        record: Record,
        org: Any,
        connections: Mapping[str, Connection] | None = None,
    ) -> Verdict:
        """Ask every enabled plugin; the first deny wins, else admit."""
        verdicts: list[Verdict] = [
            v
            for v in self._caller("admit_record")(
                flow=flow, record=record, org=org, connections=connections or {}
            )
            if v is not None
        ]
        for verdict in verdicts:
            if not verdict.allow:
                return verdict
        return Verdict(allow=True)


def hook_names() -> list[str]:
    """Names of every hookspec, in definition order."""
    return [n for n, v in vars(hookspecs).items() if callable(v) and hasattr(v, f"{PROJECT}_spec")]
