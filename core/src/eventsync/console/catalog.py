"""What the console offers for an organisation: the systems and plugins installed, and the
guide's steps in order (connect each system, the concern plugins' options, then each flow)."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from ..models import SystemProfile
from ..plugins import Hooks, describe_plugins

__all__ = ["FLOW_TITLES", "Step", "plugin_of_system", "steps", "flow_title"]

#: The guide's screen titles of the built-in flows (another flow gets its name as title).
FLOW_TITLES: Mapping[str, str] = {
    "export_registrations": "Export registrations",
    "import_registrations": "Import registrations",
    "magic_links": "Registration object: magic link and status",
    "attendance": "Attendance",
}
#: The order of the guide's flow screens; other flows follow in name order.
FLOW_ORDER = ("export_registrations", "import_registrations", "magic_links", "attendance")


def flow_title(name: str) -> str:
    """The screen title of flow ``name``."""
    return FLOW_TITLES.get(name, name.replace("_", " ").capitalize())


@attrs.frozen
class Step:
    """One screen of the guide for an organisation.

    :ivar kind: ``system``, ``plugin`` or ``flow``.
    :ivar state: ``done``, ``skipped``, ``todo`` or ``not in plan``.
    """

    kind: str
    name: str
    title: str
    endpoint: str
    state: str


def plugin_of_system(hooks: Hooks) -> dict[str, str]:
    """Which plugin declares each system, by system name."""
    found = {}
    for info in describe_plugins(hooks.pm):
        for declared in info.systems:
            found[declared.split(" ", 1)[0]] = info.name
    return found


def _flow_state(table: Mapping[str, object] | None, entitled: bool) -> str:
    if not entitled:
        return "not in plan"
    if table is None:
        return "todo"
    return "skipped" if table.get("enabled") is False else "done"


def steps(
    org: Mapping[str, object],
    profiles: Mapping[str, SystemProfile],
    options: Mapping[str, type],
    flows: list[str],
    entitled: Mapping[str, bool],
) -> list[Step]:
    """The guide's screens for the raw ``[orgs.NAME]`` table ``org``."""
    systems = org.get("systems") or {}
    assert isinstance(systems, Mapping)
    found = []
    for role in ("crm", "event_platform"):
        system = str(org.get(role) or "")
        profile = profiles.get(system)
        if profile is None:
            continue
        found.append(
            Step(
                "system",
                system,
                f"Connect {profile.label or system}",
                "systems.connect",
                "done" if systems.get(system) else "todo",
            )
        )
    enabled = [str(p) for p in org.get("plugins") or ()]  # type: ignore[attr-defined]
    plugin_options = org.get("plugin_options") or {}
    assert isinstance(plugin_options, Mapping)
    for plugin in sorted(options):
        if plugin in enabled:
            state = "done" if plugin in plugin_options else "todo"
            found.append(Step("plugin", plugin, f"{plugin} options", "systems.plugin", state))
    table = org.get("flows") or {}
    assert isinstance(table, Mapping)
    ordered = [f for f in FLOW_ORDER if f in flows] + sorted(
        f for f in flows if f not in FLOW_ORDER
    )
    for flow in ordered:
        state = _flow_state(table.get(flow), entitled.get(flow, False))
        found.append(Step("flow", flow, flow_title(flow), "guide.flow", state))
    return found
