"""What ``eventsync check`` does for one organisation, as a list of Findings.

Order: enabled plugins exist, every configured system authenticates, the schemas the flows
need are discovered, each flow's mappings and field references fit those schemas, and every
enabled plugin's ``preflight`` hook runs. A step that cannot run because an earlier one failed
is skipped (its cause is already a finding).
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from .config import Config, OrgConfig
from .errors import AuthenticationError, ConfigurationError, EventsyncError, NoPluginForSystem
from .flows import platform as P
from .hookspecs import Connection
from .mapping import resolve_path, validate_mapping
from .models import FieldSchema, Filter, Finding, PullRequest, Schema, Severity
from .plugins import Hooks

__all__ = ["OrgCheck", "check_org", "flow_objects"]


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


def flow_objects(org: OrgConfig) -> dict[str, set[str]]:
    """The objects each system must describe for the org's enabled flows."""
    crm: set[str] = set()
    platform: set[str] = set()
    flows = org.flows
    if (export := flows.export_registrations) and export.enabled:
        platform.add(P.REGISTRATION)
        crm.add(export.target_object)
        crm.update(step.object for step in export.match_cascade)
    if (imports := flows.import_registrations) and imports.enabled:
        crm.add(imports.source_object)
        crm.update(
            _parent_objects(
                [imports.ticket_code_field, *(e.source for e in imports.fields if e.source)]
            )
        )
        platform.update({P.TICKET, P.MAGIC_LINK})
    if (links := flows.magic_links) and links.enabled:
        crm.add(imports.source_object if imports else "CampaignMember")
        platform.add(P.MAGIC_LINK)
    if (attendance := flows.attendance) and attendance.enabled:
        crm.add(attendance.target_object)
        platform.add(P.ATTENDANCE)
    return {org.crm: crm, org.event_platform: platform}


def _parent_objects(paths: list[str]) -> set[str]:
    """Objects behind relationship paths: ``Campaign.X`` -> Campaign, ``Ticket__r.X`` -> Ticket__c."""
    parents = set()
    for path in paths:
        if "." in path:
            head = path.split(".", 1)[0]
            parents.add(head[:-3] + "__c" if head.endswith("__r") else head)
    return parents


def _finding(
    code: str, message: str, *, where: str = "", fix: str = "", severity: Severity = "error"
) -> Finding:
    return Finding(
        severity=severity, code=code, message=message, source="eventsync", where=where, fix=fix
    )


def _field_exists(schema: Schema, obj: str, path: str) -> str | None:
    """None when ``obj.path`` resolves (through relationships), else the problem."""
    current = schema.object(obj)
    if current is None:
        return f"object {obj!r} was not discovered"
    return resolve_path(schema, current, path)[1]


def _mapping_findings(
    config: Config,
    org: OrgConfig,
    schemas: Mapping[str, Schema],
    hooks: Hooks,
    connections: Mapping[str, Connection],
) -> list[Finding]:
    findings: list[Finding] = []
    crm, platform = schemas.get(org.crm), schemas.get(org.event_platform)
    if crm is None or platform is None:
        return findings
    transforms = hooks.transforms()
    base = f"$.orgs.{org.name}.flows"
    flows = org.flows

    def check(
        flow: str,
        source: Schema,
        target: Schema,
        src: str,
        tgt: str,
        op: str,
        provided: tuple[str, ...] = (),
    ) -> None:
        mapping = config.mapping(org.name, flow, src, tgt)
        for problem in validate_mapping(
            mapping,
            source,
            target,
            operation=op,
            transforms=transforms,
            where=f"{base}.{flow}.fields",
            provided=provided,
        ):
            findings.append(
                _finding(
                    "mapping",
                    problem,
                    where=f"{base}.{flow}.fields",
                    fix="correct the mapping entry in the config file",
                )
            )

    if (export := flows.export_registrations) and export.enabled:
        check(
            "export_registrations",
            platform,
            crm,
            P.REGISTRATION,
            export.target_object,
            "update" if export.update_only else "upsert",
        )
    if (imports := flows.import_registrations) and imports.enabled:
        check(
            "import_registrations",
            crm,
            platform,
            imports.source_object,
            P.MAGIC_LINK,
            "insert",
            provided=(P.LINK_TICKET, P.LINK_CRM_ID),
        )
        problem = _field_exists(crm, imports.source_object, imports.ticket_code_field)
        if problem:
            findings.append(
                _finding(
                    "ticket_code_field",
                    problem,
                    where=f"{base}.import_registrations.ticket_code_field",
                    fix="name the field (or relationship path) that holds the Hopin integration code",
                )
            )
    if (links := flows.magic_links) and links.enabled:
        obj = imports.source_object if imports else "CampaignMember"
        for key in ("link_field", "status_field"):
            name = getattr(links, key)
            if name is None:
                continue
            described = crm.object(obj)
            field: FieldSchema | None = described.field(name) if described else None
            if field is None:
                findings.append(
                    _finding(
                        "magic_links",
                        f"{obj}.{name} does not exist",
                        where=f"{base}.magic_links.{key}",
                        fix=f"create the field on {obj} in Salesforce Setup, or correct the name",
                    )
                )
            elif not field.updateable:
                findings.append(
                    _finding(
                        "magic_links",
                        f"{obj}.{name} is not updateable by the integration user",
                        where=f"{base}.magic_links.{key}",
                        fix="grant edit access to the field",
                    )
                )
    if (attendance := flows.attendance) and attendance.enabled:
        target = crm.object(attendance.target_object)
        if target is None or target.field(attendance.status_field) is None:
            findings.append(
                _finding(
                    "attendance",
                    f"{attendance.target_object}.{attendance.status_field} does not exist",
                    where=f"{base}.attendance.status_field",
                )
            )
        if attendance.fields:
            check("attendance", platform, crm, P.ATTENDANCE, attendance.target_object, "update")
        findings.extend(_campaign_status_findings(org, hooks, connections))
    return findings


def _campaign_status_findings(
    org: OrgConfig, hooks: Hooks, connections: Mapping[str, Connection]
) -> list[Finding]:
    """Campaigns carrying a ticket code must offer the attendance status labels."""
    f = org.flows.attendance
    imports = org.flows.import_registrations
    conn = connections.get(org.crm)
    if (
        f is None
        or conn is None
        or imports is None
        or f.target_object != "CampaignMember"
        or f.status_field != "Status"
        or not imports.ticket_code_field.startswith("Campaign.")
    ):
        return []
    code_field = imports.ticket_code_field.split(".", 1)[1]
    wanted = [v for v in (f.attended_value, f.no_show_value) if v]
    campaigns = {
        str(c.id): c.get("Name")
        for c in hooks.pull(
            conn,
            PullRequest(
                "Campaign", fields=("Id", "Name"), filters=(Filter(code_field, "!=", None),)
            ),
        )
    }
    if not campaigns:
        return []
    labels: dict[str, set[str]] = {cid: set() for cid in campaigns}
    for status in hooks.pull(
        conn,
        PullRequest(
            "CampaignMemberStatus",
            fields=("Id", "CampaignId", "Label"),
            filters=(Filter("CampaignId", "in", sorted(campaigns)),),
        ),
    ):
        labels.setdefault(str(status.get("CampaignId")), set()).add(str(status.get("Label")))
    return [
        _finding(
            "campaign_status",
            f"Campaign {name!r} ({cid}) has no member status {label!r}, "
            f"so attendance cannot be written",
            where=f"$.orgs.{org.name}.flows.attendance",
            fix=f"in Salesforce, open the Campaign, Advanced Setup, and add the member status {label!r}",
        )
        for cid, name in campaigns.items()
        for label in wanted
        if label not in labels.get(cid, set())
    ]


def check_org(
    config: Config,
    org_name: str,
    hooks: Hooks,
    *,
    online: bool = True,
    env: Mapping[str, str] | None = None,
) -> OrgCheck:
    """Check one organisation; never raises for a problem it can report as a finding.

    :param env: where secrets are read from (default: the process environment).
    """
    org = config.org(org_name)
    org_hooks = hooks.for_plugins(org.plugins)
    findings: list[Finding] = []
    known = {name for name, plugin in hooks.pm.list_name_plugin() if plugin is not None}
    for plugin in org.plugins:
        if plugin not in known:
            findings.append(
                _finding(
                    "plugin_missing",
                    f"plugin {plugin!r} is not installed or is blocked",
                    where=f"$.orgs.{org.name}.plugins",
                    fix=f"install the distribution that provides {plugin!r}, or remove it",
                )
            )
    if not online:
        return OrgCheck(org.name, tuple(findings))

    connections: dict[str, Connection] = {}
    for system in org.systems:
        where = f"$.orgs.{org.name}.systems.{system}"
        try:
            connections[system] = org_hooks.authenticate(org.settings(system, env))
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

    schemas: dict[str, Schema] = {}
    for system, objects in flow_objects(org).items():
        if system not in connections or not objects:
            continue
        try:
            schemas[system] = org_hooks.discover_schema(connections[system], sorted(objects))
        except EventsyncError as exc:
            findings.append(
                _finding(
                    "discovery", f"{system}: {exc}", where=f"$.orgs.{org.name}.systems.{system}"
                )
            )
    try:
        findings.extend(_mapping_findings(config, org, schemas, org_hooks, connections))
    except EventsyncError as exc:
        findings.append(_finding("mapping", str(exc)))
    try:
        findings.extend(org_hooks.preflight(org, connections))
    except EventsyncError as exc:
        findings.append(_finding("preflight", str(exc)))
    return OrgCheck(org.name, tuple(findings), connections)
