"""Configuration: one TOML file, strictly structured into frozen attrs classes.

Every problem in a file is reported in one run, each with its ``$.path``: TOML syntax, unknown
keys, wrong types, missing fields (from cattrs' detailed validation), then the semantic checks
(plans and entitlements, roles, flows, literal secrets). Secrets are never in the file: a
setting ``<name>_env = "VARIABLE"`` names the environment variable that holds them.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import attrs
import cattrs
from cattrs.v import format_exception

from .errors import ConfigurationError
from .models import FieldMap, RecordMapping, SystemSettings, Transform

__all__ = [
    "FLOW_NAMES",
    "DEFAULT_ENTITLEMENTS",
    "TransformConfig",
    "FieldMapConfig",
    "CascadeStep",
    "ExportRegistrationsConfig",
    "ImportRegistrationsConfig",
    "MagicLinksConfig",
    "AttendanceConfig",
    "FlowsConfig",
    "OrgConfig",
    "EngineConfig",
    "Config",
    "load_config",
    "parse_config",
    "example_config",
    "secrets_env",
    "validate_config",
]

FLOW_NAMES = ("export_registrations", "import_registrations", "magic_links", "attendance")
#: As in the Hopin guide: the integration is offered on Business and Enterprise plans.
DEFAULT_ENTITLEMENTS: Mapping[str, tuple[str, ...]] = {
    "business": FLOW_NAMES,
    "enterprise": FLOW_NAMES,
}
# Option names that look like a secret given literally rather than through an env variable.
Scalar = str | int | float | bool | None
_SECRET_NAME = re.compile(r"(secret|password|token|api_key|private_key)$", re.IGNORECASE)


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

    def to_model(self) -> FieldMap:
        """The engine's FieldMap for this entry."""
        return FieldMap(
            target=self.target,
            source=self.source,
            constant=self.constant,
            template=self.template,
            transforms=tuple(Transform(t.name, t.args) for t in self.transforms),
        )


def _fields(*pairs: tuple[str, str]) -> tuple[FieldMapConfig, ...]:
    return tuple(FieldMapConfig(target=t, source=s) for t, s in pairs)


@attrs.frozen
class CascadeStep:
    """One step of a match cascade: look for an existing ``object`` record by ``match_key``."""

    object: str
    match_key: str = "Email"


@attrs.frozen
class ExportRegistrationsConfig:
    """Hopin registration -> a CRM object (Lead, Contact, CampaignMember, custom)."""

    target_object: str
    match_key: str = "Email"
    match_cascade: tuple[CascadeStep, ...] = ()
    update_only: bool = False
    refunded: Literal["sync", "skip"] = "sync"
    fields: tuple[FieldMapConfig, ...] = _fields(
        ("FirstName", "firstName"), ("LastName", "lastName"), ("Email", "email")
    )
    poll_interval: float = 60.0
    trigger_window: float | None = None
    enabled: bool = True


@attrs.frozen
class ImportRegistrationsConfig:
    """A CRM registration record -> a Hopin magic-link invitation on the coded ticket."""

    source_object: str = "CampaignMember"
    ticket_code_field: str = "Campaign.Hopin_Ticket_Code__c"
    fields: tuple[FieldMapConfig, ...] = _fields(
        ("email", "Email"), ("firstName", "FirstName"), ("lastName", "LastName")
    )
    poll_interval: float = 60.0
    #: Seconds within which a change should arrive as a notification (e.g. an Outbound
    #: Message); a change only the poller saw is reported through ``trigger_missed``.
    trigger_window: float | None = None
    enabled: bool = True


@attrs.frozen
class MagicLinksConfig:
    """The magic link and its Invited/Registered status -> fields of the CRM record."""

    link_field: str
    status_field: str | None = None
    invited_value: str = "Invited"
    registered_value: str = "Registered"
    poll_interval: float = 60.0
    enabled: bool = True


@attrs.frozen
class AttendanceConfig:
    """Hopin attendance -> the linked CRM record (e.g. CampaignMember Status "Attended")."""

    target_object: str = "CampaignMember"
    status_field: str = "Status"
    attended_value: str = "Attended"
    #: Written, after the event, to invitees who did not attend (None: off).
    no_show_value: str | None = None
    #: Seconds after the event's end before no-shows are written.
    no_show_after: float = 3600.0
    fields: tuple[FieldMapConfig, ...] = ()
    poll_interval: float = 300.0
    enabled: bool = True


@attrs.frozen
class FlowsConfig:
    """The four flows; a flow without a section is off."""

    export_registrations: ExportRegistrationsConfig | None = None
    import_registrations: ImportRegistrationsConfig | None = None
    magic_links: MagicLinksConfig | None = None
    attendance: AttendanceConfig | None = None

    def enabled(self) -> list[str]:
        """Names of the flows that are configured and enabled."""
        return [n for n in FLOW_NAMES if (f := getattr(self, n)) is not None and f.enabled]


@attrs.frozen
class OrgConfig:
    """One organisation: its plan, plugins, connections per system and flows."""

    plan: str
    name: str = attrs.field(default="", metadata={"from_key": True})
    plugins: tuple[str, ...] = ("salesforce", "hopin")
    crm: str = "salesforce"
    event_platform: str = "hopin"
    systems: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    flows: FlowsConfig = FlowsConfig()
    plugin_options: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)

    def settings(self, system: str, env: Mapping[str, str] | None = None) -> SystemSettings:
        """The connection settings of ``system`` for this org."""
        return SystemSettings(
            system=system, org=self.name, options=self.systems.get(system, {}), env=env
        )

    def options_for(self, plugin: str) -> Mapping[str, Any]:
        """The ``[orgs.NAME.plugin_options.PLUGIN]`` table (empty when absent)."""
        return self.plugin_options.get(plugin, {})


@attrs.frozen
class EngineConfig:
    """Process-wide settings of the engine."""

    state: str = "eventsync.sqlite"
    listen: str = "127.0.0.1:8080"
    workers: int = 2
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
    plugins_allow: tuple[str, ...] | None = None
    plugins_block: tuple[str, ...] = ()
    secrets_file: str | None = None


@attrs.frozen
class Config:
    """A whole configuration file."""

    orgs: Mapping[str, OrgConfig]
    engine: EngineConfig = EngineConfig()
    entitlements: Mapping[str, tuple[str, ...]] = attrs.field(
        factory=lambda: dict(DEFAULT_ENTITLEMENTS)
    )
    source: str = ""

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
        flow_cfg = getattr(self.orgs[org].flows, flow)
        return RecordMapping(
            source_object=source_object,
            target_object=target_object,
            fields=tuple(f.to_model() for f in getattr(flow_cfg, "fields", ())),
            name=flow,
        )


class _Invalid(ValueError):
    """A structuring failure whose message is already written for the user."""


def _format_exception(exc: BaseException, type_: Any) -> str:
    if isinstance(exc, _Invalid):
        return str(exc)
    return format_exception(exc, type_)


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)

    def structure_transform(value: Any, _: type) -> TransformConfig:
        if isinstance(value, str):
            return TransformConfig(name=value)
        if isinstance(value, Mapping) and isinstance(value.get("name"), str):
            return TransformConfig(
                name=value["name"], args={k: v for k, v in value.items() if k != "name"}
            )
        raise _Invalid("a transform is a name or a table with a 'name' key")

    conv.register_structure_hook(TransformConfig, structure_transform)

    def structure_scalar(value: Any, _: type) -> Scalar:
        if value is None or isinstance(value, (str, int, float, bool)):
            return value
        raise _Invalid(
            f"a constant must be text, a number or true/false, not {type(value).__name__}"
        )

    conv.register_structure_hook_func(lambda t: t == Scalar, structure_scalar)

    def structure_names(value: Any, _: type) -> tuple[str, ...]:
        # cattrs would turn "salesforce" into ('s', 'a', ...); a list is required.
        if isinstance(value, str) or not isinstance(value, (list, tuple)):
            raise _Invalid(f'expected a list of names, e.g. ["{value}"]')
        bad = [v for v in value if not isinstance(v, str)]
        if bad:
            raise _Invalid(f"expected names (text), got {bad!r}")
        return tuple(value)

    conv.register_structure_hook_func(lambda t: t == tuple[str, ...], structure_names)

    return conv


_converter = _make_converter()


def _clean_path(line: str) -> str:
    # cattrs writes $.orgs['acme'].plan; users write orgs.acme.plan.
    line = re.sub(r"\['([^']*)'\]", r".\1", line)
    if " @ " in line:
        message, path = line.rsplit(" @ ", 1)
        return f"{path}: {message}"
    return line


def _semantic_problems(config: Config) -> list[str]:
    problems: list[str] = []
    flows_known = set(FLOW_NAMES)
    for plan, flows in config.entitlements.items():
        for flow in flows:
            if flow not in flows_known:
                problems.append(
                    f"$.entitlements.{plan}: unknown flow {flow!r} (known: {', '.join(FLOW_NAMES)})"
                )
    for name, org in config.orgs.items():
        base = f"$.orgs.{name}"
        if org.plan not in config.entitlements:
            problems.append(
                f"{base}.plan: unknown plan {org.plan!r} (plans with entitlements: "
                f"{', '.join(config.entitlements) or 'none'})"
            )
        else:
            allowed = set(config.entitlements[org.plan])
            for flow in org.flows.enabled():
                if flow not in allowed:
                    problems.append(
                        f"{base}.flows.{flow}: plan {org.plan!r} is not entitled to this flow "
                        f"(entitled: {', '.join(sorted(allowed)) or 'none'}); upgrade the plan "
                        f"or remove the flow"
                    )
        for role in ("crm", "event_platform"):
            system = getattr(org, role)
            if org.flows.enabled() and system not in org.systems:
                problems.append(
                    f"{base}.{role}: system {system!r} has no [orgs.{name}.systems.{system}] settings"
                )
            if system not in org.plugins:
                problems.append(f"{base}.plugins: the {role} system {system!r} is not enabled")
        for system, options in org.systems.items():
            if not isinstance(options, Mapping):
                problems.append(f"{base}.systems.{system}: must be a table of settings")
                continue
            for key, value in options.items():
                if _SECRET_NAME.search(key) and not key.endswith("_env"):
                    problems.append(
                        f"{base}.systems.{system}.{key}: secrets may not be written in the file; "
                        f"set {key}_env to the name of an environment variable holding it"
                    )
                elif key.endswith("_env") and not (
                    isinstance(value, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value)
                ):
                    problems.append(
                        f'{base}.systems.{system}.{key}: must name an environment variable, e.g. "SF_CLIENT_SECRET"'
                    )
        for flow in org.flows.enabled():
            for i, entry in enumerate(getattr(getattr(org.flows, flow), "fields", ())):
                given = sum(x is not None for x in (entry.source, entry.constant, entry.template))
                if given != 1:
                    problems.append(
                        f"{base}.flows.{flow}.fields[{i}]: give exactly one of source, constant "
                        f"or template for target {entry.target!r}"
                    )
    eng = config.engine
    if eng.batch_size < 1 or eng.batch_size > 200:
        problems.append(
            "$.engine.batch_size: must be between 1 and 200 (an sObject Collection holds 200)"
        )
    if not 0 <= eng.batch_linger <= 60:
        problems.append("$.engine.batch_linger: must be between 0 and 60 seconds")
    if eng.workers < 1:
        problems.append("$.engine.workers: must be at least 1")
    if not 0 < eng.backfill_budget_share <= 1:
        problems.append("$.engine.backfill_budget_share: must be in (0, 1]")
    return problems


def parse_config(data: Mapping[str, Any], source: str = "<config>") -> Config:
    """Structure a parsed TOML document; ConfigurationError lists every problem with its path."""
    try:
        config = _converter.structure({**data, "source": source}, Config)
    except (cattrs.ClassValidationError, cattrs.IterableValidationError) as exc:
        raise ConfigurationError(
            [
                _clean_path(line)
                for line in cattrs.transform_error(
                    exc, path="$", format_exception=_format_exception
                )
            ],
            heading=f"{source}: configuration problems",
        ) from None
    # An org's name is its key in [orgs]; it is not written inside the table.
    named = [
        f"$.orgs.{k}.name: remove it; the key of the table names the organisation"
        for k, v in data.get("orgs", {}).items()
        if isinstance(v, Mapping) and "name" in v
    ]
    config = attrs.evolve(config, orgs={k: attrs.evolve(v, name=k) for k, v in config.orgs.items()})
    problems = named + _semantic_problems(config)
    if problems:
        raise ConfigurationError(problems, heading=f"{source}: configuration problems")
    return config


def validate_config(config: Config) -> Config:
    """Check a Config made in code as strictly as a file; returns it with org names set from
    their keys. ConfigurationError lists every problem."""
    named = attrs.evolve(config, orgs={k: attrs.evolve(v, name=k) for k, v in config.orgs.items()})
    problems = _semantic_problems(named)
    if problems:
        raise ConfigurationError(
            problems, heading=f"{config.source or '<config>'}: configuration problems"
        )
    return named


def load_config(path: str | Path) -> Config:
    """Read and validate a TOML configuration file."""
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
            [f"{path}: invalid TOML: {exc}"], heading=f"{path}: configuration problems"
        ) from None
    return parse_config(data, source=str(path))


def secrets_env(config: Config, base: Mapping[str, str] | None = None) -> Mapping[str, str] | None:
    """The environment secrets are read from: the process environment, overlaid with the
    ``[engine] secrets_file`` (dotenv format, relative to the config file) when one is set.
    None means "the process environment" and is returned when there is no secrets file."""
    name = config.engine.secrets_file
    if not name:
        return base
    from dotenv import dotenv_values

    path = Path(name)
    if not path.is_absolute() and config.source and Path(config.source).exists():
        path = Path(config.source).resolve().parent / path
    if not path.exists():
        raise ConfigurationError([f"$.engine.secrets_file: {path} does not exist"])
    values = {k: v for k, v in dotenv_values(path).items() if v is not None}
    return {**(os.environ if base is None else base), **values}


def example_config() -> str:
    """The commented example configuration that ``eventsync init`` writes."""
    return (Path(__file__).parent / "example.toml").read_text(encoding="utf-8")
