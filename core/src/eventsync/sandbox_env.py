"""A ready-made local environment: a CRM sandbox and an event-platform sandbox, wired to an
eventsync endpoint.

Used by ``eventsync sandbox``, ``eventsync init --sandbox``, ``eventsync demo``, the
end-to-end tests and the benchmarks, so they all run the same set-up as a user would. Core names
no system: the installed plugins declare the systems they wire sandboxes of
(``sandbox_systems``) and supply, per system,

* the ``start_sandbox`` options the flows need (``sandbox_options``): for Salesforce the custom
  fields the guide asks an admin to create and an Outbound Message rule posting to
  ``<endpoint>/hooks/<org>/salesforce``; for Hopin its seeded organisation, event and ticket;
* the connection settings that wire it to the endpoint (``sandbox_wiring``): for Hopin the
  ``webhook_url`` its dataSubscription delivers to;
* its part of the sandbox organisation's flow configuration (``sandbox_flows``);
* the demo's operations (``demo_crm``, ``demo_platform``, used by ``eventsync.demo``).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from .config import Config, parse_config
from .errors import ConfigurationError
from .hookspecs import SandboxHandle
from .plugins import Hooks

__all__ = [
    "ROLES",
    "SandboxSystem",
    "SandboxFlows",
    "DemoPerson",
    "DemoAction",
    "SandboxPair",
    "free_port",
    "notify_url",
    "sandbox_systems",
    "choose_system",
    "choice_note",
    "merge_options",
    "merge_flows",
    "start_sandboxes",
    "org_config_data",
    "config_for",
    "sandbox_config_files",
    "write_private",
]

Role = Literal["crm", "event_platform"]
ROLES: tuple[Role, ...] = ("crm", "event_platform")
_ROLE_NAMES = {"crm": ("CRM", "CRMs"), "event_platform": ("event platform", "event platforms")}
_ARTICLED = {"crm": "a CRM", "event_platform": "an event platform"}
_ROLE_OPTIONS = {"crm": "--crm", "event_platform": "--platform"}
# The keys of a field mapping entry that give its value (config.FieldMapConfig).
_VALUE_KEYS = ("source", "constant", "template")


@attrs.frozen
class SandboxSystem:
    """A system a plugin wires sandboxes of (declared through the ``sandbox_systems`` hook).

    :ivar system: the system name (``[orgs.X.systems.NAME]``, ``start_sandbox``'s ``system``),
        which is also the name of the plugin an organisation enables for it.
    :ivar role: ``"crm"`` or ``"event_platform"``.
    :ivar label: how people name it ("Salesforce").
    :ivar default: run this one when several systems of its role offer sandboxes and none is
        named (``--crm`` / ``--platform``); with more than one default, one must be named.
    """

    system: str
    role: Role
    label: str = ""
    default: bool = False


@attrs.frozen
class SandboxFlows:
    """One system's part of a sandbox organisation's flow configuration (``sandbox_flows``).

    :ivar settings: per flow name, the settings that name this system's objects and fields
        (``target_object``, ``link_field`` ...); merged with the other system's settings.
    :ivar fields: per flow name, this system's half of each field mapping by neutral role
        (``first_name``, ``last_name``, ``email``, ``company`` ...): ``{"target": NAME}`` (and
        ``transforms``) where the flow writes this system, ``{"source": NAME}`` or
        ``{"constant": VALUE}`` (and ``transforms``) where it reads it. The halves of one role
        form one ``fields`` entry, source transforms first; a target half with its own
        ``constant`` is kept when the other system names no value for the role.
    """

    settings: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    fields: Mapping[str, Mapping[str, Mapping[str, Any]]] = attrs.field(factory=dict)


@attrs.frozen
class DemoPerson:
    """Someone the demo invites through the CRM or registers on the event platform."""

    first_name: str
    last_name: str
    email: str
    company: str = ""
    website: str = ""


@attrs.frozen
class DemoAction:
    """A demo step a system contributes: its readable title and ``run``, which performs it and
    returns one line saying what happened (raising when it did not)."""

    title: str
    run: Callable[[], str]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for an endpoint started later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def notify_url(endpoint: str, org: str, system: str) -> str:
    """Where the engine at ``endpoint`` receives ``system``'s notifications for ``org``."""
    return f"{endpoint.rstrip('/')}/hooks/{org}/{system}"


def write_private(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` readable and writable by its owner only (it holds secrets)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        # O_CREAT's mode applies to new files only: an existing file is narrowed before writing.
        os.fchmod(file.fileno(), 0o600)
        file.write(text)


# --- choosing the systems ------------------------------------------------------------------


def sandbox_systems(hooks: Hooks) -> dict[str, SandboxSystem]:
    """Every system an installed plugin wires sandboxes of, by name.

    A system's ``system_profiles`` entry, when there is one, gives its role and label.

    :raises ConfigurationError: a system is declared twice.
    """
    profiles = hooks.profiles()
    found: dict[str, SandboxSystem] = {}
    problems: list[str] = []
    for batch in hooks.caller("sandbox_systems")():
        for declared in batch or ():
            if declared.system in found:
                problems.append(f"the sandbox of system {declared.system!r} is declared twice")
            profile = profiles.get(declared.system)
            if profile is not None:
                declared = attrs.evolve(
                    declared, role=profile.role, label=profile.label or declared.label
                )
            found[declared.system] = declared
    if problems:
        raise ConfigurationError(problems, heading="sandbox systems")
    return found


def choose_system(hooks: Hooks, role: Role, name: str | None = None) -> SandboxSystem:
    """The system of ``role`` to run a sandbox of: ``name``, or else the only one installed.

    With several installed and no ``name``, the one whose plugin declares it the ``default`` of
    its role is chosen (``choice_note`` words it for the user); without exactly one default this
    is an error rather than a guess: which system a sandbox emulates decides what the user
    tries out.

    :raises ConfigurationError: ``name`` is no installed system of ``role`` with a sandbox, or
        none or several are installed; the message lists the installed ones.
    """
    noun, plural = _ROLE_NAMES[role]
    wired = sandbox_systems(hooks)
    usable = sorted(s for s, d in wired.items() if d.role == role)
    without = sorted(s for s, p in hooks.profiles().items() if p.role == role and s not in wired)
    listing = ", ".join([*usable, *(f"{s} (no sandbox)" for s in without)]) or "none"
    if name is not None:
        if name in usable:
            return wired[name]
        if name in without:
            problem = f"the {noun} {name!r} offers no sandbox"
        elif name in wired:
            problem = f"{name!r} is not {_ARTICLED[role]} but {_ARTICLED[wired[name].role]}"
        else:
            problem = f"no {noun} named {name!r} is installed"
        raise ConfigurationError(
            [f"{problem}; installed {plural}: {listing}"], heading="sandbox systems"
        )
    if len(usable) == 1:
        return wired[usable[0]]
    defaults = [s for s in usable if wired[s].default]
    if len(defaults) == 1:
        return wired[defaults[0]]
    if usable:
        problem = (
            f"several {plural} offer a sandbox ({', '.join(usable)}); choose one with "
            f"{_ROLE_OPTIONS[role]} NAME"
        )
    else:
        problem = (
            f"no installed {noun} offers a sandbox (installed {plural}: {listing}); install "
            f"its plugin, and check EVENTSYNC_PLUGINS and EVENTSYNC_DISABLE_PLUGINS"
        )
    raise ConfigurationError([problem], heading="sandbox systems")


def choice_note(hooks: Hooks, role: Role, name: str | None = None) -> str | None:
    """One line saying that ``choose_system`` picked the default among several installed
    systems of ``role`` and how to choose another; None when there was nothing to choose."""
    if name is not None:
        return None
    wired = sandbox_systems(hooks)
    usable = sorted(s for s, d in wired.items() if d.role == role)
    defaults = [s for s in usable if wired[s].default]
    if len(usable) < 2 or len(defaults) != 1:
        return None
    others = ", ".join(s for s in usable if s != defaults[0])
    return (
        f"several {_ROLE_NAMES[role][1]} offer a sandbox; using {defaults[0]} (the default); "
        f"{_ROLE_OPTIONS[role]} NAME chooses another ({others})"
    )


# --- merging the systems' parts ------------------------------------------------------------


def merge_options(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``extra`` merged in: tables merged key by key, lists concatenated, any
    other value replaced."""
    merged = dict(base)
    for key, value in extra.items():
        current = merged.get(key)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = merge_options(current, value)
        elif isinstance(value, list) and isinstance(current, list):
            merged[key] = [*current, *value]
        else:
            merged[key] = value
    return merged


def _field_entries(
    first: Mapping[str, Mapping[str, Any]], second: Mapping[str, Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """The ``fields`` entries of one flow from both systems' halves, paired by role."""
    entries: list[dict[str, Any]] = []
    for role in dict.fromkeys([*first, *second]):
        halves = [h for h in (first.get(role), second.get(role)) if h]
        targets = [h for h in halves if "target" in h]
        if len(targets) != 1:  # nothing to write, or both claim the target: no entry
            continue
        [target] = targets
        entry = {k: v for k, v in target.items() if k != "transforms"}
        transforms = list(target.get("transforms", ()))
        for read in (h for h in halves if h is not target):
            if any(k in read for k in _VALUE_KEYS):
                # The reading system's value wins over the target's fallback constant.
                entry = {k: v for k, v in entry.items() if k not in _VALUE_KEYS}
            entry.update({k: v for k, v in read.items() if k != "transforms"})
            transforms = [*read.get("transforms", ()), *transforms]
        if transforms:
            entry["transforms"] = transforms
        if any(k in entry for k in _VALUE_KEYS):
            entries.append(entry)
    return entries


def merge_flows(
    crm: SandboxFlows, platform: SandboxFlows, *, poll_interval: float = 2.0
) -> dict[str, dict[str, Any]]:
    """The ``[orgs.X.flows]`` table made of the CRM's and the event platform's parts: every
    flow either part names, with ``poll_interval`` set."""
    names = dict.fromkeys([*crm.settings, *crm.fields, *platform.settings, *platform.fields])
    flows: dict[str, dict[str, Any]] = {}
    for flow in names:
        settings = merge_options(crm.settings.get(flow, {}), platform.settings.get(flow, {}))
        fields = _field_entries(crm.fields.get(flow, {}), platform.fields.get(flow, {}))
        if fields:
            settings["fields"] = fields
        flows[flow] = {**settings, "poll_interval": poll_interval}
    return flows


def _flow_part(hooks: Hooks, system: str) -> SandboxFlows:
    part = hooks.caller("sandbox_flows")(system=system)
    return part if part is not None else SandboxFlows()


def org_config_data(
    systems: Mapping[str, Mapping[str, Any]],
    *,
    crm: str,
    platform: str,
    flows: Mapping[str, Mapping[str, Any]],
    plugins: Sequence[str] | None = None,
) -> dict[str, Any]:
    """The ``[orgs.<org>]`` table for sandboxes: connection ``systems`` options by system name,
    the ``crm`` and ``platform`` system names, and ``flows``.

    :param plugins: the plugins the org enables (default: the two systems' plugins).
    """
    return {
        "plan": "enterprise",
        "plugins": list(plugins if plugins is not None else (crm, platform)),
        "crm": crm,
        "event_platform": platform,
        "systems": {system: dict(options) for system, options in systems.items()},
        "flows": {name: dict(flow) for name, flow in flows.items()},
    }


# --- running them --------------------------------------------------------------------------


@attrs.frozen
class SandboxPair:
    """The running CRM and event-platform sandboxes and the endpoint they notify.

    :ivar crm: the CRM sandbox.
    :ivar platform: the event-platform sandbox.
    :ivar org: the organisation name their notifications are addressed to.
    :ivar endpoint: the base URL of the engine they notify (None: no triggers).
    :ivar wiring: per system, the connection settings pointing it at the endpoint.
    :ivar parts: per system, its part of the flow configuration.
    :ivar hooks: the plugins that started them (their declarations validate the config).
    """

    crm: SandboxHandle
    platform: SandboxHandle
    org: str
    endpoint: str | None
    wiring: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)
    parts: Mapping[str, SandboxFlows] = attrs.field(factory=dict)
    hooks: Hooks | None = attrs.field(default=None, repr=False, eq=False)

    def handles(self) -> dict[str, SandboxHandle]:
        """The handles by system name."""
        return {self.crm.system: self.crm, self.platform.system: self.platform}

    def options(self, system: str) -> dict[str, Any]:
        """Connection options for ``system`` (secrets named by ``*_env`` keys)."""
        handle = self.handles()[system]
        return {**handle.settings(self.org).options, **self.wiring.get(system, {})}

    def secrets(self) -> dict[str, str]:
        """The sandboxes' secrets by environment-variable name."""
        env: dict[str, str] = {}
        for handle in self.handles().values():
            env.update(handle.settings(self.org).env or {})
        return env

    def flows(self, poll_interval: float = 2.0) -> dict[str, dict[str, Any]]:
        """The default flow configuration: both systems' parts merged."""
        return merge_flows(
            self.parts.get(self.crm.system, SandboxFlows()),
            self.parts.get(self.platform.system, SandboxFlows()),
            poll_interval=poll_interval,
        )

    def org_data(
        self,
        *,
        flows: Mapping[str, Mapping[str, Any]] | None = None,
        plugins: Sequence[str] | None = None,
        poll_interval: float = 2.0,
    ) -> dict[str, Any]:
        """The ``[orgs.<org>]`` table for these sandboxes (default flows unless ``flows``)."""
        return org_config_data(
            {system: self.options(system) for system in self.handles()},
            crm=self.crm.system,
            platform=self.platform.system,
            flows=flows if flows is not None else self.flows(poll_interval),
            plugins=plugins,
        )

    def info(self) -> dict[str, Any]:
        """One JSON-ready description: the org, the endpoint, which system has which role, and
        per system (keyed by its name) its info, connection settings and secrets."""
        return {
            "org": self.org,
            "endpoint": self.endpoint,
            "crm": self.crm.system,
            "event_platform": self.platform.system,
            **{
                system: {
                    **dict(handle.info()),
                    "settings": self.options(system),
                    "secrets": dict(handle.settings(self.org).env or {}),
                }
                for system, handle in self.handles().items()
            },
        }

    def stop(self) -> None:
        """Stop both sandboxes."""
        for handle in self.handles().values():
            handle.stop()


def start_sandboxes(
    hooks: Hooks,
    *,
    crm: str | None = None,
    platform: str | None = None,
    org: str = "sandbox",
    endpoint: str | None = None,
    triggers: bool = True,
    registrations: int = 0,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    latency: str | Mapping[str, Any] | None = None,
    latency_seed: int = 0,
) -> SandboxPair:
    """Start a CRM sandbox and an event-platform sandbox wired to ``endpoint``.

    :param crm: the CRM system (default: the only one installed; see ``choose_system``).
    :param platform: the event-platform system (default: the only one installed).
    :param endpoint: the base URL of the eventsync runner to notify.
    :param triggers: False starts them without notifications (pollers only).
    :param registrations: how many registrations the event platform seeds.
    :param options: per system, more ``start_sandbox`` options, merged into the ones its
        plugin gives (``merge_options``: e.g. more custom fields, validation rules, faults).
    :param latency: the latency profile both sandboxes answer with (``"realistic"``; None:
        none), passed as their ``latency`` and ``latency_seed`` options (``eventsync.latency``).
    :raises ConfigurationError: see ``choose_system``.
    :raises ValueError: a sandbox refused its options (e.g. a latency profile it does not have).
    """
    chosen = [choose_system(hooks, "crm", crm), choose_system(hooks, "event_platform", platform)]
    endpoint = endpoint.rstrip("/") if endpoint and triggers else None
    started: list[SandboxHandle] = []
    wiring: dict[str, Mapping[str, Any]] = {}
    try:
        for declared in chosen:
            system = declared.system
            url = notify_url(endpoint, org, system) if endpoint else None
            base = hooks.caller("sandbox_options")(
                system=system, notify_url=url, registrations=registrations
            )
            extra = dict((options or {}).get(system, {}))
            if latency is not None:
                extra = {"latency": latency, "latency_seed": latency_seed, **extra}
            handle = hooks.start_sandbox(system, merge_options(base or {}, extra))
            started.append(handle)
            wired = hooks.caller("sandbox_wiring")(system=system, handle=handle, notify_url=url)
            wiring[system] = dict(wired or {})
        parts = {d.system: _flow_part(hooks, d.system) for d in chosen}
    except BaseException:
        for handle in started:
            handle.stop()
        raise
    return SandboxPair(started[0], started[1], org, endpoint, wiring, parts, hooks)


def config_for(
    pair: SandboxPair,
    *,
    state: str,
    flows: Mapping[str, Mapping[str, Any]] | None = None,
    engine: Mapping[str, Any] | None = None,
    listen: str = "127.0.0.1:8080",
    poll_interval: float = 2.0,
    plugins: Sequence[str] | None = None,
) -> Config:
    """A complete validated Config for the sandboxes (secrets via ``pair.secrets()``)."""
    data = {
        "engine": {"state": state, "listen": listen, **(engine or {})},
        "orgs": {
            pair.org: pair.org_data(flows=flows, plugins=plugins, poll_interval=poll_interval)
        },
    }
    return parse_config(data, source="<sandbox>", hooks=pair.hooks)


def sandbox_config_files(
    info: Mapping[str, Any],
    *,
    hooks: Hooks,
    secrets_file: str,
    flows: Mapping[str, Mapping[str, Any]] | None = None,
    engine: Mapping[str, Any] | None = None,
) -> tuple[str, str]:
    """The config file and secrets file (dotenv) for sandboxes described by ``info``
    (what ``SandboxPair.info()`` returned, e.g. read back from ``eventsync sandbox``'s file).

    :param hooks: the plugins giving each system's part of the default ``flows``.
    :raises KeyError: ``info`` does not name its systems (it was not written by
        ``SandboxPair.info()``).
    """
    import tomli_w

    org = info["org"]
    crm, platform = str(info["crm"]), str(info["event_platform"])
    systems = (crm, platform)
    endpoint = info.get("endpoint") or "http://127.0.0.1:8080"
    listen = endpoint.split("://", 1)[-1].rstrip("/")
    if flows is None:
        flows = merge_flows(_flow_part(hooks, crm), _flow_part(hooks, platform))
    data = {
        "engine": {
            "state": "eventsync-sandbox.sqlite",
            "listen": listen,
            "secrets_file": secrets_file,
            **(engine or {}),
        },
        "orgs": {
            org: org_config_data(
                {s: info[s]["settings"] for s in systems}, crm=crm, platform=platform, flows=flows
            )
        },
    }
    header = (
        "# eventsync configuration for the local sandboxes, written by `eventsync init --sandbox`.\n"
        f"# Secrets are in {secrets_file}. Check it: eventsync check; run it: eventsync run\n\n"
    )
    secrets = "".join(
        f"{name}={value}\n"
        for system in systems
        for name, value in sorted(info[system]["secrets"].items())
    )
    return header + tomli_w.dumps(data), secrets
