"""The records that travel through hooks: frozen attrs classes, system-neutral.

Plugins convert their wire formats into these with their own private cattrs converters; core
never touches the global converter. Field values inside a ``Record`` are plain Python values
(str, int, float, bool, None, ``datetime``/``date`` or nested mappings for relationship paths
such as ``Campaign.Hopin_Ticket_Code__c``).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import typing
from collections.abc import Mapping, MutableMapping
from typing import Any, Literal

import attrs

from .errors import ConfigurationError

_log = logging.getLogger(__name__)

__all__ = [
    "ExclusiveLocks",
    "Record",
    "FieldSchema",
    "ObjectSchema",
    "Schema",
    "Transform",
    "FieldMap",
    "RecordMapping",
    "UpdatePolicy",
    "UPDATE_POLICIES",
    "Filter",
    "Watermark",
    "PullRequest",
    "PushItem",
    "PushRequest",
    "RemoteFailure",
    "PushResult",
    "HttpRequest",
    "HttpResponse",
    "EntityRef",
    "Notification",
    "NotificationResult",
    "NOTIFICATION_RESULTS",
    "Reception",
    "Finding",
    "Verdict",
    "SystemSettings",
    "OAuthStart",
    "OAuthGrant",
    "ApiUsage",
    "Subscription",
    "SubscriptionReport",
    "SystemProfile",
    "PERSON_ROLES",
    "FIELD_TYPES",
    "get_path",
]

#: Field types of the core schema. Plugins map their native types onto these.
FIELD_TYPES = frozenset(
    {
        "id",
        "string",
        "textarea",
        "email",
        "phone",
        "url",
        "picklist",
        "multipicklist",
        "boolean",
        "int",
        "double",
        "currency",
        "percent",
        "date",
        "datetime",
        "time",
        "reference",
        "json",
        "any",
    }
)

Operation = Literal["insert", "update", "upsert", "delete"]
Severity = Literal["error", "warning", "info"]


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return dict(value or {})


def get_path(fields: Mapping[str, Any], path: str) -> Any:
    """Read a dotted path (``Campaign.Hopin_Ticket_Code__c``) from nested field mappings.

    Returns None when any step is missing or None, as Salesforce does for an empty lookup.
    """
    value: Any = fields
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
        if value is None:
            return None
    return value


@attrs.frozen
class Record:
    """One record of a remote system.

    :ivar system: the system name (``"salesforce"``, ``"hopin"``).
    :ivar object: the object type (``"Lead"``, ``"registration"``).
    :ivar id: the remote id, None for a record not created yet.
    :ivar fields: field values; relationship paths are nested mappings.
    :ivar modified_at: the remote modification timestamp used for watermarks.
    :ivar deleted: True for a record that was deleted remotely.
    """

    system: str
    object: str
    id: str | None
    fields: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    modified_at: dt.datetime | None = None
    deleted: bool = False

    def get(self, path: str) -> Any:
        """The value at a dotted field path, or None; ``id``/``Id`` fall back to the record id."""
        value = get_path(self.fields, path)
        if value is None and path in ("id", "Id"):
            return self.id
        return value


@attrs.frozen
class FieldSchema:
    """One field of an object, as discovered from the remote system."""

    name: str
    type: str
    label: str = ""
    length: int | None = None
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    defaulted_on_create: bool = False
    external_id: bool = False
    id_lookup: bool = False
    unique: bool = False
    picklist_values: tuple[str, ...] = ()
    restricted_picklist: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None

    @property
    def required_on_create(self) -> bool:
        """True when an insert must give this field a value (Salesforce's rule)."""
        return (
            not self.nillable
            and self.createable
            and not self.defaulted_on_create
            and self.type != "boolean"
        )


@attrs.frozen
class ObjectSchema:
    """One object type and its fields."""

    name: str
    fields: tuple[FieldSchema, ...]
    label: str = ""
    createable: bool = True
    updateable: bool = True
    queryable: bool = True
    deletable: bool = True
    #: True when the system compares field names exactly (``SystemProfile.case_sensitive_fields``).
    case_sensitive: bool = False

    def field(self, name: str) -> FieldSchema | None:
        """The field called ``name``, or None; compared exactly when the system's field names
        are case-sensitive, else ignoring case."""
        if self.case_sensitive:
            return next((f for f in self.fields if f.name == name), None)
        return self.field_ignoring_case(name)

    def field_ignoring_case(self, name: str) -> FieldSchema | None:
        """The field whose name equals ``name`` ignoring case (for "did you mean" hints)."""
        wanted = name.lower()
        for candidate in self.fields:
            if candidate.name.lower() == wanted:
                return candidate
        return None

    def relationship(self, name: str) -> FieldSchema | None:
        """The reference field whose relationship name is ``name`` (``Campaign``), or None."""
        wanted = name.lower()
        for candidate in self.fields:
            if candidate.relationship_name and candidate.relationship_name.lower() == wanted:
                return candidate
        return None


@attrs.frozen
class Schema:
    """The discovered schema of one system for one organisation."""

    system: str
    objects: Mapping[str, ObjectSchema] = attrs.field(factory=dict, converter=_frozen_mapping)

    def object(self, name: str) -> ObjectSchema | None:
        """The object called ``name`` (case-insensitive), or None."""
        found = self.objects.get(name)
        if found is not None:
            return found
        wanted = name.lower()
        for key, value in self.objects.items():
            if key.lower() == wanted:
                return value
        return None


@attrs.frozen
class Transform:
    """A named transform with its arguments, e.g. ``Transform("truncate", {"length": 80})``."""

    name: str
    args: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)


@attrs.frozen
class FieldMap:
    """How one target field gets its value: exactly one of source, constant or template.

    :ivar target: the target field name.
    :ivar source: a dotted source field path.
    :ivar constant: a fixed value.
    :ivar template: a ``str.format``-style template over source paths, e.g. ``"{firstName} {lastName}"``.
    :ivar transforms: applied in order to the value.
    :ivar policy: when the value may be written over an existing record (``UPDATE_POLICIES``);
        None is ``always``, except for constants and ``default`` values (create only).
    """

    target: str
    source: str | None = None
    constant: Any = None
    template: str | None = None
    transforms: tuple[Transform, ...] = ()
    policy: UpdatePolicy | None = None


#: Per-field update policies: ``always`` writes the value, ``if_empty`` only when the target
#: field is empty, ``on_create`` only when the record is created, ``never_clear`` never writes
#: an empty value over a non-empty one.
UpdatePolicy = Literal["always", "if_empty", "on_create", "never_clear"]
UPDATE_POLICIES: tuple[str, ...] = ("always", "if_empty", "on_create", "never_clear")


@attrs.frozen
class RecordMapping:
    """A set of field maps from one source object to one target object."""

    source_object: str
    target_object: str
    fields: tuple[FieldMap, ...]
    name: str = ""


@attrs.frozen
class Filter:
    """A pull filter: ``field op value``; op is one of = != < <= > >= in like."""

    field: str
    op: Literal["=", "!=", "<", "<=", ">", ">=", "in", "like"]
    value: Any


@attrs.frozen
class Watermark:
    """A ``(timestamp, id)`` position in a source's change order."""

    timestamp: dt.datetime
    id: str = ""


@attrs.frozen
class PullRequest:
    """What to read: by ids, by filters, or everything changed since a watermark.

    :ivar overlap: seconds to re-read before ``since`` so late commits are not missed.
    :ivar page_size: a hint for the remote page size; None uses the plugin default.
    :ivar ids_only: the caller needs only ids (e.g. a poller marking what changed).
    """

    object: str
    fields: tuple[str, ...] = ()
    ids: tuple[str, ...] = ()
    filters: tuple[Filter, ...] = ()
    since: Watermark | None = None
    overlap: float = 0.0
    include_deleted: bool = False
    page_size: int | None = None
    limit: int | None = None
    #: Only the records' ids (and what orders them) are needed; a plugin may return more.
    ids_only: bool = False
    #: With ``ids``: most of them changed at or after this moment (when they were marked), so a
    #: plugin may read them from a list of recent changes, a page at a time, instead of one
    #: call per id; it still reads by id whatever that list does not hold.
    recent: dt.datetime | None = None


@attrs.frozen
class PushItem:
    """One record to write. ``key`` is the engine's correlation key, echoed in the result."""

    key: str
    fields: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    id: str | None = None


@attrs.frozen
class PushRequest:
    """A batch of writes to one object.

    :ivar operation: insert, update (items carry ``id``), upsert or delete.
    :ivar match_key: for upsert: an external-id field (native upsert) or a plain field such as
        Email (matched with one query per batch).
    """

    object: str
    operation: Operation
    items: tuple[PushItem, ...]
    match_key: str | None = None


@attrs.frozen
class RemoteFailure:
    """The remote system's own account of a failed record, kept verbatim for dead letters."""

    code: str
    message: str
    fields: tuple[str, ...] = ()
    retryable: bool = False


@attrs.frozen
class PushResult:
    """The outcome of one PushItem, in request order.

    :ivar returned: fields the remote system returned (e.g. a created magic link).
    """

    key: str
    ok: bool
    id: str | None = None
    created: bool = False
    error: RemoteFailure | None = None
    returned: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)

    @property
    def retryable(self) -> bool:
        """True when the failure is transient and the record should be retried."""
        return self.error is not None and self.error.retryable


@attrs.frozen
class HttpRequest:
    """An inbound HTTP request, independent of the web framework that received it.

    :ivar suffix: what followed ``/hooks/<org>/<system>/`` in the path (empty on the plain
        route), e.g. a per-organisation secret the plugin checks; kept out of ``repr``.
    """

    method: str
    path: str
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)
    body: bytes = b""
    query: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)
    suffix: str = attrs.field(default="", repr=False)

    def header(self, name: str, default: str | None = None) -> str | None:
        """A header value, looked up case-insensitively."""
        wanted = name.lower()
        for key, value in self.headers.items():
            if key.lower() == wanted:
                return value
        return default


@attrs.frozen
class HttpResponse:
    """The exact response to send back to the remote system."""

    status: int = 200
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)


@attrs.frozen
class EntityRef:
    """An entity a notification says may have changed, with any fields it carried.

    :ivar record: the whole entity as the notification carried it, when the plugin vouches the
        delivery holds every field and the source's modified time (``Record.modified_at``):
        a flow may then sync it without reading the entity back.
    """

    object: str
    id: str
    fields: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    record: Record | None = None


@attrs.frozen
class Notification:
    """A verified, parsed webhook delivery or outbound message.

    :ivar dedupe_ids: ids of the notification itself (to recognise re-sends).
    :ivar response: what to answer once the intents are durably stored.
    :ivar replay_horizon: seconds the engine remembers ``dedupe_ids`` in the state store; a
        notification whose every id is remembered is answered with ``response`` and stores
        nothing (0: not remembered). At least as long as the sender retries.
    :ivar ignored: why a verified notification is acknowledged but stores nothing (an event
        type the plugin does not sync, another account's delivery); ``entities`` is then empty.
    """

    system: str
    kind: str
    entities: tuple[EntityRef, ...]
    response: HttpResponse
    dedupe_ids: tuple[str, ...] = ()
    org_id: str | None = None
    replay_horizon: float = 0.0
    ignored: str = ""


#: What became of an inbound notification (the ``result`` label of the notification metric).
NotificationResult = Literal["accepted", "duplicate", "ignored", "rejected", "unknown", "error"]
NOTIFICATION_RESULTS: tuple[NotificationResult, ...] = typing.get_args(NotificationResult)


@attrs.frozen
class Reception:
    """The engine's answer to one inbound notification.

    :ivar response: what to send back.
    :ivar result: ``accepted`` (its entities are marked), ``duplicate`` (every id was already
        received: nothing stored), ``ignored`` (verified, acknowledged, nothing to store),
        ``rejected`` (a 4xx: malformed, unauthenticated, foreign or stale), ``unknown`` (no
        such organisation or system) or ``error`` (a 500).
    :ivar entities: how many entities were marked (the work the notification causes).
    """

    response: HttpResponse
    result: NotificationResult
    entities: int = 0


@attrs.frozen
class Finding:
    """A preflight result: what is wrong, where, and how to fix it."""

    severity: Severity
    code: str
    message: str
    source: str = ""
    where: str = ""
    fix: str = ""


@attrs.frozen
class Verdict:
    """An ``admit_record`` answer: admit or deny, with the reason recorded."""

    allow: bool
    reason: str = ""
    source: str = ""


@attrs.frozen
class OAuthStart:
    """The first leg of an interactive OAuth sign-in (``oauth_start``).

    :ivar url: where to send the admin's browser (the system's authorize page).
    :ivar verifier: the PKCE code verifier; the caller keeps it server-side until the callback
        and passes it to ``oauth_finish``. Never sent to the browser.
    """

    url: str
    verifier: str = attrs.field(repr=False)


@attrs.frozen
class OAuthGrant:
    """What an interactive OAuth sign-in produced (``oauth_finish``).

    :ivar settings: non-secret settings to write into ``[orgs.X.systems.S]`` (for Salesforce
        ``grant = "refresh_token"``, ``client_id``, ``login_url``).
    :ivar secrets: secret setting name to value (``{"refresh_token": "..."}``): the caller
        stores each in the secrets store and writes ``<name>_env`` into the settings.
    :ivar account: who signed in and where, for the confirmation ("admin@acme.example on
        00D5g000004E2mTEAS").
    """

    settings: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    secrets: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping, repr=False)
    account: str = ""


@attrs.frozen
class ApiUsage:
    """Remote API usage, e.g. from Salesforce's ``Sforce-Limit-Info: api-usage=used/max``."""

    used: int
    limit: int

    @property
    def share(self) -> float:
        """Used share of the allowance, 0.0 to 1.0."""
        return self.used / self.limit if self.limit else 0.0


@attrs.frozen
class Subscription:
    """A notification subscription eventsync made on a remote system (e.g. a Hopin
    dataSubscription): deliveries of ``system`` go to ``target`` until ``expires_at``."""

    system: str
    id: str
    target: str
    expires_at: dt.datetime | None = None


@attrs.frozen
class SubscriptionReport:
    """A ``subscribe`` answer: what is subscribed now, what changed, what was removed.

    :ivar active: the subscriptions in force after the call (the store remembers them).
    :ivar created: ids of ``active`` made or renewed by this call (a remote write each).
    :ivar removed: earlier subscriptions eventsync made that the settings no longer ask for,
        ended by this call.
    """

    active: tuple[Subscription, ...] = ()
    created: tuple[str, ...] = ()
    removed: tuple[Subscription, ...] = ()


class ExclusiveLocks(typing.Protocol):
    """Exclusive locks every process of a deployment shares (the engine's offer to plugins in
    ``SystemSettings.locks``; docs/plugin-authors.md)."""

    def hold(self, org: str, scope: str, keys: typing.Iterable[str]) -> typing.ContextManager[None]:
        """Hold every one of ``keys`` for the block (all or none; per thread).

        :raises RetryableError: when other holders kept some of them past the lock's wait.
        """
        ...


@attrs.frozen
class SystemSettings:
    """Connection settings of one system for one organisation.

    ``options`` are the non-secret settings from the config file. A secret is named there by
    an ``<name>_env`` key that holds an environment variable name; ``secret(name)`` reads it.
    ``env`` defaults to the process environment (tests and embedders may pass their own).
    ``secrets_file`` is the ``[engine] secrets_file`` the engine read ``env`` from (None: there
    is none); ``save_secret`` writes a rotated credential there.
    ``locks`` are exclusive locks shared with the deployment's other processes when it runs
    several (the scale-out roles); None in one process, where a plugin's own lock suffices.
    """

    system: str
    org: str
    options: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    env: Mapping[str, str] | None = attrs.field(default=None, repr=False, eq=False)
    secrets_file: str | None = attrs.field(default=None, eq=False)
    locks: ExclusiveLocks | None = attrs.field(default=None, eq=False, repr=False)

    def get(self, name: str, default: Any = None) -> Any:
        """A non-secret option."""
        return self.options.get(name, default)

    def has_secret(self, name: str) -> bool:
        """True when ``<name>_env`` is configured and the variable is set."""
        var = self.options.get(f"{name}_env")
        env = os.environ if self.env is None else self.env
        return bool(var) and var in env

    def secret(self, name: str) -> str:
        """The secret named by ``<name>_env``; ConfigurationError naming the variable if unset."""
        var = self.options.get(f"{name}_env")
        path = f"$.orgs.{self.org}.systems.{self.system}.{name}_env"
        if not var:
            raise ConfigurationError(
                [f"{path}: missing (name the environment variable holding {name})"]
            )
        env = os.environ if self.env is None else self.env
        value = env.get(var)
        if value is None:
            raise ConfigurationError([f"{path}: environment variable {var} is not set"])
        return value

    def save_secret(self, name: str, value: str) -> SystemSettings:
        """Keep a new value of the secret ``name``, e.g. a refresh token the system rotated
        (the old one no longer works).

        The variable named by ``<name>_env`` is written to ``secrets_file`` through the
        SecretsStore (an atomic rewrite), and set in ``env`` (or the process environment) so
        that settings read later in this process see it. Without a secrets file, a WARNING
        says the value is kept in memory only and what to do.

        :returns: settings whose ``secret(name)`` is ``value``.
        :raises ConfigurationError: ``<name>_env`` is not configured.
        """
        var = self.options.get(f"{name}_env")
        if not var:
            path = f"$.orgs.{self.org}.systems.{self.system}.{name}_env"
            raise ConfigurationError([f"{path}: missing (name the variable to save {name} in)"])
        if self.secrets_file:
            from .secrets_store import SecretsStore

            SecretsStore(self.secrets_file).set(var, value)
        else:
            _log.warning(
                "%s rotated %s of org %s, but there is no [engine] secrets_file to save it "
                "in: the new value is kept in memory only and %s will hold a revoked value "
                "after a restart; set [engine] secrets_file so rotated secrets are saved, or "
                "sign in again after the restart",
                self.system,
                name,
                self.org,
                var,
            )
        shared = os.environ if self.env is None else self.env
        if isinstance(shared, MutableMapping):
            shared[var] = value
        return attrs.evolve(self, env={**shared, var: value})


#: The neutral names of a person's fields that default mappings are built from.
PERSON_ROLES = ("first_name", "last_name", "email")


@attrs.frozen
class SystemProfile:
    """What a system plugin declares about its system: its role, capabilities and the vendor
    defaults core must not know (declared through the ``system_profiles`` hook).

    :ivar system: the system name (``[orgs.X.systems.NAME]``).
    :ivar role: ``"crm"`` or ``"event_platform"``.
    :ivar label: how people name it ("Salesforce").
    :ivar settings: the frozen attrs class of its ``[orgs.X.systems.NAME]`` table (declared with
        ``eventsync.settings.setting``), structured strictly; None accepts any table.
    :ivar max_batch: the most records one push call may carry; flows split larger batches.
    :ivar case_sensitive_fields: True when field names must match exactly (``email`` is not
        ``Email``); False when the system compares them case-insensitively.
    :ivar person_fields: the field names of a person on this system by neutral role
        (``PERSON_ROLES``: ``first_name``, ``last_name``, ``email``); default mappings pair them.
    :ivar flow_defaults: per flow name, defaults of that flow's settings that name this
        system's objects and fields (e.g. the object holding invitations).
    """

    system: str
    role: Literal["crm", "event_platform"]
    label: str = ""
    settings: type | None = None
    max_batch: int = 200
    case_sensitive_fields: bool = False
    person_fields: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)
    flow_defaults: Mapping[str, Mapping[str, Any]] = attrs.field(
        factory=dict, converter=_frozen_mapping
    )
