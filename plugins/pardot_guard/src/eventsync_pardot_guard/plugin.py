"""The pardot_guard plugin's hook implementations.

A concern plugin: it owns no system, so it implements none of the per-system hooks. It checks
an organisation before syncing (``preflight``), gates records at run time (``admit_record`` with
``required_fields``) and explains missed real-time triggers (``trigger_missed``). Enable it per
organisation with ``plugins = [..., "pardot_guard"]``; options live in
``[orgs.NAME.plugin_options.pardot_guard]`` (docs/pardot_guard.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from eventsync import hookimpl
from eventsync.config import OrgConfig
from eventsync.errors import ConfigurationError
from eventsync.hookspecs import Connection
from eventsync.models import Finding, Record, Verdict

from . import crm, gate
from .options import PLUGIN, GuardOptions, parse_options
from .preflight import finding, run_preflight
from .triggers import missed_trigger_finding

__all__ = ["options_schemas", "preflight", "admit_record", "required_fields", "trigger_missed"]


@hookimpl
def options_schemas() -> dict[str, type]:
    """The ``[orgs.NAME.plugin_options.pardot_guard]`` table's schema, checked offline."""
    return {PLUGIN: GuardOptions}


@hookimpl
def preflight(org: OrgConfig, connections: Mapping[str, Connection]) -> list[Finding]:
    """Check the automation users and the gate's fields; bad options are error findings."""
    try:
        options = parse_options(org)
    except ConfigurationError as exc:
        return [
            finding(
                "error",
                "options",
                problem,
                where=problem.split(":", 1)[0],
                fix="correct the option in the config file (docs/pardot_guard.md)",
            )
            for problem in exc.problems
        ]
    return run_preflight(options, org, crm.salesforce_connection(org, connections))


@hookimpl
def admit_record(
    flow: str, record: Record, org: OrgConfig, connections: Mapping[str, Connection]
) -> Verdict | None:
    """Deny people who opted out or, with Confirmed Opt-In, have not confirmed.

    Invalid options deny (fail closed) with the problems as the reason, so nothing is synced to
    people the organisation meant to protect.
    """
    try:
        options = parse_options(org)
    except ConfigurationError as exc:
        return Verdict(False, f"invalid options: {'; '.join(exc.problems)}", PLUGIN)
    return gate.admit(options, flow, record, org, connections)


@hookimpl
def required_fields(flow: str, object: str, org: OrgConfig) -> Sequence[str]:  # noqa: A002 - hook argument name
    """The opt-out and consent fields (and person ids) the gate reads on ``object``."""
    try:
        options = parse_options(org)
    except ConfigurationError:
        return []  # admit_record denies with the problems
    return gate.required_fields(options, flow, object)


@hookimpl
def trigger_missed(flow: str, record: Record, org: OrgConfig, waited: float) -> Finding | None:
    """Name the likely causes of a CRM change no Outbound Message announced."""
    try:
        options = parse_options(org)
    except ConfigurationError:
        return None
    return missed_trigger_finding(options, flow, record, org, waited)
