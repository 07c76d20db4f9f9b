"""Checking a configuration against the plugins: what only they know.

Core knows no vendor, so part of a file can be checked only once the plugins are loaded: which
plugins exist, which systems they declare and in which role (``system_profiles``), each
system's settings schema, each concern plugin's options schema (``options_schemas``) and each
flow's own settings class with the defaults the CRM and event-platform plugins declare. Every
problem is collected, with its ``$.path``; nothing stops at the first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from .config import Config, FlowsConfig, OrgConfig
from .errors import ConfigurationError
from .models import SystemProfile
from .settings import resolve_paths, salvage, structure

__all__ = ["resolve_org", "ROLE_KEYS"]

#: The org setting naming the system of each profile role.
ROLE_KEYS = {"crm": "crm", "event_platform": "event_platform"}


def _role_system(
    org: OrgConfig, role: str, profiles: Mapping[str, SystemProfile], base: str
) -> tuple[str, list[str]]:
    """The system in ``role``: the one named, or the only enabled system declaring the role."""
    key = ROLE_KEYS[role]
    named = getattr(org, key)
    candidates = sorted(name for name, p in profiles.items() if p.role == role)
    if named:
        profile = profiles.get(named)
        if profile is None:
            return named, [
                f"{base}.{key}: no enabled plugin declares the system {named!r} "
                f"(enabled {role} systems: {', '.join(candidates) or 'none'}); add its plugin "
                f"to {base}.plugins"
            ]
        if profile.role != role:
            return named, [f"{base}.{key}: {named!r} is a {profile.role} system, not a {role}"]
        return named, []
    if len(candidates) == 1:
        return candidates[0], []
    if not org.flows.enabled():
        return "", []
    if not candidates:
        return "", [
            f"{base}.plugins: no enabled plugin declares a {role} system; enable one "
            f"(installed plugins are listed by `eventsync plugins`)"
        ]
    return "", [
        f"{base}.{key}: several enabled plugins declare a {role} system ({', '.join(candidates)}); "
        f'name one, e.g. {key} = "{candidates[0]}"'
    ]


def _flow_problems(
    config: Config,
    org: OrgConfig,
    flows: Mapping[str, Any],
    crm: SystemProfile | None,
    platform: SystemProfile | None,
    base: str,
) -> tuple[dict[str, Any], list[str]]:
    """Each flow's settings, structured by the flow's own class over the plugins' defaults."""
    problems: list[str] = []
    structured: dict[str, Any] = {}
    allowed = config.entitled(org.plan)
    for name, settings in org.flows.items():
        path = f"{base}.flows.{name}"
        flow = flows.get(name)
        if flow is None:
            problems.append(
                f"{path}: no installed plugin provides the flow {name!r} "
                f"(flows: {', '.join(flows) or 'none'})"
            )
            continue
        settings_class = getattr(flow, "settings_class", None)
        if settings_class is None:
            problems.append(f"{path}: the flow {name!r} declares no settings_class")
            continue
        if isinstance(settings, Mapping):
            defaults = flow.default_settings(crm, platform)
            table = {**defaults, **settings}
            instance, found = structure(settings_class, table, path)
            problems.extend(found)
            if instance is None:
                # Still report what the rest of the table gets wrong.
                salvaged = salvage(settings_class, table, found, path)
                if salvaged is not None:
                    problems.extend(flow.settings_problems(salvaged, path))
                continue
        else:
            instance = settings
        problems.extend(flow.settings_problems(instance, path))
        structured[name] = instance
        enabled = getattr(instance, "enabled", True)
        if enabled and allowed is not None and name not in allowed:
            problems.append(
                f"{path}: plan {org.plan!r} is not entitled to this flow "
                f"(entitled: {', '.join(sorted(allowed)) or 'none'}); upgrade the plan "
                f"or remove the flow"
            )
    return structured, problems


def resolve_org(
    config: Config, org: OrgConfig, hooks: Any, flows: Mapping[str, Any]
) -> tuple[OrgConfig, list[str]]:
    """Check one organisation against the plugins; returns it with its roles filled in and
    its flows' settings structured, and every problem found."""
    base = f"$.orgs.{org.name}"
    problems: list[str] = []
    installed = {name for name, plugin in hooks.pm.list_name_plugin() if plugin is not None}
    for plugin in org.plugins:
        if plugin not in installed:
            problems.append(
                f"{base}.plugins: plugin {plugin!r} is not installed or is blocked "
                f"(installed: {', '.join(sorted(installed - _builtins())) or 'none'}); "
                f"install its distribution or remove it from the list"
            )
    org_hooks = hooks.for_plugins([p for p in org.plugins if p in installed])
    try:
        profiles = org_hooks.profiles()
    except ConfigurationError as exc:
        problems.extend(exc.problems)
        profiles = {}

    crm, found = _role_system(org, "crm", profiles, base)
    problems.extend(found)
    platform, found = _role_system(org, "event_platform", profiles, base)
    problems.extend(found)
    for key, system in (("crm", crm), ("event_platform", platform)):
        if system and org.flows.enabled() and system not in org.systems:
            problems.append(
                f"{base}.{key}: system {system!r} has no [orgs.{org.name}.systems.{system}] settings"
            )

    systems = dict(org.systems)
    for system, options in org.systems.items():
        profile = profiles.get(system)
        if profile is None:
            problems.append(
                f"{base}.systems.{system}: no enabled plugin declares the system {system!r} "
                f"(enabled systems: {', '.join(sorted(profiles)) or 'none'}); enable its plugin "
                f"in {base}.plugins"
            )
        elif profile.settings is not None and isinstance(options, Mapping):
            problems.extend(structure(profile.settings, options, f"{base}.systems.{system}")[1])
            systems[system] = resolve_paths(profile.settings, options, config.base_dir)

    schemas = org_hooks.options_schemas()
    plugin_options = dict(org.plugin_options)
    for plugin, options in org.plugin_options.items():
        options_class = schemas.get(plugin)
        if options_class is not None and isinstance(options, Mapping):
            path = f"{base}.plugin_options.{plugin}"
            problems.extend(structure(options_class, options, path)[1])
            plugin_options[plugin] = resolve_paths(options_class, options, config.base_dir)

    structured, found = _flow_problems(
        config, org, flows, profiles.get(crm), profiles.get(platform), base
    )
    problems.extend(found)
    resolved = attrs.evolve(
        org,
        crm=crm,
        event_platform=platform,
        flows=FlowsConfig(structured),
        systems=systems,
        plugin_options=plugin_options,
    )
    return resolved, problems


def _builtins() -> set[str]:
    from .plugins import BUILTIN_PLUGINS

    return {name for name, _ in BUILTIN_PLUGINS}
