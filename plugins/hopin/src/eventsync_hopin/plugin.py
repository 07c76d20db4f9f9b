"""The hopin plugin's hook implementations (system ``"hopin"``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from eventsync import hookimpl
from eventsync.models import (
    HttpRequest,
    Notification,
    PullRequest,
    PushRequest,
    PushResult,
    Record,
    Schema,
    SystemSettings,
)

from .auth import HopinConnection, connect
from .pull import pull_records
from .push import push_records
from .schema import discover
from .subscriptions import renew_if_due
from .webhooks import parse

SYSTEM = "hopin"


@hookimpl
def authenticate(system: str, settings: SystemSettings) -> HopinConnection | None:
    """Connect and verify (health, organisation, event); ensure the dataSubscription if configured."""
    if system != SYSTEM:
        return None
    connection = connect(settings)
    renew_if_due(connection)
    return connection


@hookimpl
def discover_schema(connection: Any, objects: Sequence[str] | None) -> Schema | None:
    """The hopin objects (registration questions included)."""
    if not isinstance(connection, HopinConnection):
        return None
    return discover(connection, objects)


@hookimpl
def pull(connection: Any, request: PullRequest) -> Iterator[Record] | None:
    """Stream records page by page."""
    if not isinstance(connection, HopinConnection):
        return None
    return pull_records(connection, request)


@hookimpl
def push(connection: Any, request: PushRequest) -> list[PushResult] | None:
    """Write a batch (magic links, registration metadata)."""
    if not isinstance(connection, HopinConnection):
        return None
    return push_records(connection, request)


@hookimpl
def parse_notification(system: str, request: HttpRequest, settings: SystemSettings) -> Notification | None:
    """Verify and parse a dataSubscription delivery."""
    if system != SYSTEM:
        return None
    return parse(request, settings)


@hookimpl
def start_sandbox(system: str, options: Mapping[str, Any]) -> Any:
    """Start the Hopin sandbox on 127.0.0.1."""
    if system != SYSTEM:
        return None
    from .sandbox import start

    return start(options)
