"""The hubspot plugin's sandbox hooks (entry point ``hubspot_sandbox``).

What ``eventsync sandbox``, ``eventsync init --sandbox`` and ``eventsync demo`` need of the
HubSpot sandbox, in an entry point of its own (as the other plugins have), so the plugin's hooks
and the sandbox's wiring evolve independently. Each hook answers only for system "hubspot".
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
    """HubSpot is a CRM with a local sandbox."""
    return [SandboxSystem(SYSTEM, "crm", "HubSpot")]


@hookimpl
def sandbox_options(system: str, notify_url: str | None) -> Mapping[str, Any] | None:
    """The custom contact properties and the webhook target URL."""
    return wiring.sandbox_options(notify_url) if system == SYSTEM else None


@hookimpl
def sandbox_wiring(system: str, notify_url: str | None) -> Mapping[str, Any] | None:
    """The ``webhook_url`` deliveries are signed for."""
    return wiring.connection_options(notify_url) if system == SYSTEM else None


@hookimpl
def sandbox_flows(system: str) -> SandboxFlows | None:
    """HubSpot's part of the sandbox organisation's flows."""
    return wiring.FLOWS if system == SYSTEM else None


@hookimpl
def demo_crm(system: str, connection: Any) -> wiring.HubSpotDemo | None:
    """The demo's contact operations."""
    if system != SYSTEM:
        return None
    return wiring.HubSpotDemo(connection)
