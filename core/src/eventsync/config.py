"""Configuration: one TOML file, strictly structured into frozen attrs classes.

Every problem in a file is reported in one run, each with its ``$.path``: each section is
structured on its own (unknown keys, wrong types, missing values), so a mistake in one never
hides another; then what can be checked without plugins (plans, names, literal secrets, the
engine's ranges); then what the plugins declare (``config_plugins``): their systems' settings,
their options, each flow's own settings with the CRM's defaults. Only a TOML syntax error stops
the rest, as nothing can be read past it. Secrets are never in the file: a setting
``<name>_env = "VARIABLE"`` names the environment variable that holds them.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import attrs

from .errors import ConfigurationError
from .models import FieldMap, Filter, RecordMapping, SystemSettings, Transform, UpdatePolicy
from .settings import ENV_NAME, Invalid, converter, salvage, structure
from .store.outbox import MAX_BATCH as MAX_BATCH_SIZE

__all__ = [
    "FLOW_NAMES",
    "ALL_FLOWS",
    "DEFAULT_ENTITLEMENTS",
    "TransformConfig",
    "FieldMapConfig",
    "CascadeStep",
    "FilterConfig",
    "FlowsConfig",
    "OrgConfig",
    "ErasureConfig",
    "EngineConfig",
    "Config",
    "load_config",
    "parse_config",
    "example_config",
    "secrets_env",
    "validate_config",
]

#: The built-in flows (plugins may register more through ``register_flows``).
FLOW_NAMES = ("export_registrations", "import_registrations", "magic_links", "attendance")
#: In ``[entitlements]``: every registered flow.
ALL_FLOWS = "*"
#: As in the original integration: Business and Enterprise plans get every flow.
DEFAULT_ENTITLEMENTS: Mapping[str, tuple[str, ...]] = {
    "business": (ALL_FLOWS,),
    "enterprise": (ALL_FLOWS,),
}
Scalar = str | int | float | bool | None
# Option names that look like a secret given literally rather than through an env variable.
_SECRET_NAME = re.compile(r"(secret|password|token|api_key|private_key)$", re.IGNORECASE)
_TOP_LEVEL = ("engine", "entitlements", "orgs")


@attrs.frozen
class TransformConfig:
    """A transform in a mapping entry: a name and its arguments (``{name="truncate", length=80}``)."""

    name: str
    args: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen
class FieldMapConfig:
    """One mapping entry: ``target`` from exactly one of ``source``, ``constant``, ``template``."""

    target: str
    source: str | None = None
    constant: Scalar = None
    template: str | None = None
    transforms: tuple[TransformConfig, ...] = ()
    policy: UpdatePolicy | None = None

    def to_model(self) -> FieldMap:
        """The engine's FieldMap for this entry."""
        return FieldMap(
            target=self.target,
            source=self.source,
            constant=self.constant,
            template=self.template,
            transforms=tuple(Transform(t.name, t.args) for t in self.transforms),
            policy=self.policy,
        )


@attrs.frozen
class CascadeStep:
    """One step of a match cascade: look for an existing ``object`` record by ``match_key``."""

    object: str
    match_key: str


@attrs.frozen
class FilterConfig:
    """A neutral condition on a source record, which the system's plugin translates into its
    own query language (values always escaped).

    ``op`` is one of ``= != < <= > >= in like`` (with ``value``) or ``empty`` / ``not_empty``
    (without); ``field`` may be a relationship path.
    """

    field: str
    op: Literal["=", "!=", "<", "<=", ">", ">=", "in", "like", "empty", "not_empty"]
    value: Scalar | tuple[Scalar, ...] = None

    def to_model(self) -> Filter:
        """The pull filter for this condition."""
        if self.op == "empty":
            return Filter(self.field, "=", None)
        if self.op == "not_empty":
            return Filter(self.field, "!=", None)
        return Filter(self.field, self.op, self.value)


class FlowsConfig(Mapping[str, Any]):
    """An organisation's flows by name: each one's settings, structured by the flow's own
    ``settings_class`` (a config made in code may give raw tables; validation structures them).

    A flow without a section is off; ``flows.NAME`` is the settings or None.
    """

    def __init__(self, flows: Mapping[str, Any] | None = None, /, **named: Any) -> None:
        merged = dict(flows or {})
        merged.update({k: v for k, v in named.items() if v is not None})
        self._flows: dict[str, Any] = merged

    def __getitem__(self, name: str) -> Any:
        return self._flows[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._flows)

    def __len__(self) -> int:
        return len(self._flows)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self._flows.get(name)

    def __repr__(self) -> str:
        return f"FlowsConfig({self._flows!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FlowsConfig) and other._flows == self._flows

    __hash__ = None  # type: ignore[assignment]

    def enabled(self) -> list[str]:
        """Names of the flows that are configured and enabled, in the file's order."""
        return [name for name, flow in self._flows.items() if _flow_enabled(flow)]


def _flow_enabled(settings: Any) -> bool:
    if isinstance(settings, Mapping):
        return settings.get("enabled", True) is not False
    return bool(getattr(settings, "enabled", True))


@attrs.frozen
class ErasureConfig:
    """``[orgs.X.erasure]``: what ``eventsync forget`` does to the records eventsync created
    for the person, in the CRM and in the event platform (records it only matched and updated
    are left alone: they are not eventsync's)."""

    crm: Literal["delete", "anonymise", "keep"] = "anonymise"
    platform: Literal["delete", "anonymise", "keep"] = "delete"


@attrs.frozen
class OrgConfig:
    """One organisation: its plan, plugins, the systems in each role, their settings and flows.

    ``crm`` and ``event_platform`` name the system in each role; left out, they are the one
    enabled plugin system declaring that role.
    """

    plan: str
    name: str = attrs.field(default="", metadata={"from_key": True})
    plugins: tuple[str, ...] = ()
    crm: str = ""
    event_platform: str = ""
    systems: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    flows: FlowsConfig = attrs.field(factory=FlowsConfig)
    plugin_options: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    erasure: ErasureConfig = attrs.field(factory=ErasureConfig)
    #: Scale-out: the Celery queue this org's batches go to (empty: the default queue); workers
    #: started with ``eventsync worker --queues NAME`` take them (docs/scale-out.md).
    queue: str = ""

    def settings(self, system: str, env: Mapping[str, str] | None = None) -> SystemSettings:
        """The connection settings of ``system`` for this org."""
        return SystemSettings(
            system=system, org=self.name, options=self.systems.get(system, {}), env=env
        )

    def options_for(self, plugin: str) -> Mapping[str, Any]:
        """The ``[orgs.NAME.plugin_options.PLUGIN]`` table (empty when absent)."""
        return self.plugin_options.get(plugin, {})

    def role_system(self, role: str) -> str:
        """The system in ``role`` (``"crm"``, or ``"platform"`` / ``"event_platform"``)."""
        return self.crm if role == "crm" else self.event_platform


@attrs.frozen
class EngineConfig:
    """Process-wide settings of the engine."""

    state: str = "eventsync.sqlite"
    #: SQLite's ``PRAGMA synchronous``: ``FULL`` flushes every commit to the disk, so an
    #: acknowledged notification survives a power cut; ``NORMAL`` (WAL mode) survives a crash
    #: of the process but may lose the last commits to a power cut or an OS crash, for less
    #: CPU and latency per notification. Ignored for PostgreSQL.
    sqlite_synchronous: str = "FULL"
    listen: str = "127.0.0.1:8080"
    workers: int = 2
    #: Outbox rows per batch; each system splits them into calls of its own limit.
    batch_size: int = 200
    #: Seconds a worker waits after a change for more changes to join its batch.
    batch_linger: float = 0.2
    max_attempts: int = 8
    backoff_base: float = 2.0
    backoff_cap: float = 600.0
    lease_seconds: float = 120.0
    #: Seconds an organisation's work waits after its credentials were refused before it is
    #: tried again (no attempt is counted, so a long outage dead-letters nothing).
    auth_pause: float = 60.0
    #: Seconds between ``maintain`` calls on live connections (subscription renewal ...).
    maintenance_interval: float = 300.0
    backfill_budget_share: float = 0.5
    #: Days the audit trail keeps each entry; the maintenance thread prunes older ones.
    audit_retention_days: float = 365.0
    #: Shares of a system's daily API allowance at which eventsync warns and pollers pause
    #: (``eventsync.budget``); real time is never paused.
    budget_warn_share: float = 0.8
    poll_budget_share: float = 0.9
    plugins_allow: tuple[str, ...] | None = None
    plugins_block: tuple[str, ...] = ()
    secrets_file: str | None = None
    #: Logging: ``debug``, ``info``, ``warning`` or ``error``; ``text`` or ``json`` lines.
    log_level: str = "info"
    log_format: str = "text"
    #: Days the sync log (what ``eventsync trace`` shows) is kept; maintenance prunes older lines.
    log_retention: float = 14.0
    #: Seconds of lag above which ``/readyz`` reports an organisation not ready.
    ready_lag: float = 300.0
    #: The Celery broker of the scale-out roles (``redis://...`` or ``amqp://...``; empty: the
    #: one-process ``eventsync run`` only). See docs/scale-out.md.
    broker: str = ""
    #: Scale-out: at most this many batches of one organisation at once, across all workers.
    org_concurrency: int = 4
    #: Scale-out: seconds between the scheduler's sweeps dispatching every flow with due rows.
    sweep_interval: float = 5.0


@attrs.frozen
class Config:
    """A whole configuration file."""

    orgs: Mapping[str, OrgConfig]
    engine: EngineConfig = EngineConfig()
    entitlements: Mapping[str, tuple[str, ...]] = attrs.field(
        factory=lambda: dict(DEFAULT_ENTITLEMENTS)
    )
    source: str = ""
    #: The directory relative paths of the file are read against (its own); empty for a
    #: configuration made in code, whose relative paths stay relative to the working directory.
    base_dir: str = ""

    def org(self, name: str) -> OrgConfig:
        """The org called ``name``; ConfigurationError listing the known ones otherwise."""
        try:
            return self.orgs[name]
        except KeyError:
            raise ConfigurationError(
                [f"$.orgs.{name}: no such organisation (known: {', '.join(self.orgs) or 'none'})"]
            ) from None

    def mapping(self, org: str, flow: str, source_object: str, target_object: str) -> RecordMapping:
        """The RecordMapping of a flow's ``fields`` entries."""
        flow_cfg = self.orgs[org].flows[flow]
        return RecordMapping(
            source_object=source_object,
            target_object=target_object,
            fields=tuple(f.to_model() for f in getattr(flow_cfg, "fields", ())),
            name=flow,
        )

    def entitled(self, plan: str) -> frozenset[str] | None:
        """The flows a plan may use; None for every flow (``"*"``)."""
        flows = self.entitlements.get(plan, ())
        return None if ALL_FLOWS in flows else frozenset(flows)


def _structure_transform(value: Any, _: type) -> TransformConfig:
    if isinstance(value, str):
        return TransformConfig(name=value)
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        return TransformConfig(
            name=value["name"], args={k: v for k, v in value.items() if k != "name"}
        )
    raise Invalid("a transform is a name or a table with a 'name' key")


def _structure_flows(value: Any, _: type) -> FlowsConfig:
    if not isinstance(value, Mapping):
        raise Invalid("expected a table of flows, e.g. [orgs.NAME.flows.export_registrations]")
    bad = [name for name, table in value.items() if not isinstance(table, Mapping)]
    if bad:
        raise Invalid(f"each flow is a table of settings; not a table: {', '.join(bad)}")
    return FlowsConfig({name: dict(table) for name, table in value.items()})


def _structure_filter_value(value: Any, _: type) -> Any:
    if isinstance(value, list):
        return tuple(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise Invalid(
        f"a filter value is text, a number, true/false or a list, not {type(value).__name__}"
    )


converter.register_structure_hook(TransformConfig, _structure_transform)
converter.register_structure_hook(FlowsConfig, _structure_flows)
converter.register_structure_hook_func(
    lambda t: t == (Scalar | tuple[Scalar, ...]), _structure_filter_value
)


# --- validation -----------------------------------------------------------------------------


def listen_problem(listen: str) -> str | None:
    """Why ``listen`` is not HOST:PORT (None when it is)."""
    host, sep, port = listen.rpartition(":")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        return (
            f"$.engine.listen: {listen!r} is not HOST:PORT with a port from 1 to 65535 "
            f'(e.g. "127.0.0.1:8080")'
        )
    return None


def _engine_problems(eng: EngineConfig) -> list[str]:
    problems = []
    if not 1 <= eng.batch_size <= MAX_BATCH_SIZE:
        problems.append(f"$.engine.batch_size: must be between 1 and {MAX_BATCH_SIZE}")
    if not 0 <= eng.batch_linger <= 60:
        problems.append("$.engine.batch_linger: must be between 0 and 60 seconds")
    if eng.workers < 1:
        problems.append("$.engine.workers: must be at least 1")
    if eng.max_attempts < 1:
        problems.append("$.engine.max_attempts: must be at least 1")
    for name in ("backfill_budget_share", "budget_warn_share", "poll_budget_share"):
        if not 0 < getattr(eng, name) <= 1:
            problems.append(f"$.engine.{name}: must be in (0, 1]")
    if eng.audit_retention_days <= 0:
        problems.append("$.engine.audit_retention_days: must be more than 0 (days)")
    if (problem := listen_problem(eng.listen)) is not None:
        problems.append(problem)
    if eng.log_level not in ("debug", "info", "warning", "error"):
        problems.append("$.engine.log_level: must be one of debug, info, warning, error")
    if eng.log_format not in ("text", "json"):
        problems.append("$.engine.log_format: must be text or json")
    if eng.sqlite_synchronous.upper() not in ("FULL", "NORMAL"):
        problems.append(
            f"$.engine.sqlite_synchronous: {eng.sqlite_synchronous!r} is not FULL (the default: "
            "every commit on disk) or NORMAL (faster; the last commits may be lost to a power cut)"
        )
    if not 0 < eng.log_retention <= 3650:
        problems.append("$.engine.log_retention: must be between 0 and 3650 days")
    if eng.ready_lag <= 0:
        problems.append("$.engine.ready_lag: must be a positive number of seconds")
    if eng.broker and not eng.broker.startswith(BROKER_SCHEMES):
        problems.append(
            f"$.engine.broker: {_broker_scheme(eng.broker)!r} is not a broker URL eventsync "
            'supports; use Redis ("redis://HOST:6379/0") or RabbitMQ ("amqp://USER@HOST:5672//")'
        )
    if eng.org_concurrency < 1:
        problems.append("$.engine.org_concurrency: must be at least 1 (batches at once per org)")
    if eng.sweep_interval <= 0:
        problems.append("$.engine.sweep_interval: must be a positive number of seconds")
    return problems


#: The broker URL schemes of ``[engine] broker`` (Redis, RabbitMQ; with TLS).
BROKER_SCHEMES = ("redis://", "rediss://", "amqp://", "amqps://", "pyamqp://")


def _broker_scheme(url: str) -> str:
    """The scheme of a broker URL, never its password."""
    return url.split("://", 1)[0] + "://..." if "://" in url else "(no scheme)"


def _secret_problems(base: str, table: Mapping[str, Any]) -> list[str]:
    problems = []
    for key, value in table.items():
        if _SECRET_NAME.search(key) and not key.endswith("_env"):
            problems.append(
                f"{base}.{key}: secrets may not be written in the file; "
                f"set {key}_env to the name of an environment variable holding it"
            )
        elif key.endswith("_env") and not (isinstance(value, str) and ENV_NAME.fullmatch(value)):
            problems.append(
                f'{base}.{key}: must name an environment variable, e.g. "SF_CLIENT_SECRET"'
            )
    return problems


def _org_problems(config: Config) -> list[str]:
    """What can be checked without the plugins: plans, duplicate names, literal secrets."""
    problems: list[str] = []
    seen: dict[str, str] = {}
    for name, org in config.orgs.items():
        base = f"$.orgs.{name}"
        if name.lower() in seen:
            problems.append(
                f"{base}: the organisation {seen[name.lower()]!r} has the same name in another "
                f"letter case; endpoints and state are keyed by it, so give each a distinct name"
            )
        seen.setdefault(name.lower(), name)
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
            problems.append(
                f"{base}: an organisation name is letters, digits, '-' and '_' (it is part of "
                f"the endpoint URL /hooks/{name}/...)"
            )
        if org.plan not in config.entitlements:
            problems.append(
                f"{base}.plan: unknown plan {org.plan!r} (plans with entitlements: "
                f"{', '.join(config.entitlements) or 'none'})"
            )
        for system, options in org.systems.items():
            if not isinstance(options, Mapping):
                problems.append(f"{base}.systems.{system}: must be a table of settings")
                continue
            problems.extend(_secret_problems(f"{base}.systems.{system}", options))
        for plugin, options in org.plugin_options.items():
            if not isinstance(options, Mapping):
                problems.append(f"{base}.plugin_options.{plugin}: must be a table of options")
                continue
            if plugin not in org.plugins:
                problems.append(
                    f"{base}.plugin_options.{plugin}: options for a plugin this organisation "
                    f"does not enable (add {plugin!r} to {base}.plugins, or remove the table)"
                )
    return problems


def _structure_sections(data: Mapping[str, Any], problems: list[str]) -> Config:
    """Structure each section on its own, so a mistake in one never hides those in another."""
    for key in data:
        if key not in _TOP_LEVEL:
            problems.append(f"$.{key}: unknown table (known: {', '.join(_TOP_LEVEL)})")
    raw_engine = data.get("engine", {})
    engine, found = structure(EngineConfig, raw_engine, "$.engine")
    problems.extend(found)
    if engine is None and isinstance(raw_engine, Mapping):
        engine = salvage(EngineConfig, raw_engine, found, "$.engine")
    entitlements: Mapping[str, tuple[str, ...]] = dict(DEFAULT_ENTITLEMENTS)
    if "entitlements" in data:
        raw = data["entitlements"]
        if not isinstance(raw, Mapping):
            problems.append("$.entitlements: expected a table of plan = [flow names]")
        else:
            entitlements = {}
            for plan, flows in raw.items():
                try:
                    entitlements[plan] = converter.structure(flows, tuple[str, ...])
                except (Invalid, ValueError, TypeError) as exc:
                    problems.append(f"$.entitlements.{plan}: {exc}")
    orgs: dict[str, OrgConfig] = {}
    raw_orgs = data.get("orgs", {})
    if not isinstance(raw_orgs, Mapping):
        problems.append("$.orgs: expected tables of organisations, e.g. [orgs.acme]")
        raw_orgs = {}
    for name, table in raw_orgs.items():
        if isinstance(table, Mapping) and "name" in table:
            problems.append(
                f"$.orgs.{name}.name: remove it; the key of the table names the organisation"
            )
            table = {k: v for k, v in table.items() if k != "name"}
        org, found = structure(OrgConfig, table, f"$.orgs.{name}")
        problems.extend(found)
        if org is None and isinstance(table, Mapping):
            # Keep checking the rest of the organisation: drop what could not be read.
            org = salvage(OrgConfig, table, found, f"$.orgs.{name}")
        if org is not None:
            orgs[name] = attrs.evolve(org, name=name)
    return Config(
        orgs=orgs,
        engine=engine or EngineConfig(),
        entitlements=entitlements,
    )


def _default_hooks(config: Config, problems: list[str]) -> Any:
    """The plugin facade a file is checked against: the installed plugins, less the blocked."""
    from .errors import PluginLoadError
    from .plugins import Hooks, make_plugin_manager

    try:
        return Hooks(
            make_plugin_manager(
                allow=config.engine.plugins_allow, block=config.engine.plugins_block
            )
        )
    except (PluginLoadError, ConfigurationError) as exc:
        problems.extend(getattr(exc, "problems", None) or [str(exc)])
        return None


def _plugin_problems(config: Config, hooks: Any) -> tuple[Config, list[str]]:
    """Check what only the plugins know (their settings, options, flows and systems) and
    structure each flow's settings with its defaults; returns the completed config."""
    from .config_plugins import resolve_org

    problems: list[str] = []
    try:
        flows = hooks.flows()
    except ConfigurationError as exc:
        return config, list(exc.problems)
    for plan, names in config.entitlements.items():
        for flow in names:
            if flow != ALL_FLOWS and flow not in flows:
                problems.append(
                    f"$.entitlements.{plan}: unknown flow {flow!r} (known: {', '.join(flows)})"
                )
    orgs = {}
    for name, org in config.orgs.items():
        resolved, found = resolve_org(config, org, hooks, flows)
        orgs[name] = resolved
        problems.extend(found)
    return attrs.evolve(config, orgs=orgs), problems


def parse_config(
    data: Mapping[str, Any], source: str = "<config>", *, hooks: Any = None, base_dir: str = ""
) -> Config:
    """Structure a parsed TOML document; ConfigurationError lists every problem with its path.

    :param hooks: the plugin facade whose plugins declare the settings, options and flows
        (default: the installed plugins, less the config's block list).
    :param base_dir: the directory relative paths are resolved against (``load_config``
        passes the file's own); empty leaves them relative to the working directory.
    """
    problems: list[str] = []
    config = attrs.evolve(_structure_sections(data, problems), source=source, base_dir=base_dir)
    return _finish(config, problems, hooks)


def _engine_paths(engine: EngineConfig, base_dir: str) -> EngineConfig:
    """``state`` (a SQLite path or ``sqlite:///`` URL) and ``secrets_file`` made absolute
    against the config file's directory, so ``--config /elsewhere/x.toml`` reads the same
    files from any working directory."""
    if not base_dir:
        return engine
    state, secrets = engine.state, engine.secrets_file
    sqlite_url = "sqlite:///"
    if state.startswith(sqlite_url) and not state[len(sqlite_url) :].startswith("/"):
        state = sqlite_url + os.path.join(base_dir, state[len(sqlite_url) :])
    elif "://" not in state:
        state = os.path.join(base_dir, os.path.expanduser(state))
    if secrets:
        secrets = os.path.join(base_dir, os.path.expanduser(secrets))
    return attrs.evolve(engine, state=state, secrets_file=secrets)


def _finish(config: Config, problems: list[str], hooks: Any) -> Config:
    config = attrs.evolve(config, engine=_engine_paths(config.engine, config.base_dir))
    problems.extend(_engine_problems(config.engine))
    problems.extend(_org_problems(config))
    if hooks is None:
        hooks = _default_hooks(config, problems)
    if hooks is not None:
        config, found = _plugin_problems(config, hooks)
        problems.extend(found)
    if problems:
        raise ConfigurationError(
            list(dict.fromkeys(problems)),
            heading=f"{config.source or '<config>'}: configuration problems",
        )
    return config


def validate_config(config: Config, *, hooks: Any = None) -> Config:
    """Check a Config made in code as strictly as a file; returns it with org names set from
    their keys and every flow's settings structured. ConfigurationError lists every problem."""
    named = attrs.evolve(config, orgs={k: attrs.evolve(v, name=k) for k, v in config.orgs.items()})
    return _finish(named, [], hooks)


def load_config(path: str | Path, *, hooks: Any = None) -> Config:
    """Read and validate a TOML configuration file (see ``parse_config`` for ``hooks``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(
            [f"{path}: cannot read the file ({exc.strerror}); create one with `eventsync init`"]
        ) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(
            [f"{path}: invalid TOML: {exc} (fix this first: the file cannot be read past it)"],
            heading=f"{path}: configuration problems",
        ) from None
    return parse_config(data, source=str(path), hooks=hooks, base_dir=str(path.resolve().parent))


def secrets_env(config: Config, base: Mapping[str, str] | None = None) -> Mapping[str, str] | None:
    """The environment secrets are read from: the process environment, overlaid with the
    ``[engine] secrets_file`` (dotenv format; ``load_config`` made a relative one absolute
    against the config file's directory) when one is set.
    None means "the process environment" and is returned when there is no secrets file."""
    name = config.engine.secrets_file
    if not name:
        return base
    from dotenv import dotenv_values

    path = Path(name)
    if not path.is_absolute() and config.source and Path(config.source).exists():
        path = Path(config.source).resolve().parent / path
    if not path.is_file():
        raise ConfigurationError(
            [
                f"$.engine.secrets_file: {path} does not exist (a relative path is read "
                f"against the config file's directory); create it or fix the path"
            ]
        )
    try:
        path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(
            [f"$.engine.secrets_file: cannot read {path} ({exc.strerror}); fix its permissions"]
        ) from None
    # No ${VAR} expansion: a secret (a password) may contain "$" and must read back as written.
    values = {k: v for k, v in dotenv_values(path, interpolate=False).items() if v is not None}
    return {**(os.environ if base is None else base), **values}


def example_config() -> str:
    """The commented example configuration that ``eventsync init`` writes."""
    return (Path(__file__).parent / "example.toml").read_text(encoding="utf-8")
