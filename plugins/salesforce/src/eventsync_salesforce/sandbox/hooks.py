"""The salesforce plugin's sandbox hooks (entry point ``salesforce_sandbox``).

What ``eventsync sandbox``, ``eventsync init --sandbox`` and ``eventsync demo`` need of the
Salesforce sandbox: a separate entry point from ``salesforce`` so the plugin's own hooks and
the sandbox's wiring evolve independently. Each hook answers only for system "salesforce".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eventsync import hookimpl
from eventsync.sandbox_env import SandboxFlows, SandboxSystem

from . import wiring
from .wiring import SYSTEM


@hookimpl
def sandbox_systems() -> list[SandboxSystem]:
    """Salesforce is a CRM with a local sandbox, the one run when several CRMs offer one and
    none is named (eventsync's first CRM: ``make demo`` and the README use it)."""
    return [SandboxSystem(SYSTEM, "crm", "Salesforce", default=True)]


@hookimpl
def sandbox_options(system: str, notify_url: str | None) -> Mapping[str, Any] | None:
    """The guide's custom fields and, with ``notify_url``, the Outbound Message rule posting
    to it with a generated token (which the sandbox's settings then carry)."""
    if system != SYSTEM:
        return None
    return wiring.sandbox_options(notify_url)


@hookimpl
def sandbox_flows(system: str) -> SandboxFlows | None:
    """Salesforce's part of the sandbox organisation's flows."""
    return wiring.FLOWS if system == SYSTEM else None


@hookimpl
def demo_crm(system: str, connection: Any) -> wiring.SalesforceDemo | None:
    """The demo's Campaign, CampaignMember and Lead operations."""
    if system != SYSTEM:
        return None
    return wiring.SalesforceDemo(connection)
