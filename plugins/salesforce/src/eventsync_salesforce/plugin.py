"""The salesforce plugin's hook implementations (entry point ``salesforce``).

Each hook answers only for system "salesforce" (or a SalesforceConnection) and returns None
otherwise, as firstresult hooks require.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from eventsync import hookimpl
from eventsync.errors import EventsyncError
from eventsync.models import (
    ApiUsage,
    Finding,
    HttpRequest,
    Notification,
    OAuthGrant,
    OAuthStart,
    PullRequest,
    PushRequest,
    PushResult,
    Record,
    Schema,
    SystemProfile,
    SystemSettings,
)

from . import outbound, signin
from . import preflight as preflight_mod
from . import pull as pull_mod
from . import push as push_mod
from . import schema as schema_mod
from .connection import SalesforceConnection
from .settings import PROFILE, SYSTEM


def _ours(connection: Any) -> bool:
    return isinstance(connection, SalesforceConnection)


@hookimpl
def system_profiles() -> list[SystemProfile]:
    """Salesforce: a CRM, its settings, the Collections limit and the guide's defaults."""
    return [PROFILE]


@hookimpl
def preflight(org: Any, connections: Mapping[str, Any]) -> list[Finding]:
    """Campaigns carrying a ticket code offer the attendance status labels; Outbound
    Messages are authenticated by a token."""
    return [
        *preflight_mod.outbound_token_findings(org),
        *preflight_mod.campaign_status_findings(org, connections),
    ]


@hookimpl
def authenticate(system: str, settings: SystemSettings) -> SalesforceConnection | None:
    """Open a SalesforceConnection with the configured OAuth grant."""
    if system != SYSTEM:
        return None
    return SalesforceConnection(settings)


@hookimpl
def oauth_start(
    system: str, settings: Mapping[str, Any], redirect_uri: str, state: str
) -> OAuthStart | None:
    """The authorize URL of the web server flow with PKCE (scopes ``api refresh_token``)
    on the configured login URL, and its verifier."""
    if system != SYSTEM:
        return None
    return signin.start(settings, redirect_uri, state)


@hookimpl
def oauth_finish(
    system: str,
    settings: Mapping[str, Any],
    redirect_uri: str,
    code: str,
    verifier: str,
    secrets: Mapping[str, str],
) -> OAuthGrant | None:
    """Exchange the code: the ``refresh_token`` grant's settings, the refresh token (and
    the consumer secret when given) as secrets, and "USERNAME on ORGID"."""
    if system != SYSTEM:
        return None
    return signin.finish(settings, redirect_uri, code, verifier, secrets)


@hookimpl
def api_usage(connection: Any) -> ApiUsage | None:
    """The last ``Sforce-Limit-Info`` seen on the connection."""
    if not _ours(connection):
        return None
    return connection.usage


@hookimpl
def discover_schema(connection: Any, objects: Sequence[str] | None) -> Schema | None:
    """Describe ``objects`` (default: the event-sync standard objects)."""
    if not _ours(connection):
        return None
    return schema_mod.discover(connection, objects)


@hookimpl
def pull(connection: Any, request: PullRequest) -> Iterator[Record] | None:
    """Stream records through SOQL."""
    if not _ours(connection):
        return None
    return pull_mod.pull(connection, request)


@hookimpl
def push(connection: Any, request: PushRequest) -> list[PushResult] | None:
    """Write records through sObject Collections (or Bulk 2.0 for large batches)."""
    if not _ours(connection):
        return None
    return push_mod.push(connection, request)


@hookimpl
def parse_notification(
    system: str, request: HttpRequest, settings: SystemSettings
) -> Notification | None:
    """Parse a Salesforce Outbound Message."""
    if system != SYSTEM:
        return None
    return outbound.parse(request, settings)


#: Top-level modules of the ``[sandbox]`` extra, which a production install leaves out.
SANDBOX_MODULES = frozenset({"trustme", "lark", "flask", "werkzeug", "cheroot"})


class SandboxNotInstalled(EventsyncError):
    """The sandbox's dependencies (the ``[sandbox]`` extra) are not installed."""


@hookimpl
def start_sandbox(system: str, options: Mapping[str, Any]) -> Any:
    """Start the local Salesforce sandbox, imported only now: its dependencies are an extra.

    :raises SandboxNotInstalled: the ``[sandbox]`` extra is missing; the message says how to
        install it.
    """
    if system != SYSTEM:
        return None
    try:
        from .sandbox.server import start
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing not in SANDBOX_MODULES:
            raise
        raise SandboxNotInstalled(
            f"the Salesforce sandbox needs {missing!r}, which a production install leaves out; "
            f"install the extra with: pip install 'eventsync-salesforce[sandbox]'"
        ) from None

    return start(options)
