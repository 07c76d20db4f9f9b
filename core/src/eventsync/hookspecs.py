"""The hooks of eventsync: the whole contract between the engine and its plugins.

Per-system hooks are ``firstresult``: the plugin that owns the system answers and every other
plugin returns None; the engine's typed facade (``eventsync.plugins.Hooks``) raises
``NoPluginForSystem`` when nobody answers. Collecting hooks (``preflight``, ``admit_record``,
``required_fields``, ``register_transforms``, ``sandbox_systems``) call every enabled plugin.

Every hook is documented in ``docs/hooks.md`` with its exact signature; a test keeps the two
in step. Implementations may accept any subset of the arguments, as with any pluggy hook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import pluggy

if TYPE_CHECKING:
    from .config import OrgConfig
    from .models import (
        ApiUsage,
        Finding,
        HttpRequest,
        Notification,
        OAuthGrant,
        OAuthStart,
        ObjectSchema,
        PullRequest,
        PushRequest,
        PushResult,
        Record,
        RecordMapping,
        Schema,
        Subscription,
        SubscriptionReport,
        SystemProfile,
        SystemSettings,
        Verdict,
    )
    from .sandbox_env import DemoAction, DemoPerson, SandboxFlows, SandboxSystem

PROJECT = "eventsync"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

#: A transform: ``(value, args, target_field_schema_or_None) -> new value``.
TransformFn = Callable[[Any, Mapping[str, Any], Any], Any]


class Connection(Protocol):
    """What ``authenticate`` returns: a plugin's own session object for one org and system.

    Core only reads ``system`` and ``org``; everything else is the plugin's business.
    """

    system: str
    org: str


class SandboxHandle(Protocol):
    """A running local emulator of a remote system (see ``start_sandbox``)."""

    system: str
    url: str

    def settings(self, org: str) -> SystemSettings:
        """Working connection settings (with their own ``env``) for this sandbox."""

    def info(self) -> Mapping[str, Any]:
        """JSON-ready description: URLs, credentials, seeded ids."""

    def stop(self) -> None:
        """Stop serving and release the port."""


class CrmDemo(Protocol):
    """The demo's operations on a CRM sandbox (what ``demo_crm`` returns).

    ``titles`` words the steps the CRM's side shows, by key: ``link_written`` (the magic link
    is on the invitee record), ``exported`` (a registration became a person record),
    ``registered`` and ``attended`` (the invitee's status); a missing key gets a neutral title.
    """

    @property
    def titles(self) -> Mapping[str, str]:
        """Readable step titles by key."""

    def invite(self, code: str, person: DemoPerson) -> Sequence[DemoAction]:
        """The steps that create an invitee record for ``person`` carrying the ticket ``code``."""

    def invitee(self, fields: Sequence[str]) -> Mapping[str, Any] | None:
        """The invitee record's ``fields`` (None while it does not exist)."""

    def find_person(self, email: str) -> str | None:
        """A description of the person record exported for ``email``; None while there is none."""


class PlatformDemo(Protocol):
    """The demo's operations on an event-platform sandbox (what ``demo_platform`` returns).

    ``titles`` words the steps the platform's side shows, by key: ``ticket_code``,
    ``invitation``, ``register``, ``accept`` and ``attend``; a missing key gets a neutral title.
    """

    @property
    def titles(self) -> Mapping[str, str]:
        """Readable step titles by key."""

    def ticket_code(self) -> tuple[str, str]:
        """The integration code of the ticket invitations go to, and a description."""

    def invitation(self, email: str) -> str | None:
        """A description of ``email``'s invitation (magic link); None while there is none."""

    def register(self, person: DemoPerson) -> str:
        """Register ``person`` on the event directly; returns a description."""

    def accept(self, email: str) -> str:
        """``email`` accepts their invitation; returns a description."""

    def attend(self, email: str) -> str:
        """Record that ``email`` attended the event; returns a description."""


# --- declaring --------------------------------------------------------------------------


@hookspec
def system_profiles() -> Sequence[SystemProfile]:
    """Declare the systems this plugin owns: role, settings schema, capabilities, defaults.

    Core names no vendor: the settings of ``[orgs.X.systems.NAME]``, the batch limit, whether
    field names are case-sensitive and every default that names an object or field of the
    system come from here.

    :returns: one SystemProfile per system the plugin owns (empty for a concern plugin).

    Collecting hook: every plugin is called; a system declared twice is an error.
    """


@hookspec
def options_schemas() -> Mapping[str, type]:
    """Declare the options table of a plugin that owns no system (``[orgs.X.plugin_options.NAME]``).

    :returns: plugin name -> the frozen attrs class its options table is structured into
        (declared with ``eventsync.settings.setting``); empty when the plugin has no options.

    Collecting hook: every plugin is called; the mappings are merged.
    """


# --- connecting -------------------------------------------------------------------------


@hookspec(firstresult=True)
def authenticate(system: str, settings: SystemSettings) -> Connection | None:
    """Open an authenticated connection to ``system`` for one organisation.

    :param system: the system name from the config (``"salesforce"``, ``"hopin"``).
    :param settings: that org's settings for the system; secrets through ``settings.secret()``.
    :returns: a Connection, or None when this plugin does not own ``system``.
    :raises AuthenticationError: with the remote system's own error text.

    firstresult: stops at the first non-None result.
    """


@hookspec
def maintain(connection: Connection) -> None:
    """Periodic upkeep of a live connection, e.g. refresh tokens (subscriptions are renewed
    through ``subscribe``).

    The engine calls it for every live connection every ``[engine] maintenance_interval``
    seconds, whether or not pollers run; a plugin checks ``connection.system`` and does
    nothing for other systems.

    :param connection: a connection made by ``authenticate``.
    :returns: nothing.

    Collecting hook: every plugin is called.
    """


@hookspec(firstresult=True)
def subscribe(
    connection: Connection, previous: Sequence[Subscription]
) -> SubscriptionReport | None:
    """Make the system deliver notifications for a live connection, as its settings ask.

    Creates the subscriptions the settings ask for (or renews those that expire soon) and ends
    those in ``previous`` the settings no longer ask for (another URL, a subscription turned
    off). Only ``eventsync run`` (at start and every ``[engine] maintenance_interval``) and
    ``eventsync subscribe`` call it: ``authenticate``, ``eventsync check`` and pulls change
    nothing remote. The engine remembers the answer's ``active`` subscriptions in the state
    store and passes them as ``previous`` next time, in any process sharing the store.

    :param connection: a connection made by ``authenticate``.
    :param previous: the subscriptions eventsync made earlier for this org and system.
    :returns: a SubscriptionReport, or None when not this plugin's connection (or its system
        is not subscribed to by API, e.g. Salesforce Outbound Messages are set up in Salesforce).
    :raises AuthenticationError: the credentials were refused.
    :raises RemoteError: the system refused or did not answer (the caller reports it).

    firstresult: stops at the first non-None result.
    """


@hookspec(firstresult=True)
def oauth_start(
    system: str, settings: Mapping[str, Any], redirect_uri: str, state: str
) -> OAuthStart | None:
    """Begin an interactive OAuth sign-in to ``system`` (the setup console's "Connect" button).

    :param system: the system name.
    :param settings: what the admin entered so far for the system, as a config table (for
        Salesforce ``login_url``, ``client_id``); secrets are not in it.
    :param redirect_uri: the console's callback URL, registered with the system's app.
    :param state: an opaque value to send through the system and back to ``redirect_uri``
        (the caller checks it against the session: CSRF protection of the callback).
    :returns: an OAuthStart (the authorize URL and the PKCE verifier to keep), or None when
        this plugin does not own ``system`` or it has no interactive sign-in.
    :raises ConfigurationError: a setting needed to start is missing or malformed.

    firstresult: stops at the first non-None result.
    """


@hookspec(firstresult=True)
def oauth_finish(
    system: str,
    settings: Mapping[str, Any],
    redirect_uri: str,
    code: str,
    verifier: str,
    secrets: Mapping[str, str],
) -> OAuthGrant | None:
    """Finish an interactive OAuth sign-in: exchange the authorization code for tokens.

    :param system: the system name.
    :param settings: the same table as given to ``oauth_start``.
    :param redirect_uri: the same callback URL as given to ``oauth_start``.
    :param code: the authorization code the system sent to the callback.
    :param verifier: the PKCE verifier ``oauth_start`` returned.
    :param secrets: secrets the admin entered for the exchange (``client_secret`` where the
        app requires one), by setting name.
    :returns: an OAuthGrant (settings and secrets to save, and who signed in), or None when
        this plugin does not own ``system``.
    :raises AuthenticationError: the system refused the code, with its own error text.
    :raises RetryableError: the system could not be reached.

    firstresult: stops at the first non-None result.
    """


@hookspec(firstresult=True)
def api_usage(connection: Connection) -> ApiUsage | None:
    """Report the remote API usage last seen on ``connection`` (for the engine's budget).

    :param connection: a connection made by ``authenticate``.
    :returns: an ApiUsage, or None when not this plugin's connection or nothing seen yet.

    firstresult: stops at the first non-None result.
    """


# --- schema and data --------------------------------------------------------------------


@hookspec(firstresult=True)
def discover_schema(connection: Connection, objects: Sequence[str] | None) -> Schema | None:
    """Describe the objects of the connected system.

    :param connection: a connection made by ``authenticate``.
    :param objects: object names to describe in full; None for the plugin's default set.
    :returns: a Schema, or None when ``connection`` is not this plugin's.
    :raises DiscoveryError: when an object does not exist or cannot be described.

    firstresult: stops at the first non-None result.
    """


@hookspec(firstresult=True)
def pull(connection: Connection, request: PullRequest) -> Iterator[Record] | None:
    """Read records: by ids, by filters, or changed since a watermark, oldest first.

    The iterator streams page by page; it never loads every page into memory.

    :param connection: a connection made by ``authenticate``.
    :param request: what to read.
    :returns: an iterator of Record, or None when ``connection`` is not this plugin's.
    :raises RetryableError: transient remote failure.

    firstresult: stops at the first non-None result.
    """


@hookspec(firstresult=True)
def push(connection: Connection, request: PushRequest) -> list[PushResult] | None:
    """Write a batch of records; one PushResult per item, in request order.

    A bad record never fails the batch: it gets ``ok=False`` and the remote error, classified
    retryable or not.

    :param connection: a connection made by ``authenticate``.
    :param request: the batch.
    :returns: the results, or None when ``connection`` is not this plugin's.
    :raises RetryableError: the whole call failed transiently (nothing was written).

    firstresult: stops at the first non-None result.
    """


# --- mapping ----------------------------------------------------------------------------


@hookspec
def register_transforms(register: Callable[[str, TransformFn], None]) -> None:
    """Add named transforms usable in field mappings.

    :param register: call ``register(name, fn)`` for each transform; ``fn(value, args,
        target_field)`` returns the new value or raises ValueError with a readable message.
    :returns: nothing.

    Collecting hook: every plugin is called. A name registered twice is an error.
    """


@hookspec(firstresult=True)
def map_record(
    record: Record,
    mapping: RecordMapping,
    target: ObjectSchema | None,
    transforms: Mapping[str, TransformFn],
) -> dict[str, Any] | None:
    """Turn a source record into target field values through ``mapping``.

    Core's implementation runs last; a plugin may answer first or wrap it (``wrapper=True``).

    :param record: the source record.
    :param mapping: the field maps.
    :param target: the target object's schema, for lengths and picklists (None if unknown).
    :param transforms: every registered transform by name.
    :returns: target field values.
    :raises MappingError: a transform failed for this record.

    firstresult: stops at the first non-None result.
    """


@hookspec
def required_fields(flow: str, object: str, org: OrgConfig) -> Sequence[str]:
    """Name extra source fields a plugin needs pulled for ``admit_record`` and similar checks.

    :param flow: the flow name.
    :param object: the source object being pulled.
    :param org: the organisation's configuration.
    :returns: field paths (possibly empty).

    Collecting hook: every enabled plugin is called; the results are merged.
    """


# --- notifications ----------------------------------------------------------------------


@hookspec(firstresult=True)
def parse_notification(
    system: str, request: HttpRequest, settings: SystemSettings
) -> Notification | None:
    """Verify and parse an inbound webhook delivery or outbound message.

    :param system: the system the endpoint belongs to.
    :param request: the raw request; ``request.suffix`` is what followed
        ``/hooks/<org>/<system>/`` (e.g. a per-organisation secret in the URL), empty on the
        plain route.
    :param settings: the org's settings for that system (org id, signing secret ...).
    :returns: a Notification with the response to send once its intents are stored (with
        ``replay_horizon`` set, the engine remembers its ``dedupe_ids`` that long and stores a
        re-send or replay of it no more), a Notification with ``ignored`` set and no entities
        for verified input there is nothing to do with (an event type not synced, another
        account's delivery: acknowledged, nothing stored), or None when this plugin does not
        own ``system``.
    :raises BadNotification: malformed, oversized, unsigned, tampered, stale or foreign input
        (a 4xx; nothing is stored).

    firstresult: stops at the first non-None result.
    """


# --- checks and gates -------------------------------------------------------------------


@hookspec
def preflight(org: OrgConfig, connections: Mapping[str, Connection]) -> list[Finding]:
    """Check an organisation before syncing; shown by ``eventsync check``.

    :param org: the organisation's configuration.
    :param connections: authenticated connections by system name.
    :returns: findings (an empty list when all is well).

    Collecting hook: every enabled plugin is called.
    """


@hookspec
def admit_record(
    flow: str, record: Record, org: OrgConfig, connections: Mapping[str, Connection]
) -> Verdict | None:
    """Decide whether a record may be synced by ``flow``; any deny wins.

    :param flow: the flow name.
    :param record: the source record, with the fields ``required_fields`` asked for.
    :param org: the organisation's configuration.
    :param connections: the org's connections by system name, made on first access (a plugin
        may look up related records, e.g. the CRM person behind a Hopin registration).
    :returns: a Verdict, or None for no opinion.

    Collecting hook: every enabled plugin is called; a deny is recorded with its reason and
    the record is admitted again when it next changes.
    """


@hookspec
def trigger_missed(flow: str, record: Record, org: OrgConfig, waited: float) -> Finding | None:
    """A poller found a change whose real-time trigger never arrived.

    Called when a flow sets ``trigger_window`` and a record the poller found was not announced
    by a notification (e.g. a Salesforce Outbound Message) within that many seconds. The record
    itself still syncs through the poller.

    :param flow: the flow name.
    :param record: the record the poller found.
    :param org: the organisation's configuration.
    :param waited: seconds since the record changed.
    :returns: a Finding naming the likely causes (kept in the sync log and shown by
        ``eventsync status``), or None.

    Collecting hook: every enabled plugin is called.
    """


# --- flows ------------------------------------------------------------------------------


@hookspec
def register_flows(register: Callable[[Any], None]) -> None:
    """Add flows (objects following ``eventsync.flows.Flow``) to the engine.

    :param register: call ``register(flow)`` for each flow; its ``name`` must be unique.
    :returns: nothing.

    Collecting hook: every plugin is called. Core registers the four built-in flows.
    """


# --- sandboxes --------------------------------------------------------------------------


@hookspec(firstresult=True)
def start_sandbox(system: str, options: Mapping[str, Any]) -> SandboxHandle | None:
    """Start the local emulator of ``system`` (tests, demo, benchmarks).

    :param system: the system name.
    :param options: emulator options (``port``, ``state_file``, seed data ...; ``latency`` and
        ``latency_seed`` choose a latency profile, see ``eventsync.latency``).
    :returns: a running SandboxHandle, or None when this plugin does not own ``system``.

    firstresult: stops at the first non-None result.
    """


@hookspec
def sandbox_systems() -> Sequence[SandboxSystem]:
    """Declare the systems this plugin wires sandboxes of (for ``eventsync sandbox`` and ``demo``).

    A system listed here answers the other sandbox hooks below; ``eventsync sandbox --crm NAME
    --platform NAME`` chooses among them, defaulting to the only one of each role. When the
    system's ``system_profiles`` entry exists, its role and label win.

    :returns: one SandboxSystem per system (empty when the plugin wires no sandbox).

    Collecting hook: every plugin is called; a system declared twice is an error.
    """


@hookspec(firstresult=True)
def sandbox_options(
    system: str, notify_url: str | None, registrations: int
) -> Mapping[str, Any] | None:
    """The ``start_sandbox`` options that make a sandbox of ``system`` ready for the flows.

    A CRM: the custom fields the flows read and write, and triggers (outbound messages,
    webhooks) that post changes of invitee records to ``notify_url``. An event platform: its
    seed (an organisation, an event, a ticket with an integration code, ``registrations``
    registrations).

    :param system: the system name.
    :param notify_url: where the engine receives this system's notifications for the sandbox
        organisation (``<endpoint>/hooks/<org>/<system>``); None when the sandboxes run
        without triggers.
    :param registrations: how many registrations an event platform seeds (a CRM ignores it).
    :returns: the options (callers may merge more into them), or None when this plugin does
        not own ``system``.

    firstresult: stops at the first non-None result.
    """


@hookspec(firstresult=True)
def sandbox_wiring(
    system: str, handle: SandboxHandle, notify_url: str | None
) -> Mapping[str, Any] | None:
    """Connection settings that point a running sandbox of ``system`` at the engine's endpoint.

    They are added to ``handle.settings(org).options`` in ``[orgs.X.systems.NAME]``: e.g. the
    webhook URL an event platform subscribes deliveries to.

    :param system: the system name.
    :param handle: the running sandbox.
    :param notify_url: where the engine receives this system's notifications (None: no
        triggers).
    :returns: the extra settings (empty when none are needed), or None when this plugin does
        not own ``system``; no answer counts as none.

    firstresult: stops at the first non-None result.
    """


@hookspec(firstresult=True)
def sandbox_flows(system: str) -> SandboxFlows | None:
    """``system``'s part of the flow configuration of a sandbox organisation.

    Core merges the CRM's and the event platform's parts: their flow settings, and their halves
    of each field mapping paired by neutral role (``first_name``, ``email``, ``company`` ...).

    :param system: the system name.
    :returns: a SandboxFlows, or None when this plugin does not own ``system``.

    firstresult: stops at the first non-None result.
    """


@hookspec(firstresult=True)
def demo_crm(system: str, handle: SandboxHandle, connection: Connection) -> CrmDemo | None:
    """The demo's operations on the CRM sandbox of ``system`` (``eventsync demo``).

    :param system: the system name.
    :param handle: the running sandbox.
    :param connection: the demo organisation's engine connection to it.
    :returns: a CrmDemo, or None when this plugin does not own ``system``.

    firstresult: stops at the first non-None result.
    """


@hookspec(firstresult=True)
def demo_platform(
    system: str, handle: SandboxHandle, connection: Connection
) -> PlatformDemo | None:
    """The demo's operations on the event-platform sandbox of ``system`` (``eventsync demo``).

    :param system: the system name.
    :param handle: the running sandbox.
    :param connection: the demo organisation's engine connection to it.
    :returns: a PlatformDemo, or None when this plugin does not own ``system``.

    firstresult: stops at the first non-None result.
    """
