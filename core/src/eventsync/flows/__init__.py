"""The four built-in flows, registered through the ``register_flows`` hook.

They are ordinary plugins of core (``builtin_flows``), written only against the hooks with the
CRM and the event platform as roles.
"""

from __future__ import annotations

from collections.abc import Callable

from ..hookspecs import hookimpl
from .attendance import Attendance
from .base import Flow, FlowContext
from .export_registrations import ExportRegistrations
from .import_registrations import ImportRegistrations
from .magic_links import MagicLinks

__all__ = ["Flow", "FlowContext", "BUILTIN_FLOWS", "register_flows"]

BUILTIN_FLOWS: tuple[type[Flow], ...] = (
    ExportRegistrations,
    ImportRegistrations,
    MagicLinks,
    Attendance,
)


@hookimpl
def register_flows(register: Callable[[Flow], None]) -> None:
    """Register the four built-in flows."""
    for flow in BUILTIN_FLOWS:
        register(flow())
