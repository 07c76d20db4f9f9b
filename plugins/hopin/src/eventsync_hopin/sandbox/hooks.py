"""The hopin plugin's sandbox hooks (entry point ``hopin_sandbox``).

What ``eventsync sandbox``, ``eventsync init --sandbox`` and ``eventsync demo`` need of the
Hopin sandbox: a separate entry point from ``hopin`` so the plugin's own hooks and the
sandbox's wiring evolve independently. Each hook answers only for system "hopin".
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
    """Hopin is an event platform with a local sandbox."""
    return [SandboxSystem(SYSTEM, "event_platform", "Hopin")]


@hookimpl
def sandbox_options(system: str, registrations: int) -> Mapping[str, Any] | None:
    """The seeded organisation, event and coded ticket (and ``registrations``)."""
    return wiring.sandbox_options(registrations) if system == SYSTEM else None


@hookimpl
def sandbox_wiring(system: str, notify_url: str | None) -> Mapping[str, Any] | None:
    """The ``webhook_url`` the dataSubscription delivers to."""
    return wiring.connection_options(notify_url) if system == SYSTEM else None


@hookimpl
def sandbox_flows(system: str) -> SandboxFlows | None:
    """Hopin's part of the sandbox organisation's flows."""
    return wiring.FLOWS if system == SYSTEM else None


@hookimpl
def demo_platform(system: str, handle: Any, connection: Any) -> wiring.HopinDemo | None:
    """The demo's ticket, registration, magic-link and attendance operations."""
    if system != SYSTEM:
        return None
    return wiring.HopinDemo(connection, handle.info())
