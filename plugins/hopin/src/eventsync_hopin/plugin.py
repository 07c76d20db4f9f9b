"""The hopin plugin's hook implementations (system ``"hopin"``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from eventsync import hookimpl
from eventsync.errors import EventsyncError
from eventsync.models import (
    Finding,
    HttpRequest,
    Notification,
    PullRequest,
    PushRequest,
    PushResult,
    Record,
    Schema,
    Subscription,
    SubscriptionReport,
    SystemProfile,
    SystemSettings,
)

from .auth import HopinConnection, connect
from .options import PROFILE
from .pull import pull_records
from .push import push_records
from .schema import discover
from .subscriptions import subscribe as subscribe_events
from .webhooks import parse

SYSTEM = "hopin"


@hookimpl
def system_profiles() -> list[SystemProfile]:
    """Hopin: an event platform, its settings and its person fields."""
    return [PROFILE]


@hookimpl
def authenticate(system: str, settings: SystemSettings) -> HopinConnection | None:
    """Connect and verify (health, organisation, event); changes nothing in Hopin."""
    if system != SYSTEM:
        return None
    return connect(settings)


@hookimpl
def subscribe(connection: Any, previous: Sequence[Subscription]) -> SubscriptionReport | None:
    """Create or renew the dataSubscription to ``webhook_url``; end stale ones eventsync made."""
    if not isinstance(connection, HopinConnection):
        return None
    return subscribe_events(connection, previous)


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
def parse_notification(
    system: str, request: HttpRequest, settings: SystemSettings
) -> Notification | None:
    """Verify and parse a dataSubscription delivery."""
    if system != SYSTEM:
        return None
    return parse(request, settings)


@hookimpl
def preflight(org: Any, connections: Mapping[str, Any]) -> list[Finding]:
    """Warn when the Hopin dataSubscription could not be created or renewed."""
    connection = connections.get(SYSTEM)
    if not isinstance(connection, HopinConnection) or not connection.subscription_error:
        return []
    return [
        Finding(
            severity="warning",
            code="HOPIN_SUBSCRIPTION",
            source="hopin",
            message=f"the dataSubscription to {connection.options.webhook_url} failed: {connection.subscription_error}",
            where=f"$.orgs.{connection.org}.systems.hopin.webhook_url",
            fix="check webhook_url (Hopin must reach it); until then pollers carry the changes",
        )
    ]


#: Top-level modules of the ``[sandbox]`` extra, which a production install leaves out.
SANDBOX_MODULES = frozenset({"flask", "werkzeug"})


class SandboxNotInstalled(EventsyncError):
    """The sandbox's dependencies (the ``[sandbox]`` extra) are not installed."""


@hookimpl
def start_sandbox(system: str, options: Mapping[str, Any]) -> Any:
    """Start the Hopin sandbox on 127.0.0.1, imported only now: its dependencies are an extra.

    :raises SandboxNotInstalled: the ``[sandbox]`` extra is missing; the message says how to
        install it.
    """
    if system != SYSTEM:
        return None
    try:
        from .sandbox import start
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in SANDBOX_MODULES:
            raise
        raise SandboxNotInstalled(
            f"the Hopin sandbox needs {missing!r}, which a production install leaves out; "
            f"install the extra with: pip install 'eventsync-hopin[sandbox]'"
        ) from None

    return start(options)
