"""Preflight: the automation users and the gate's fields, checked in the org before syncing.

For every configured automation user: it exists, it is active, and some permission set
assigned to it (the profile's own permission set included, since every profile owns one and
its assignment shows in PermissionSetAssignment, Salesforce's documentation) grants each
configured permission. Two queries for all users together: one on User, one on
PermissionSetAssignment with the permission fields of the assigned PermissionSet.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from eventsync.config import OrgConfig
from eventsync.errors import EventsyncError
from eventsync.models import Finding, Severity

from . import crm
from .options import PLUGIN, GuardOptions, options_path, permission_label

__all__ = ["run_preflight", "finding"]

USERS_SETUP = "Setup > Users > Users"
PERMISSIONS_SETUP = (
    "Setup > Users > Permission Sets > (a set assigned to the user) > System Permissions, "
    "or Setup > Users > Profiles > (the user's profile) > System Permissions"
)


def finding(
    severity: Severity, code: str, message: str, *, where: str = "", fix: str = ""
) -> Finding:
    """A Finding from this plugin."""
    return Finding(
        severity=severity,
        code=f"{PLUGIN}.{code}",
        message=message,
        source=PLUGIN,
        where=where,
        fix=fix,
    )


def _permission_fields(
    conn: crm.SalesforceConnection, wanted: Sequence[str], org: OrgConfig
) -> tuple[list[str], list[Finding]]:
    """The wanted permissions that exist on PermissionSet, and a finding for each that does not."""
    known: list[str] = []
    findings: list[Finding] = []
    for name in wanted:
        exists = crm.has_field(conn, "PermissionSet", name)
        if exists is False:
            hint = ""
            if "outbound" in name.lower():
                hint = (
                    " Salesforce has no 'Send Outbound Messages' permission: an outbound message is "
                    "sent as its 'User to Send As', and only that user's visibility matters."
                )
            findings.append(
                finding(
                    "error",
                    "unknown_permission",
                    f"PermissionSet has no field {name}, so it is not a Salesforce permission this org knows.{hint}",
                    where=options_path(org, "permissions"),
                    fix="use a permission field that exists (e.g. PermissionsApiEnabled for 'API Enabled', "
                    "PermissionsEmailSingle for 'Send Email'), or remove it",
                )
            )
        else:
            known.append(name)
    return known, findings


def _user_findings(
    options: GuardOptions,
    org: OrgConfig,
    users: Mapping[str, dict[str, Any]],
    grants: Mapping[str, list[dict[str, Any]]],
    known: set[str],
) -> list[Finding]:
    findings: list[Finding] = []
    for index, user in enumerate(options.automation_users):
        label = f"{user.role} {user.username}"
        record = users.get(user.username.lower())
        if record is None:
            findings.append(
                finding(
                    "error",
                    "user_missing",
                    f"{label} does not exist in Salesforce (no User with this username)",
                    where=USERS_SETUP,
                    fix=f"correct {options_path(org, f'automation_users[{index}].username')} "
                    f"or create the user in {USERS_SETUP}",
                )
            )
            continue
        if not record.get("IsActive"):
            findings.append(
                finding(
                    "error",
                    "user_inactive",
                    f"{label} is inactive: automation that runs as this user (outbound messages, "
                    f"Account Engagement sync, LeanData routing) stops without an error",
                    where=f"{USERS_SETUP} > {user.username}",
                    fix="edit the user and tick Active (or configure the user that replaced it)",
                )
            )
        assigned = grants.get(record["Id"], [])
        sets = sorted({_set_name(a) for a in assigned})
        for perm in options.permissions_for(user):
            if perm not in known:
                continue  # reported once as unknown_permission
            if any((a.get("PermissionSet") or {}).get(perm) for a in assigned):
                continue
            findings.append(
                finding(
                    "error",
                    "permission_missing",
                    f"{label} lacks {permission_label(perm)}: none of its profile or permission sets "
                    f"({', '.join(sets) or 'none assigned'}) grants it, so automation that needs it "
                    f"silently never fires",
                    where=PERMISSIONS_SETUP,
                    fix=f"grant {permission_label(perm)} in a permission set and assign it to {user.username} "
                    f"({USERS_SETUP} > {user.username} > Permission Set Assignments), or enable it on the "
                    f"user's profile",
                )
            )
    return findings


def _set_name(assignment: Mapping[str, Any]) -> str:
    pset = assignment.get("PermissionSet") or {}
    if pset.get("IsOwnedByProfile"):
        return f"profile {pset.get('Label') or pset.get('Name')}"
    return str(pset.get("Label") or pset.get("Name") or assignment.get("PermissionSetId"))


def _field_findings(
    conn: crm.SalesforceConnection, options: GuardOptions, org: OrgConfig
) -> list[Finding]:
    findings: list[Finding] = []
    checks = []
    if options.check_opt_out:
        checks.append(("opt_out_field", options.opt_out_field))
    if options.confirmed_opt_in and options.consent_field:
        checks.append(("consent_field", options.consent_field))
    for key, field in checks:
        for obj in options.lookup_objects:
            if crm.has_field(conn, obj, field) is False:
                findings.append(
                    finding(
                        "error",
                        "field_missing",
                        f"{obj}.{field} does not exist or is hidden from the integration user; the gate "
                        f"would deny every {obj} as unconfirmed or miss opt-outs",
                        where=f"Setup > Object Manager > {obj} > Fields & Relationships",
                        fix=f"create the field (or grant the integration user read access to it), or correct "
                        f"{options_path(org, key)}",
                    )
                )
    return findings


def run_preflight(
    options: GuardOptions, org: OrgConfig, conn: crm.SalesforceConnection | None
) -> list[Finding]:
    """Every finding for one org (an empty list when all is well)."""
    if conn is None:
        if options.automation_users:
            return [
                finding(
                    "warning",
                    "no_salesforce",
                    f"cannot check the automation users: the org's CRM ({org.crm!r}) has no "
                    f"Salesforce connection",
                    where=f"$.orgs.{org.name}.systems.{org.crm}",
                    fix="configure and authenticate the Salesforce system first",
                )
            ]
        return []
    findings = _field_findings(conn, options, org)
    if not options.automation_users:
        findings.append(
            finding(
                "info",
                "no_automation_users",
                "no automation users are configured, so none were checked",
                where=options_path(org, "automation_users"),
                fix="list the Account Engagement connector user, LeanData and the outbound message's "
                "user to send as",
            )
        )
        return findings
    wanted = list(
        dict.fromkeys(p for u in options.automation_users for p in options.permissions_for(u))
    )
    known, unknown = _permission_fields(conn, wanted, org)
    findings.extend(unknown)
    usernames = sorted({u.username for u in options.automation_users})
    try:
        users = {
            str(r["Username"]).lower(): r
            for r in crm.rows(
                conn,
                ("Id", "Username", "IsActive"),
                "User",
                f"Username IN {crm.in_list(usernames)}",
            )
        }
        grants: dict[str, list[dict[str, Any]]] = {}
        if users:
            ids = sorted(r["Id"] for r in users.values())
            fields = [
                "AssigneeId",
                "PermissionSetId",
                "PermissionSet.Name",
                "PermissionSet.Label",
                "PermissionSet.IsOwnedByProfile",
                *(f"PermissionSet.{p}" for p in known),
            ]
            for row in crm.rows(
                conn, fields, "PermissionSetAssignment", f"AssigneeId IN {crm.in_list(ids)}"
            ):
                grants.setdefault(row["AssigneeId"], []).append(row)
    except EventsyncError as exc:
        findings.append(
            finding(
                "error",
                "cannot_read_permissions",
                f"cannot read users or permission set assignments: {exc}",
                where="Setup > Users > Permission Sets (the integration user's own permissions)",
                fix="give the integration user 'View Setup and Configuration' (querying "
                "PermissionSetAssignment needs it, or Assign Permission Sets, or Manage Users)",
            )
        )
        return findings
    findings.extend(_user_findings(options, org, users, grants, set(known)))
    if not any(f.severity == "error" for f in findings):
        checked = ", ".join(permission_label(p) for p in known)
        findings.append(
            finding(
                "info",
                "automation_users_ok",
                f"{len(options.automation_users)} automation user(s) are active and hold {checked or 'no permissions'}",
            )
        )
    return findings
