"""ExampleCRM's hook implementations: the whole CRM contract of docs/crm-contract.md.

Every per-system hook first checks that the system (or the connection) is ours and returns
None otherwise, so the plugin that owns it can answer. The work is done in small modules:
``client`` (connection, errors, API usage), ``schema``, ``pull``, ``push``, ``webhooks`` and
``sandbox`` (the local emulator the tests and the demo use).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from eventsync import hookimpl
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
from .settings import MAX_BATCH, SYSTEM, ExampleCrmSettings


def _ours(connection: Any) -> bool:
    return isinstance(connection, client.ExampleConnection)


@hookimpl
def system_profiles() -> list[SystemProfile]:
    """ExampleCRM is a CRM with lower-case, case-sensitive property names."""
    return [
        SystemProfile(
            system=SYSTEM,
            role="crm",
            label="ExampleCRM",
            settings=ExampleCrmSettings,
            max_batch=MAX_BATCH,
            case_sensitive_fields=True,
            person_fields={"first_name": "firstname", "last_name": "lastname", "email": "email"},
            flow_defaults={
                "export_registrations": {"target_object": "contact", "match_key": "email"},
                "import_registrations": {
                    "source_object": "invitation",
                    "ticket_code_field": "ticket_code",
                },
                "magic_links": {"link_field": "magic_link", "status_field": "link_status"},
                "attendance": {"target_object": "invitation", "status_field": "attendance_status"},
            },
        )
    ]


@hookimpl
def authenticate(system: str, settings: SystemSettings) -> client.ExampleConnection | None:
    """Open a session with the API key named by ``api_key_env`` and verify it."""
    if system != SYSTEM:
        return None
    return client.connect(settings)


@hookimpl
def api_usage(connection: Any) -> ApiUsage | None:
    """The daily API usage from the rate-limit headers of the last answer."""
    if not _ours(connection):
        return None
    return connection.usage


@hookimpl
def discover_schema(connection: Any, objects: Sequence[str] | None) -> Schema | None:
    """Describe the objects (default: all of them)."""
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
    """Verify and parse a signed webhook delivery."""
    if system != SYSTEM:
        return None
    return webhooks.parse(request, settings)


@hookimpl
def start_sandbox(system: str, options: Mapping[str, Any]) -> Any:
    """Start the in-memory ExampleCRM sandbox on 127.0.0.1."""
    if system != SYSTEM:
        return None
    from .sandbox import ExampleSandbox

    return ExampleSandbox(options)
