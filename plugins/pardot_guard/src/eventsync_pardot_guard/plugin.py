"""The pardot_guard plugin's hook implementations."""

from eventsync import hookimpl  # noqa: F401
