"""What ``eventsync check`` does for one organisation, as a list of Findings.

Order: every configured system authenticates; each enabled flow names the objects it needs
(``Flow.schema_objects``) and the relationship paths to follow (``Flow.schema_paths``), which
are discovered; each flow checks its own settings against those schemas (``Flow.check``); and
every enabled plugin's ``preflight`` hook runs (a CRM plugin checks what only it knows there).
A step that cannot run because an earlier one failed is skipped (its cause is already a finding).
Which plugins exist and whether their settings are well-formed is checked before, offline, when
the file is read (``eventsync.config``).
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from .config import Config, OrgConfig
from .errors import AuthenticationError, ConfigurationError, EventsyncError, NoPluginForSystem
from .flows.base import FlowCheck, Role
from .hookspecs import Connection
from .models import Finding, Schema, Severity
from .plugins import Hooks

__all__ = ["OrgCheck", "check_org", "flow_objects"]

#: How deep ``eventsync check`` follows relationship paths (``A.B.C.field``).
MAX_PATH_DEPTH = 4


@attrs.frozen
class OrgCheck:
    """The outcome of checking one org: its findings and the live connections made."""

    org: str
    findings: tuple[Finding, ...]
    connections: Mapping[str, Connection] = attrs.field(factory=dict, repr=False)

    @property
    def ok(self) -> bool:
        """True when no finding is an error."""
        return not any(f.severity == "error" for f in self.findings)


def _finding(
    code: str, message: str, *, where: str = "", fix: str = "", severity: Severity = "error"
) -> Finding:
    return Finding(
        severity=severity, code=code, message=message, source="eventsync", where=where, fix=fix
    )


def flow_objects(org: OrgConfig, flows: Mapping[str, object]) -> dict[Role, set[str]]:
    """The objects each role must describe for the org's enabled flows."""
    wanted: dict[Role, set[str]] = {"crm": set(), "platform": set()}
    for name in org.flows.enabled():
        flow = flows.get(name)
        if flow is None:
            continue
        for role, objects in flow.schema_objects(org, org.flows[name]).items():  # type: ignore[attr-defined]
            wanted[role].update(objects)
    return wanted


def _parents_to_describe(schema: Schema, paths: list[tuple[str, str]]) -> set[str]:
    """Objects reached through the relationships of ``paths`` that are not described yet."""
    missing: set[str] = set()
    for obj, path in paths:
        current = schema.object(obj)
        for head in path.split(".")[:-1][:MAX_PATH_DEPTH]:
            if current is None:
                break
            relation = current.relationship(head)
            if relation is None or not relation.reference_to:
                break
            parent = relation.reference_to[0]
            current = schema.object(parent)
            if current is None:
                missing.add(parent)
    return missing


def _discover(
    hooks: Hooks, connection: Connection, objects: set[str], paths: list[tuple[str, str]]
) -> Schema:
    """The objects, then the parents their relationship paths reach, round by round."""
    schema = hooks.discover_schema(connection, sorted(objects))
    for _ in range(MAX_PATH_DEPTH):
        parents = _parents_to_describe(schema, paths)
        if not parents:
            break
        more = hooks.discover_schema(connection, sorted(parents))
        schema = attrs.evolve(schema, objects={**schema.objects, **more.objects})
    return schema


def _authenticate(
    org: OrgConfig, hooks: Hooks, env: Mapping[str, str] | None, secrets_file: str | None
) -> tuple[dict[str, Connection], list[Finding]]:
    connections: dict[str, Connection] = {}
    findings: list[Finding] = []
    for system in org.systems:
        where = f"$.orgs.{org.name}.systems.{system}"
        try:
            settings = attrs.evolve(org.settings(system, env), secrets_file=secrets_file)
            connections[system] = hooks.authenticate(settings)
        except AuthenticationError as exc:
            findings.append(
                _finding(
                    "authentication", str(exc), where=where, fix=exc.hint or "check the credentials"
                )
            )
        except ConfigurationError as exc:
            findings.extend(_finding("configuration", p, where=where) for p in exc.problems)
        except NoPluginForSystem as exc:
            findings.append(_finding("no_plugin", str(exc), where=where))
        except (EventsyncError, OSError) as exc:
            findings.append(
                _finding(
                    "connection",
                    f"{system}: {exc}",
                    where=where,
                    fix="check the URL and that the service is reachable",
                )
            )
    return connections, findings


def check_org(
    config: Config,
    org_name: str,
    hooks: Hooks,
    *,
    online: bool = True,
    env: Mapping[str, str] | None = None,
) -> OrgCheck:
    """Check one organisation; never raises for a problem it can report as a finding.

    :param online: False checks nothing remote (the file was already checked when read).
    :param env: where secrets are read from (default: the process environment).
    """
    org = config.org(org_name)
    if not online:
        return OrgCheck(org.name, ())
    org_hooks = hooks.for_plugins(org.plugins)
    connections, findings = _authenticate(org, org_hooks, env, config.engine.secrets_file)
    flows = hooks.flows()

    systems: dict[Role, str] = {"crm": org.crm, "platform": org.event_platform}
    paths: dict[Role, list[tuple[str, str]]] = {"crm": [], "platform": []}
    for name in org.flows.enabled():
        if name in flows:
            for role, found in flows[name].schema_paths(org.flows[name]).items():
                paths[role].extend(found)
    schemas: dict[Role, Schema] = {}
    for role, objects in flow_objects(org, flows).items():
        system = systems[role]
        if system not in connections or not objects:
            continue
        try:
            schemas[role] = _discover(org_hooks, connections[system], objects, paths[role])
        except EventsyncError as exc:
            findings.append(
                _finding(
                    "discovery", f"{system}: {exc}", where=f"$.orgs.{org.name}.systems.{system}"
                )
            )
    transforms = org_hooks.transforms()
    for name in org.flows.enabled():
        if name not in flows:
            continue
        check = FlowCheck(config, org, name, org.flows[name], schemas, transforms)
        try:
            findings.extend(flows[name].check(check))
        except EventsyncError as exc:
            findings.append(_finding("check", f"{name}: {exc}", where=check.path))
    try:
        findings.extend(org_hooks.preflight(org, connections))
    except EventsyncError as exc:
        findings.append(_finding("preflight", str(exc)))
    return OrgCheck(org.name, tuple(findings), connections)
