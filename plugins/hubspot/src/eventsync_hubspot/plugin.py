"""The hubspot plugin's hook implementations: the CRM contract of docs/crm-contract.md.

Every per-system hook first checks that the system (or the connection) is ours and returns
None otherwise. The work is done in small modules: ``client`` (connection, errors, rate
limits), ``oauth`` (tokens), ``schema``, ``pull``, ``push`` and ``webhooks``; the sandbox and
its wiring live in ``sandbox`` (the ``[sandbox]`` extra).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from eventsync import hookimpl
from eventsync.errors import EventsyncError
from eventsync.models import (
    ApiUsage,
    HttpRequest,
    Notification,
    PullRequest,
    PushRequest,
    PushResult,
    Record,
    Schema,
    SystemProfile,
    SystemSettings,
)

from . import client, schema, webhooks
from . import pull as pull_mod
from . import push as push_mod
from .settings import MAX_BATCH, SYSTEM, HubSpotSettings

#: The modules only the sandbox needs (the ``[sandbox]`` extra).
SANDBOX_MODULES = frozenset({"werkzeug"})


class SandboxNotInstalled(EventsyncError):
    """The HubSpot sandbox was asked for, but its extra is not installed."""


def _ours(connection: Any) -> bool:
    return isinstance(connection, client.HubSpotConnection)


@hookimpl
def system_profiles() -> list[SystemProfile]:
    """HubSpot is a CRM with lower-case, case-sensitive property names and batches of 100.

    The flows' defaults: registrations become contacts matched on email; contacts carrying a
    ticket code (``hopin_ticket_code``) are invitations; the link, its status and attendance
    are contact properties.
    """
    return [
        SystemProfile(
            system=SYSTEM,
            role="crm",
            label="HubSpot",
            settings=HubSpotSettings,
            max_batch=MAX_BATCH,
            case_sensitive_fields=True,
            person_fields={"first_name": "firstname", "last_name": "lastname", "email": "email"},
            flow_defaults={
                "export_registrations": {"target_object": "contacts", "match_key": "email"},
                "import_registrations": {
                    "source_object": "contacts",
                    "ticket_code_field": "hopin_ticket_code",
                },
                "magic_links": {
                    "link_field": "hopin_magic_link",
                    "status_field": "hopin_link_status",
                },
                "attendance": {
                    "target_object": "contacts",
                    "status_field": "hopin_attendance_status",
                },
            },
        )
    ]


@hookimpl
def authenticate(system: str, settings: SystemSettings) -> client.HubSpotConnection | None:
    """Open a session with the private app's token or OAuth, and check the portal."""
    if system != SYSTEM:
        return None
    return client.connect(settings)


@hookimpl
def api_usage(connection: Any) -> ApiUsage | None:
    """The daily API usage from the last answer's ``X-HubSpot-RateLimit-Daily*`` headers
    (None with OAuth, whose answers carry no daily limit)."""
    if not _ours(connection):
        return None
    with connection.lock:
        return connection.rate.daily


@hookimpl
def discover_schema(connection: Any, objects: Sequence[str] | None) -> Schema | None:
    """Describe the objects from the properties API."""
    if not _ours(connection):
        return None
    return schema.discover(connection, objects)


@hookimpl
def pull(connection: Any, request: PullRequest) -> Iterator[Record] | None:
    """Stream records page by page."""
    if not _ours(connection):
        return None
    return pull_mod.pull(connection, request)


@hookimpl
def push(connection: Any, request: PushRequest) -> list[PushResult] | None:
    """Write a batch; one result per item, in request order."""
    if not _ours(connection):
        return None
    return push_mod.push(connection, request)


@hookimpl
def parse_notification(
    system: str, request: HttpRequest, settings: SystemSettings
) -> Notification | None:
    """Verify and parse a webhooks v3 delivery."""
    if system != SYSTEM:
        return None
    return webhooks.parse(request, settings)


@hookimpl
def start_sandbox(system: str, options: Mapping[str, Any]) -> Any:
    """Start the local HubSpot sandbox, imported only now: its dependencies are an extra.

    :raises SandboxNotInstalled: the ``[sandbox]`` extra is missing; the message says how to
        install it.
    """
    if system != SYSTEM:
        return None
    try:
        from .sandbox.server import HubSpotSandbox
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in SANDBOX_MODULES:
            raise
        raise SandboxNotInstalled(
            f"the HubSpot sandbox needs {missing!r}, which a production install leaves out; "
            f"install the extra with: pip install 'eventsync-hubspot[sandbox]'"
        ) from None
    return HubSpotSandbox(options)
