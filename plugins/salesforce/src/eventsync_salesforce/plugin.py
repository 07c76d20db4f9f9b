"""The salesforce plugin's hook implementations."""

from eventsync import hookimpl  # noqa: F401
