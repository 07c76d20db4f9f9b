"""The conformance kit for plugin authors (install the ``testing`` extra).

It checks a system plugin against the contract of ``docs/crm-contract.md`` over a live
target that the author supplies: the plugin's own sandbox, a real account or an HTTP fake.
No sandbox is required. Everything the kit writes is made from the author's field factory,
fresh for every insert, so a system with unique fields (emails) never sees a record twice.

* ``conformance_tests(SystemKit(...))`` returns a pytest test class, one test per check.
* ``run_conformance(SystemKit(...))`` runs the same checks and returns a ``CheckResult`` each
  (passed, failed or not applicable), for tools and for measuring the kit itself.
* ``concern_plugin_tests(name)`` checks a plugin that owns no system (e.g. ``pardot_guard``).

A check that needs something the author did not supply (bad credentials, a missing id, a
notification sample, a fault control ...) is *not applicable*: under pytest it is skipped with
a reason starting ``n/a:`` (listed by ``-ra``), never passed. A check the plugin is known to
fail can be declared in ``known_failures``; it is then a strict xfail, so fixing the plugin
makes the test fail until the declaration is removed.

Usage, in ``tests/test_conformance.py`` of a plugin::

    from eventsync.testing import ObjectSpec, SystemKit, conformance_tests, sandbox_target, unique_email

    TestConformance = conformance_tests(
        SystemKit(
            system="mycrm",
            target=sandbox_target("mycrm", bad_settings=lambda good: ...),
            objects=(
                ObjectSpec(
                    object="contact",
                    fresh=lambda: {"email": unique_email(), "lastname": "Kit"},
                    bad=lambda: {"email": "not-an-email"},
                    match_key="email",
                    missing_id="999999999",
                ),
            ),
        )
    )

Opt-in fixtures (``pytest_plugins = ["eventsync.testing"]`` in a conftest): ``plugin_manager``
(a fresh manager), ``register_plugin`` (a plugin registered for one test) and ``no_backoff``
(retry waits removed).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Literal

import attrs
import pytest

from . import backoff
from .errors import (
    AuthenticationError,
    BadNotification,
    DiscoveryError,
    EventsyncError,
    RetryableError,
)
from .hookspecs import Connection
from .models import (
    FIELD_TYPES,
    PERSON_ROLES,
    ApiUsage,
    EntityRef,
    FieldSchema,
    Filter,
    HttpRequest,
    HttpResponse,
    Notification,
    ObjectSchema,
    PullRequest,
    PushItem,
    PushRequest,
    PushResult,
    Record,
    Schema,
    SystemProfile,
    SystemSettings,
    Watermark,
)
from .plugins import ENTRY_POINT_GROUP, Hooks, PluginManager, make_plugin_manager

__all__ = [
    "unique",
    "unique_email",
    "ObjectSpec",
    "Controls",
    "Target",
    "NotificationSamples",
    "SystemKit",
    "sandbox_target",
    "NotApplicable",
    "CheckResult",
    "SYSTEM_CHECKS",
    "CONCERN_CHECKS",
    "run_conformance",
    "format_results",
    "conformance_tests",
    "concern_plugin_tests",
    "plugin_manager",
    "register_plugin",
    "no_backoff",
]

_OTHER = "__no_such_system__"
_BOGUS_OBJECT = "__kit_no_such_object__"
_MS = dt.timedelta(milliseconds=1)
Fields = Mapping[str, Any]


# --- what the plugin author supplies ------------------------------------------------------


def unique(label: str = "kit") -> str:
    """A value no earlier call returned: ``label-<12 hex digits>``."""
    return f"{label}-{uuid.uuid4().hex[:12]}"


def unique_email(domain: str = "example.com") -> str:
    """A lower-case email address no earlier call returned."""
    return f"{unique()}@{domain}"


@attrs.frozen
class ObjectSpec:
    """An object the kit writes to and reads back, and what it supports.

    :ivar object: the object name.
    :ivar fresh: returns the fields of a record the system accepts, with values no earlier
        call returned (the kit calls it once per record it inserts).
    :ivar bad: returns the fields of a record the system refuses for good (None: the
        bad-record check is not applicable).
    :ivar match_key: a field whose fresh values are unique, for upserts (None: no upsert).
    :ivar upsert_writes: False when an upsert leaves a matched record as it is (insert if
        absent, e.g. Hopin's invitations); the kit then checks ids and created flags only.
    :ivar updates: True when records of the object can be updated by id.
    :ivar changes: returns fresh values for an update (default: ``fresh``).
    :ivar missing_id: a well-formed id no record has (None: that check is not applicable).
    :ivar watermark: True when the object can be pulled changed since a watermark.
    :ivar filter_field: a field with unique fresh values to filter on (default: match_key).
    :ivar compare: the fields compared after reading back (default: every field written).
    :ivar deletes: records can be deleted by id (``push`` delete); the cancellation policies
        ``delete`` / ``remove`` and ``eventsync forget`` need it.
    :ivar deleted_visible: a pull with ``include_deleted`` returns deleted records with
        ``deleted=True`` (the poller then finds source deletions; Salesforce's queryAll).
    """

    object: str
    fresh: Callable[[], Fields]
    bad: Callable[[], Fields] | None = None
    match_key: str | None = None
    upsert_writes: bool = True
    updates: bool = True
    changes: Callable[[], Fields] | None = None
    missing_id: str | None = None
    watermark: bool = True
    filter_field: str | None = None
    compare: tuple[str, ...] | None = None
    deletes: bool = False
    deleted_visible: bool = False

    def new_changes(self) -> Fields:
        """Fresh values for an update."""
        return (self.changes or self.fresh)()


@attrs.frozen
class Controls:
    """Fault controls a target may offer (each optional; a check that needs a missing one is
    not applicable).

    :ivar shuffle_answers: ``shuffle_answers(True)`` makes batch answers come back in another
        order than the request (as HubSpot's do); ``False`` restores the order.
    :ivar lose_next_answer: the next write call is made, then its answer is lost (a 5xx).
    :ivar page_reads: how many pages of records the target has served so far.
    """

    shuffle_answers: Callable[[bool], None] | None = None
    lose_next_answer: Callable[[], None] | None = None
    page_reads: Callable[[], int] | None = None


@attrs.frozen
class Target:
    """A live system the kit checks against.

    :ivar settings: working connection settings (secrets in their own ``env`` or os.environ).
    :ivar bad_settings: settings whose credentials the system refuses (None: not applicable).
    :ivar controls: fault controls, if the target has any.
    :ivar handle: anything else the author's factories need (e.g. the sandbox handle).
    """

    settings: SystemSettings
    bad_settings: SystemSettings | None = None
    controls: Controls = Controls()
    handle: Any = None


@attrs.frozen
class NotificationSamples:
    """Inbound deliveries and the settings that verify them (None: that check is n/a).

    :ivar settings: the org's settings for the system (signing secret, account id ...).
    :ivar signed: a genuine, current delivery that must be accepted.
    :ivar unsigned: the delivery without its signature.
    :ivar tampered: a signed delivery whose body was changed after signing.
    :ivar foreign: a correctly signed delivery for another account or organisation.
    :ivar stale: a correctly signed delivery too old to accept (a replay).
    """

    settings: SystemSettings
    signed: HttpRequest
    unsigned: HttpRequest | None = None
    tampered: HttpRequest | None = None
    foreign: HttpRequest | None = None
    stale: HttpRequest | None = None


TargetFactory = Callable[[Hooks], AbstractContextManager[Target]]


@attrs.frozen
class SystemKit:
    """Everything the kit needs to check one system plugin.

    :ivar system: the system the plugin owns.
    :ivar target: ``target(hooks)`` is a context manager giving the live Target
        (``sandbox_target`` for a sandbox; ``lambda hooks: contextlib.nullcontext(Target(...))``
        for real credentials).
    :ivar objects: the objects to write to; each check uses the first one that supports it.
    :ivar notifications: builds notification samples for a target (None: those checks n/a).
    :ivar max_batch: the batch limit when the plugin declares no ``system_profiles`` (the
        profile's ``max_batch`` wins when there is one).
    :ivar min_page_size: the smallest page the plugin's pulls use (Salesforce: 200); pulls
        ask for pages of at least this many records.
    :ivar plugin: a plugin object to register instead of loading the entry point (tests of
        unpublished or modified plugins); the entry-point check is then not applicable.
    :ivar plugin_name: the entry-point name (default: ``system``).
    :ivar not_applicable: check name -> why it does not apply to this plugin (skipped, shown).
    :ivar known_failures: check name -> why the plugin fails it today (strict xfail).
    """

    system: str
    target: TargetFactory
    objects: tuple[ObjectSpec, ...] = ()
    notifications: Callable[[Target], NotificationSamples] | None = None
    max_batch: int | None = None
    min_page_size: int = 1
    plugin: object | None = None
    plugin_name: str | None = None
    not_applicable: Mapping[str, str] = attrs.field(factory=dict)
    known_failures: Mapping[str, str] = attrs.field(factory=dict)

    @property
    def name(self) -> str:
        """The plugin's registration name."""
        return self.plugin_name or self.system

    def hooks(self) -> Hooks:
        """A facade over a manager holding only this plugin (and core's built-ins)."""
        if self.plugin is not None:
            return Hooks(
                make_plugin_manager(
                    load_entrypoints=False, extra_plugins={self.name: self.plugin}, environ={}
                )
            )
        return Hooks(make_plugin_manager(allow=[self.name], environ={}))


def sandbox_target(
    system: str,
    options: Mapping[str, Any] | None = None,
    *,
    bad_settings: Callable[[SystemSettings], SystemSettings] | None = None,
    controls: Callable[[Any], Controls] | None = None,
    org: str = "conformance",
) -> TargetFactory:
    """A target factory that starts the plugin's own sandbox (``start_sandbox``).

    :param options: the sandbox options.
    :param bad_settings: turns the sandbox's working settings into ones it refuses.
    :param controls: builds the fault controls from the sandbox handle.
    """

    @contextlib.contextmanager
    def start(hooks: Hooks) -> Iterator[Target]:
        handle = hooks.start_sandbox(system, dict(options or {}))
        try:
            settings = handle.settings(org)
            yield Target(
                settings=settings,
                bad_settings=bad_settings(settings) if bad_settings else None,
                controls=controls(handle) if controls else Controls(),
                handle=handle,
            )
        finally:
            handle.stop()

    return start


# --- results ------------------------------------------------------------------------------


class NotApplicable(Exception):
    """Raised by a check that needs something the plugin or its target did not supply."""


Outcome = Literal["passed", "failed", "n/a"]


@attrs.frozen
class CheckResult:
    """The outcome of one check: passed, failed or n/a, with what was found."""

    name: str
    outcome: Outcome
    detail: str = ""


@attrs.frozen
class Check:
    """One conformance check: ``run(session)`` raises AssertionError when the plugin fails
    it and NotApplicable when it cannot be made; it may return a note on what it saw."""

    name: str
    run: Callable[[KitSession], str | None]
    doc: str = ""


class KitSession:
    """What the checks share while one target is up: hooks, target, connection, profile."""

    def __init__(self, kit: SystemKit, hooks: Hooks, target: Target | None) -> None:
        self.kit, self.hooks, self._target = kit, hooks, target
        self._connection: Connection | None = None

    @property
    def target(self) -> Target:
        """The live target; NotApplicable for a concern plugin."""
        if self._target is None:
            raise NotApplicable("no target: the plugin owns no system")
        return self._target

    @property
    def connection(self) -> Connection:
        """The kit's connection, made on first use with the target's working settings."""
        if self._connection is None:
            self._connection = self.hooks.authenticate(self.target.settings)
        return self._connection

    @property
    def profile(self) -> SystemProfile | None:
        """The plugin's SystemProfile of the system, if it declares one."""
        return self.hooks.profile(self.kit.system)

    @property
    def max_batch(self) -> int:
        """The batch limit: the profile's, else the kit's; NotApplicable when neither."""
        profile = self.profile
        if profile is not None:
            return profile.max_batch
        if self.kit.max_batch is None:
            raise NotApplicable("no max_batch: the plugin declares no profile and the kit got none")
        return self.kit.max_batch

    def spec(self, need: str) -> ObjectSpec:
        """The first object spec able to do ``need``; NotApplicable when none is."""
        able: dict[str, Callable[[ObjectSpec], bool]] = {
            "insert": lambda s: True,
            "bad": lambda s: s.bad is not None,
            "upsert": lambda s: s.match_key is not None,
            "update": lambda s: s.updates,
            "missing": lambda s: s.updates and s.missing_id is not None,
            "watermark": lambda s: s.watermark,
            "filter": lambda s: (s.filter_field or s.match_key) is not None,
            "delete": lambda s: s.deletes,
        }
        for spec in self.kit.objects:
            if able[need](spec):
                return spec
        raise NotApplicable(f"no object spec supports {need}")

    @contextlib.contextmanager
    def shuffled(self) -> Iterator[bool]:
        """Batch answers out of order while inside, when the target offers the control."""
        control = self.target.controls.shuffle_answers
        if control is None:
            yield False
            return
        control(True)
        try:
            yield True
        finally:
            control(False)

    # --- helpers the checks share -------------------------------------------------------

    def push(self, request: PushRequest) -> list[PushResult]:
        """Push through the hooks (which insist on one result per item)."""
        return self.hooks.push(self.connection, request)

    def insert(self, spec: ObjectSpec, count: int, label: str) -> list[tuple[PushItem, str]]:
        """Insert ``count`` fresh records in one push; returns each item with its new id."""
        items = tuple(PushItem(f"{label}-{i}", dict(spec.fresh())) for i in range(count))
        results = self.push(PushRequest(spec.object, "insert", items))
        _in_request_order(items, results)
        failed = [(r.key, r.error) for r in results if not r.ok]
        assert not failed, f"insert of fresh {spec.object} records failed: {failed[:3]}"
        assert all(r.id for r in results), "a successful insert must return the new record's id"
        return [(item, str(result.id)) for item, result in zip(items, results, strict=True)]

    def read(self, spec: ObjectSpec, ids: Sequence[str]) -> dict[str, Record]:
        """The records with these ids, read back through ``pull``, by id."""
        fields = tuple(
            dict.fromkeys(_compared(spec, spec.fresh()) + _compared(spec, spec.new_changes()))
        )
        found: dict[str, Record] = {}
        for record in self.hooks.pull(
            self.connection, PullRequest(object=spec.object, fields=fields, ids=tuple(ids))
        ):
            assert record.id, "a pulled record must carry its id"
            found[record.id] = record
        return found

    def since(
        self, spec: ObjectSpec, since: Watermark, overlap: float, page_size: int
    ) -> list[Record]:
        """Everything a watermark pull streams (every record, not only the kit's)."""
        request = PullRequest(
            object=spec.object, since=since, overlap=overlap, page_size=self.page(page_size)
        )
        return list(self.hooks.pull(self.connection, request))

    def page(self, wanted: int) -> int:
        """A page size the plugin honours: at least the kit's ``min_page_size``."""
        return max(wanted, self.kit.min_page_size)

    def notifications(self) -> NotificationSamples:
        """The author's notification samples; NotApplicable when none were supplied."""
        if self.kit.notifications is None:
            raise NotApplicable("no notification samples supplied")
        return self.kit.notifications(self.target)


def _compared(spec: ObjectSpec, fields: Fields) -> tuple[str, ...]:
    names = spec.compare if spec.compare is not None else tuple(fields)
    return tuple(name for name in names if name in fields)


def _same(spec: ObjectSpec, record: Record | None, fields: Fields, what: str) -> None:
    assert record is not None, f"{what}: the record could not be read back by its id"
    for name in _compared(spec, fields):
        assert record.get(name) == fields[name], (
            f"{what}: {spec.object} {record.id}.{name} is {record.get(name)!r}, "
            f"expected {fields[name]!r}"
        )


def _in_request_order(items: Sequence[PushItem], results: Sequence[PushResult]) -> None:
    keys = [r.key for r in results]
    assert keys == [i.key for i in items], (
        f"push must return one result per item in request order (by key), got keys {keys}"
    )


def _refused(result: PushResult, what: str) -> None:
    assert not result.ok, f"{what} was reported ok"
    assert result.error is not None, f"{what}: a failed result must carry a RemoteFailure"
    assert result.error.code and result.error.message, (
        f"{what}: the failure must keep the remote code and message, got {result.error}"
    )
    assert not result.error.retryable, f"{what}: retrying cannot fix it, so it is not retryable"


def _check_order(records: Sequence[Record], what: str) -> None:
    for earlier, later in zip(records, records[1:], strict=False):
        assert earlier.modified_at is not None and later.modified_at is not None, (
            f"{what}: every record of a watermark pull needs modified_at"
        )
        assert earlier.modified_at <= later.modified_at, (
            f"{what}: records must come oldest first by (modified_at, id); {earlier.id} "
            f"({earlier.modified_at}) came before {later.id} ({later.modified_at})"
        )


# --- the checks ---------------------------------------------------------------------------

SYSTEM_CHECKS: dict[str, Check] = {}
CONCERN_CHECKS: dict[str, Check] = {}


def _check(*registries: dict[str, Check]) -> Callable[[Callable[[KitSession], Any]], Any]:
    def register(fn: Callable[[KitSession], Any]) -> Callable[[KitSession], Any]:
        name = fn.__name__.removeprefix("check_")
        for registry in registries or (SYSTEM_CHECKS,):
            registry[name] = Check(name, fn, (fn.__doc__ or "").strip())
        return fn

    return register


def _entry_point(name: str) -> EntryPoint | None:
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name == name:
            return ep
    return None


@_check(SYSTEM_CHECKS, CONCERN_CHECKS)
def check_entry_point(s: KitSession) -> None:
    """The plugin's entry point in group ``eventsync`` resolves and loads."""
    if s.kit.plugin is not None:
        raise NotApplicable("the plugin object was registered directly (SystemKit.plugin)")
    ep = _entry_point(s.kit.name)
    assert ep is not None, f"no entry point {s.kit.name!r} in group {ENTRY_POINT_GROUP!r}"
    assert ep.load() is not None


@_check(SYSTEM_CHECKS, CONCERN_CHECKS)
def check_check_pending(s: KitSession) -> None:
    """Every hook implementation names a hook that exists (no misspelt hook)."""
    assert s.hooks.pm.get_plugin(s.kit.name) is not None, f"plugin {s.kit.name!r} not registered"
    s.hooks.pm.check_pending()


@_check(SYSTEM_CHECKS, CONCERN_CHECKS)
def check_other_systems_ignored(s: KitSession) -> None:
    """Every per-system hook returns None for a system or connection that is not the plugin's."""
    foreign = _Foreign()
    settings = SystemSettings(_OTHER, "conformance")
    hook = s.hooks.pm.hook
    assert hook.authenticate(system=_OTHER, settings=settings) is None, "authenticate"
    assert hook.api_usage(connection=foreign) is None, "api_usage"
    assert all(result is None for result in hook.maintain(connection=foreign)), "maintain"
    assert hook.discover_schema(connection=foreign, objects=None) is None, "discover_schema"
    assert hook.pull(connection=foreign, request=PullRequest(object="x")) is None, "pull"
    request = PushRequest(object="x", operation="insert", items=(PushItem("k"),))
    assert hook.push(connection=foreign, request=request) is None, "push"
    http = HttpRequest(method="POST", path="/", body=b"{}")
    assert hook.parse_notification(system=_OTHER, request=http, settings=settings) is None, (
        "parse_notification"
    )
    assert hook.start_sandbox(system=_OTHER, options={}) is None, "start_sandbox"
    assert _OTHER not in s.hooks.profiles(), "system_profiles declares a system it does not own"


@attrs.frozen
class _Foreign:
    """A connection of a system no plugin owns."""

    system: str = _OTHER
    org: str = "conformance"


@_check()
def check_system_profile(s: KitSession) -> str:
    """``system_profiles`` declares the system consistently, and the target's settings fit
    the declared settings class."""
    from .settings import structure

    profile = s.profile
    if profile is None:
        raise NotApplicable("the plugin declares no system_profiles")
    assert profile.role in ("crm", "event_platform"), f"role {profile.role!r}"
    assert profile.max_batch >= 1, f"max_batch {profile.max_batch}"
    assert set(profile.person_fields) <= set(PERSON_ROLES), (
        f"person_fields keys must be among {PERSON_ROLES}, got {sorted(profile.person_fields)}"
    )
    # Each flow's own settings class, built-in or registered by another plugin.
    flows: dict[str, type] = {
        name: flow.settings_class
        for name, flow in s.hooks.flows().items()
        if getattr(flow, "settings_class", None) is not None
    }
    for flow, defaults in profile.flow_defaults.items():
        assert flow in flows, f"flow_defaults names unknown flow {flow!r}"
        known = {f.name for f in attrs.fields(flows[flow])}
        unknown = set(defaults) - known
        assert not unknown, f"flow_defaults.{flow}: {sorted(unknown)} are not settings of it"
    if profile.settings is not None:
        assert attrs.has(profile.settings), "settings must be an attrs class"
        for field in attrs.fields(profile.settings):
            meta = field.metadata.get("eventsync")
            assert meta and meta.get("label"), (
                f"setting {field.name!r} needs a label: declare it with eventsync.settings.setting"
            )
            if meta.get("secret"):
                assert field.name.endswith("_env"), f"secret setting {field.name!r} ends in _env"
        _, problems = structure(profile.settings, s.target.settings.options, "settings")
        assert not problems, (
            f"the target's settings do not fit {profile.settings.__name__}: {problems}"
        )
    if profile.person_fields:
        schema = s.hooks.discover_schema(s.connection, None)
        names = {f.name for o in schema.objects.values() for f in o.fields}
        if not profile.case_sensitive_fields:
            names = {n.lower() for n in names}
        for role, name in profile.person_fields.items():
            wanted = name if profile.case_sensitive_fields else name.lower()
            assert wanted in names, f"person field {role} = {name!r} is in no discovered object"
    return f"{profile.role}, max_batch {profile.max_batch}"


@_check()
def check_authenticate(s: KitSession) -> None:
    """``authenticate`` with good settings returns a connection of the system and org."""
    conn = s.connection
    assert conn.system == s.kit.system, f"connection.system is {conn.system!r}"
    assert conn.org == s.target.settings.org, f"connection.org is {conn.org!r}"


@_check()
def check_authenticate_bad_credentials(s: KitSession) -> None:
    """Bad credentials raise ``AuthenticationError`` with the remote system's own words."""
    if s.target.bad_settings is None:
        raise NotApplicable("the target supplies no bad_settings")
    try:
        s.hooks.authenticate(s.target.bad_settings)
    except AuthenticationError as exc:
        assert exc.system == s.kit.system, f"AuthenticationError.system is {exc.system!r}"
        assert exc.error, "AuthenticationError must carry the remote error"
        return
    except Exception as exc:
        raise AssertionError(f"raised {type(exc).__name__} instead of AuthenticationError") from exc
    raise AssertionError("bad credentials were accepted")


@_check()
def check_schema_shape(s: KitSession) -> None:
    """``discover_schema`` describes each object with core types and the fields the kit writes
    (by their exact names when the profile says field names are case-sensitive)."""
    if not s.kit.objects:
        raise NotApplicable("no object specs")
    exact = s.profile is not None and s.profile.case_sensitive_fields
    for spec in s.kit.objects:
        schema = s.hooks.discover_schema(s.connection, [spec.object])
        assert isinstance(schema, Schema) and schema.system == s.kit.system, repr(schema)[:200]
        described = schema.object(spec.object)
        assert isinstance(described, ObjectSchema) and described.fields, f"{spec.object} missing"
        for field in described.fields:
            assert isinstance(field, FieldSchema), repr(field)
            assert field.type in FIELD_TYPES, f"{spec.object}.{field.name}: type {field.type!r}"
        names = [*spec.fresh(), *[n for n in (spec.match_key, spec.filter_field) if n]]
        for name in names:
            found = described.field(name)
            assert found is not None, f"{spec.object}.{name} is not in the schema"
            if exact:
                assert found.name == name, f"{spec.object}.{name} is called {found.name!r}"


@_check()
def check_unknown_object(s: KitSession) -> None:
    """An object the system does not have is a DiscoveryError (or left out of the schema), and
    pulling it raises an eventsync error, not a library's exception."""
    try:
        schema = s.hooks.discover_schema(s.connection, [_BOGUS_OBJECT])
        assert schema.object(_BOGUS_OBJECT) is None, "an unknown object was described"
    except DiscoveryError:
        pass
    except Exception as exc:
        raise AssertionError(f"discover_schema raised {type(exc).__name__}: {exc}") from exc
    try:
        list(s.hooks.pull(s.connection, PullRequest(object=_BOGUS_OBJECT)))
    except EventsyncError:
        return
    except Exception as exc:
        raise AssertionError(f"pull of an unknown object raised {type(exc).__name__}") from exc
    raise AssertionError("pull of an unknown object raised nothing")


@_check()
def check_insert_read_back(s: KitSession) -> None:
    """Inserted records come back created, each with its own id, and read back as written."""
    spec = s.spec("insert")
    items = tuple(PushItem(f"insert-{i}", dict(spec.fresh())) for i in range(3))
    results = s.push(PushRequest(spec.object, "insert", items))
    _in_request_order(items, results)
    for result in results:
        assert result.ok, f"insert {result.key} failed: {result.error}"
        assert result.created, f"insert {result.key}: created must be True"
    ids = [str(r.id) for r in results]
    assert len(set(ids)) == 3 and all(ids), f"ids must be distinct, got {ids}"
    found = s.read(spec, ids)
    for item, record_id in zip(items, ids, strict=True):
        record = found.get(record_id)
        _same(spec, record, item.fields, f"insert {item.key}")
        assert record is not None and record.system == s.kit.system
        assert record.object.lower() == spec.object.lower(), record.object


@_check()
def check_bad_record_fails_alone(s: KitSession) -> str:
    """A refused record gets its own non-retryable failure with the remote code and message;
    the records around it are written."""
    spec = s.spec("bad")
    assert spec.bad is not None
    items = (
        PushItem("good-0", dict(spec.fresh())),
        PushItem("bad", dict(spec.bad())),
        PushItem("good-1", dict(spec.fresh())),
    )
    with s.shuffled() as shuffled:
        results = s.push(PushRequest(spec.object, "insert", items))
    _in_request_order(items, results)
    good0, bad, good1 = results
    _refused(bad, "the bad record")
    for item, result in ((items[0], good0), (items[2], good1)):
        assert result.ok, f"a bad record must not fail the rest: {item.key}: {result.error}"
    assert good0.id != good1.id, "two records got one id"
    found = s.read(spec, [str(good0.id), str(good1.id)])
    _same(spec, found.get(str(good0.id)), items[0].fields, "good-0")
    _same(spec, found.get(str(good1.id)), items[2].fields, "good-1")
    return _shuffle_note(shuffled)


def _shuffle_note(shuffled: bool) -> str:
    return "answers shuffled" if shuffled else "no shuffle control: answers in the target's order"


@_check()
def check_batch_above_max_batch(s: KitSession) -> str:
    """A push of more records than ``max_batch`` is split by the plugin: every record is
    written, with its own id."""
    spec = s.spec("insert")
    count = 2 * s.max_batch + 1
    items = tuple(PushItem(f"big-{i}", dict(spec.fresh())) for i in range(count))
    results = s.push(PushRequest(spec.object, "insert", items))
    _in_request_order(items, results)
    failed = [(r.key, r.error) for r in results if not r.ok]
    assert not failed, f"{len(failed)} of {count} records failed, e.g. {failed[:2]}"
    ids = [str(r.id) for r in results]
    assert len(set(ids)) == count, "every record needs its own id"
    found = s.read(spec, ids)
    for item, record_id in zip(items, ids, strict=True):
        _same(spec, found.get(record_id), item.fields, item.key)
    return f"{count} records, max_batch {s.max_batch}"


@_check()
def check_upsert_correlates_by_key(s: KitSession) -> str:
    """Upsert on ``match_key`` (not an external id) updates the matches and creates the rest;
    each result belongs to its item's key (answers may come in any order), with the created
    flag set right, and each id reads back as its own item."""
    spec = s.spec("upsert")
    key = str(spec.match_key)
    existing = s.insert(spec, 2, "existing")
    plan: list[tuple[PushItem, str] | None] = [None, existing[0], None, existing[1], None]
    items = []
    for i, old in enumerate(plan):
        fields = dict(spec.fresh())
        if old is not None:
            fields[key] = old[0].fields[key]
        items.append(PushItem(f"upsert-{i}", fields))
    with s.shuffled() as shuffled:
        results = s.push(PushRequest(spec.object, "upsert", tuple(items), match_key=key))
    _in_request_order(items, results)
    old_ids = {record_id for _, record_id in existing}
    for old, item, result in zip(plan, items, results, strict=True):
        assert result.ok, f"upsert {item.key} failed: {result.error}"
        if old is not None:
            assert result.id in (None, old[1]), (
                f"upsert {item.key} matched {key}={item.fields[key]!r} of record {old[1]}, "
                f"but its result names {result.id}: results matched by position?"
            )
            assert not result.created, f"upsert {item.key} updated a record: created is False"
        else:
            assert result.created, f"upsert {item.key} created a record: created is True"
            assert result.id and result.id not in old_ids, (
                f"upsert {item.key} created a record but its result names {result.id}"
            )
    ids = [str(r.id or (old[1] if old else "")) for old, r in zip(plan, results, strict=True)]
    assert len(set(ids)) == len(ids), f"two results name one record: {ids}"
    found = s.read(spec, ids)
    for old, item, record_id in zip(plan, items, ids, strict=True):
        expected = item.fields if spec.upsert_writes or old is None else {key: item.fields[key]}
        _same(spec, found.get(record_id), expected, f"upsert {item.key}")
    values = [str(item.fields[key]) for item in items]
    matched = Counter(
        str(r.get(key)).lower()
        for r in s.hooks.pull(
            s.connection,
            PullRequest(object=spec.object, fields=(key,), filters=(Filter(key, "in", values),)),
        )
    )
    twice = [v for v in values if matched[v.lower()] != 1]
    assert not twice, f"{key} values held by more than one record (or none): {twice}"
    return _shuffle_note(shuffled)


@_check()
def check_upsert_retry_creates_no_duplicate(s: KitSession) -> None:
    """An upsert whose answer is lost (the write was made) and is then retried leaves one
    record: the plugin either looks again before re-creating, or reports the failure as
    retryable and the next upsert finds the record."""
    spec = s.spec("upsert")
    lose = s.target.controls.lose_next_answer
    if lose is None:
        raise NotApplicable("the target offers no lose_next_answer control")
    key = str(spec.match_key)
    item = PushItem("retry", dict(spec.fresh()))
    request = PushRequest(spec.object, "upsert", (item,), match_key=key)
    lose()
    try:
        [first] = s.push(request)
    except RetryableError:
        first = None
    if first is None or not first.ok:
        assert first is None or first.retryable, (
            f"a lost answer is transient, so the failure must be retryable: {first}"
        )
        [first] = s.push(request)  # what the engine does next
        assert first.ok, f"the retried upsert failed: {first.error}"
    records = list(
        s.hooks.pull(
            s.connection,
            PullRequest(
                object=spec.object, fields=(key,), filters=(Filter(key, "=", item.fields[key]),)
            ),
        )
    )
    assert len(records) == 1, (
        f"{len(records)} records hold {key}={item.fields[key]!r}: a write whose answer was "
        "lost was made again"
    )
    assert first.id in (None, records[0].id), f"the result names {first.id}, not {records[0].id}"


@_check()
def check_update_read_back(s: KitSession) -> str:
    """Updates by id are written (read back, the other fields kept), each result names its
    own item's record."""
    spec = s.spec("update")
    written = s.insert(spec, 2, "to-update")
    changes = [dict(spec.new_changes()) for _ in written]
    items = tuple(
        PushItem(f"update-{i}", ch, id=record_id)
        for i, ((_, record_id), ch) in enumerate(zip(written, changes, strict=True))
    )
    with s.shuffled() as shuffled:
        results = s.push(PushRequest(spec.object, "update", items))
    _in_request_order(items, results)
    for item, result in zip(items, results, strict=True):
        assert result.ok, f"update {item.key} failed: {result.error}"
        assert result.id in (None, item.id), f"update of {item.id} reported record {result.id}"
    found = s.read(spec, [str(item.id) for item in items])
    for (original, _), item in zip(written, items, strict=True):
        _same(spec, found.get(str(item.id)), {**original.fields, **item.fields}, item.key)
    return _shuffle_note(shuffled)


@_check()
def check_update_missing_id_fails_alone(s: KitSession) -> None:
    """An update of an id no record has is a non-retryable failure of that item alone."""
    spec = s.spec("missing")
    [(_, record_id)] = s.insert(spec, 1, "beside-missing")
    items = (
        PushItem("missing", dict(spec.new_changes()), id=spec.missing_id),
        PushItem("existing", dict(spec.new_changes()), id=record_id),
    )
    results = s.push(PushRequest(spec.object, "update", items))
    _in_request_order(items, results)
    missing, existing = results
    _refused(missing, f"the update of missing id {spec.missing_id}")
    assert existing.ok, f"a missing id must not fail the rest: {existing.error}"
    _same(spec, s.read(spec, [record_id]).get(record_id), items[1].fields, "existing")


@_check()
def check_pull_filters(s: KitSession) -> None:
    """Filters ``=``, ``!=``, ``in`` and not-empty (``!= None``) select exactly the records
    they name."""
    spec = s.spec("filter")
    field = str(spec.filter_field or spec.match_key)
    written = s.insert(spec, 3, "filtered")
    values = [str(item.fields[field]) for item, _ in written]
    ids = [record_id for _, record_id in written]

    def pulled(*filters: Filter) -> set[str]:
        request = PullRequest(object=spec.object, fields=(field,), filters=filters)
        found = list(s.hooks.pull(s.connection, request))
        return {str(r.id) for r in found if r.id in ids}

    every = Filter(field, "in", values)
    cases = {
        f"{field} in [v0, v1]": (pulled(Filter(field, "in", values[:2])), {ids[0], ids[1]}),
        f"{field} = v2": (pulled(Filter(field, "=", values[2])), {ids[2]}),
        f"{field} in all and != v1": (
            pulled(every, Filter(field, "!=", values[1])),
            {ids[0], ids[2]},
        ),
        f"{field} in all and not empty": (pulled(every, Filter(field, "!=", None)), set(ids)),
    }
    for what, (got, expected) in cases.items():
        assert got == expected, f"filter {what}: got {sorted(got)}, expected {sorted(expected)}"


@_check()
def check_match_query_reads_current_values(s: KitSession) -> None:
    """A pull by an ``in`` filter returns the fields it asks for with their current values:
    update policies and previews read what a record holds in the one match query a batch
    makes, so a field left out or stale would overwrite what someone typed."""
    spec = s.spec("filter")
    field = str(spec.filter_field or spec.match_key)
    written = s.insert(spec, 2, "current")
    values = [str(item.fields[field]) for item, _ in written]
    asked = tuple(dict.fromkeys((field, *_compared(spec, written[0][0].fields))))
    request = PullRequest(object=spec.object, fields=asked, filters=(Filter(field, "in", values),))
    found = {r.id: r for r in s.hooks.pull(s.connection, request)}
    for item, record_id in written:
        _same(spec, found.get(record_id), item.fields, f"match query for {item.key}")


@_check()
def check_delete_by_id(s: KitSession) -> str:
    """Deleting by id removes that record alone; deleting it again is a non-retryable failure
    (or ok): never a retry loop. With ``deleted_visible``, ``include_deleted`` pulls show it."""
    spec = s.spec("delete")
    (gone, gone_id), (_, kept_id) = s.insert(spec, 2, "to-delete")
    items = (PushItem("delete", {}, id=gone_id),)
    [result] = s.push(PushRequest(spec.object, "delete", items))
    assert result.ok, f"delete of {gone_id} failed: {result.error}"
    found = s.read(spec, [gone_id, kept_id])
    live = {i for i, r in found.items() if not r.deleted}
    assert live == {kept_id}, f"after deleting {gone_id}, by id: {sorted(live)}"
    [again] = s.push(PushRequest(spec.object, "delete", items))
    assert again.ok or (again.error is not None and not again.error.retryable), (
        f"deleting a deleted record must not be retryable: {again.error}"
    )
    if not spec.deleted_visible:
        return "include_deleted not checked (deleted_visible is False)"
    request = PullRequest(object=spec.object, ids=(gone_id,), include_deleted=True)
    shown = list(s.hooks.pull(s.connection, request))
    assert [r.deleted for r in shown] == [True], f"include_deleted pull of {gone_id}: {shown}"
    return ""


@_check()
def check_pull_returns_iterator(s: KitSession) -> None:
    """``pull`` returns an iterator for every kind of request, never a list."""
    spec = s.spec("insert")
    [(item, record_id)] = s.insert(spec, 1, "iterated")
    requests = [PullRequest(object=spec.object, ids=(record_id,))]
    field = spec.filter_field or spec.match_key
    if field:
        requests.append(
            PullRequest(object=spec.object, filters=(Filter(field, "=", item.fields[field]),))
        )
    if spec.watermark:
        [record] = s.read(spec, [record_id]).values()
        assert record.modified_at is not None, "a pulled record needs modified_at"
        since = Watermark(record.modified_at - _MS, "")
        requests.append(PullRequest(object=spec.object, since=since))
    for request in requests:
        result = s.hooks.pull(s.connection, request)
        assert isinstance(result, Iterator) and not isinstance(result, (list, tuple)), (
            f"pull returned a {type(result).__name__}, not an iterator"
        )
        assert record_id in {r.id for r in result}, f"{request} did not find the record"


@_check()
def check_pull_pages_lazily(s: KitSession) -> str:
    """A large pull reads its pages one at a time: at most one page ahead of the record
    being used (bounded memory), and in pages no larger than asked for."""
    reads = s.target.controls.page_reads
    if reads is None:
        raise NotApplicable("the target offers no page_reads counter")
    spec = s.spec("watermark")
    page = s.page(2)
    written = s.insert(spec, 4 * page + 1, "paged")  # five pages
    stamps = [r.modified_at for r in s.read(spec, [i for _, i in written]).values()]
    assert all(stamps), "every pulled record needs modified_at"
    since = Watermark(min(t for t in stamps if t) - _MS, "")
    before = reads()
    stream = s.hooks.pull(
        s.connection, PullRequest(object=spec.object, since=since, page_size=page)
    )
    assert isinstance(stream, Iterator), f"pull returned a {type(stream).__name__}"
    at_call = reads() - before
    first = next(stream)
    at_first = reads() - before
    seen = {first.id, *(r.id for r in stream)}
    total = reads() - before
    assert at_call <= 1 and at_first <= 2, (
        f"{at_first} pages were read before the first record was used: pull must stream"
    )
    lost = [record_id for _, record_id in written if record_id not in seen]
    assert not lost, f"the pull lost {lost}"
    assert total >= 5, f"{len(seen)} records in pages of {page} took {total} page reads"
    return f"{total} pages of {page}"


def _watermark_records(s: KitSession) -> tuple[ObjectSpec, list[Record]]:
    """Write two batches (ties inside each), update two of the first (so the change order is
    not the id order) and return the records in the order a full watermark pull gives."""
    spec = s.spec("watermark")
    first = s.insert(spec, 5, "wm-a")
    second = s.insert(spec, 5, "wm-b")
    if spec.updates:
        items = tuple(
            PushItem(f"wm-u{i}", dict(spec.new_changes()), id=first[i][1]) for i in (1, 3)
        )
        results = s.push(PushRequest(spec.object, "update", items))
        assert all(r.ok for r in results), [r.error for r in results]
    ids = {record_id for _, record_id in first + second}
    stamps = [r.modified_at for r in s.read(spec, sorted(ids)).values()]
    assert len(stamps) == len(ids) and all(stamps), "every record needs modified_at"
    since = Watermark(min(t for t in stamps if t) - _MS, "")
    stream = s.since(spec, since, 0.0, page_size=2)
    _check_order(stream, "a watermark pull")
    own = [r for r in stream if r.id in ids]
    counts = Counter(str(r.id) for r in own)
    missing = sorted(ids - set(counts))
    assert not missing, (
        f"a watermark pull in pages of {s.page(2)} lost {missing} (ties at a page boundary?)"
    )
    twice = sorted(i for i, n in counts.items() if n > 1)
    assert not twice, f"a watermark pull returned {twice} more than once"
    field = spec.filter_field or spec.match_key
    if field:  # the first poll and a backfill read without a since, and take watermarks too
        values = [str(r.get(field)) for r in own if r.get(field) is not None]
        request = PullRequest(object=spec.object, filters=(Filter(field, "in", values),))
        _check_order(list(s.hooks.pull(s.connection, request)), "a pull without since")
    return spec, own


def _resume(
    s: KitSession, spec: ObjectSpec, records: list[Record], at: int, page_size: int
) -> None:
    """Pull since the watermark of ``records[at]``: everything after it must come, nothing
    older than its timestamp may."""
    mark = records[at]
    assert mark.modified_at is not None and mark.id
    got = s.since(spec, Watermark(mark.modified_at, mark.id), 0.0, page_size)
    _check_order(got, f"resuming after {mark.id}")
    ids = {r.id for r in records}
    own = [r for r in got if r.id in ids]
    returned = {r.id for r in own}
    lost = [r.id for r in records[at + 1 :] if r.id not in returned]
    assert not lost, (
        f"resuming after ({mark.modified_at}, {mark.id}) lost {lost}: since must return every "
        "record after the watermark (ties too)"
    )
    older = [r.id for r in own if r.modified_at is not None and r.modified_at < mark.modified_at]
    assert not older, f"since {mark.modified_at} returned older records {older}: since ignored"
    twice = [i for i, n in Counter(r.id for r in own).items() if n > 1]
    assert not twice, f"resuming after {mark.id} returned {twice} twice"


@_check()
def check_watermark_order_and_resume(s: KitSession) -> str:
    """Watermark pulls come oldest first by ``(modified_at, id)``, honour ``since`` and, from
    the watermark of any record, return every record after it, across page boundaries."""
    spec, records = _watermark_records(s)
    for at in range(len(records)):
        _resume(s, spec, records, at, page_size=2)
    return f"{len(records)} records, {len({r.modified_at for r in records})} distinct timestamps"


@_check()
def check_watermark_ties_across_pages(s: KitSession) -> str:
    """Records sharing a timestamp are all returned after a watermark inside their group,
    in pages of one."""
    spec, records = _watermark_records(s)
    groups: dict[Any, list[int]] = {}
    for index, record in enumerate(records):
        groups.setdefault(record.modified_at, []).append(index)
    tied = max(groups.values(), key=len)
    if len(tied) < 2:
        raise NotApplicable("no two records the kit wrote share a modified_at")
    for at in tied[:-1]:
        _resume(s, spec, records, at, page_size=1)
    return f"{len(tied)} records share {records[tied[0]].modified_at}"


@_check()
def check_watermark_overlap(s: KitSession) -> str:
    """``overlap`` re-reads that many seconds before the watermark, and no further."""
    spec, records = _watermark_records(s)
    stamps = sorted({r.modified_at for r in records if r.modified_at is not None})
    if len(stamps) < 2:
        raise NotApplicable("every record the kit wrote has the same modified_at")
    earlier, latest = stamps[-2], stamps[-1]
    mark = [r for r in records if r.modified_at == latest][-1]
    overlap = (latest - earlier).total_seconds()
    got = {r.id for r in s.since(spec, Watermark(latest, str(mark.id)), overlap, page_size=2)}
    wanted = [r.id for r in records if r.modified_at is not None and r.modified_at >= earlier]
    lost = [i for i in wanted if i not in got]
    assert not lost, f"overlap {overlap}s before {latest} should re-read {lost}: overlap ignored?"
    too_old = [r.id for r in records if r.modified_at is not None and r.modified_at < earlier - _MS]
    extra = [i for i in too_old if i in got]
    assert not extra, f"overlap {overlap}s before {latest} also returned older records {extra}"
    return f"overlap {overlap:g}s"


@_check()
def check_api_usage(s: KitSession) -> str:
    """``api_usage`` returns None or an ``ApiUsage`` with whole numbers."""
    s.hooks.discover_schema(s.connection, None)  # at least one call was made
    usage = s.hooks.api_usage(s.connection)
    if usage is None:
        return "reports no usage"
    assert isinstance(usage, ApiUsage), f"api_usage returned a {type(usage).__name__}"
    assert isinstance(usage.used, int) and isinstance(usage.limit, int), repr(usage)
    assert usage.used >= 0 and usage.limit >= 0, repr(usage)
    return f"{usage.used}/{usage.limit}"


@_check()
def check_notification_signed_accepted(s: KitSession) -> str:
    """A genuine delivery parses into a Notification naming entities, with a 2xx answer."""
    samples = s.notifications()
    note = s.hooks.parse_notification(samples.settings, samples.signed)
    assert isinstance(note, Notification), f"got {type(note).__name__}"
    assert note.system == s.kit.system, f"Notification.system is {note.system!r}"
    assert isinstance(note.response, HttpResponse) and 200 <= note.response.status < 300, (
        f"the response to a genuine delivery must be 2xx, got {note.response}"
    )
    assert not note.ignored, f"a genuine delivery was ignored: {note.ignored}"
    assert note.entities, "a delivery names at least one entity"
    for entity in note.entities:
        assert isinstance(entity, EntityRef) and entity.object and entity.id, repr(entity)
    return f"{len(note.entities)} entities"


def _rejected(s: KitSession, kind: str, *, may_ignore: bool = False) -> str:
    samples = s.notifications()
    request = getattr(samples, kind)
    if request is None:
        raise NotApplicable(f"no {kind} notification sample supplied")
    try:
        note = s.hooks.parse_notification(samples.settings, request)
    except BadNotification as exc:
        assert 400 <= exc.status < 500, f"status {exc.status}"
        return f"{exc.status}: {exc.message}"
    except Exception as exc:
        raise AssertionError(
            f"a {kind} delivery raised {type(exc).__name__} instead of BadNotification"
        ) from exc
    if may_ignore and isinstance(note, Notification) and note.ignored:
        assert not note.entities, f"an ignored {kind} delivery names entities: {note.entities}"
        assert 200 <= note.response.status < 300, (
            f"an ignored delivery is acknowledged with a 2xx, got {note.response.status}"
        )
        return f"ignored ({note.response.status}): {note.ignored}"
    raise AssertionError(f"a {kind} delivery was accepted")


@_check()
def check_notification_unsigned_rejected(s: KitSession) -> str:
    """An unsigned delivery is refused with a 4xx BadNotification."""
    return _rejected(s, "unsigned")


@_check()
def check_notification_tampered_rejected(s: KitSession) -> str:
    """A delivery changed after signing is refused with a 4xx BadNotification."""
    return _rejected(s, "tampered")


@_check()
def check_notification_foreign_rejected(s: KitSession) -> str:
    """A delivery for another account is refused with a 4xx BadNotification, or acknowledged
    and ignored: a 2xx Notification naming no entity, with its ``ignored`` reason."""
    return _rejected(s, "foreign", may_ignore=True)


@_check()
def check_notification_stale_rejected(s: KitSession) -> str:
    """A delivery too old to trust (a replay) is refused with a 4xx BadNotification."""
    return _rejected(s, "stale")


@_check(CONCERN_CHECKS)
def check_concern_declarations(s: KitSession) -> None:
    """A concern plugin declares no system; an options schema it declares is an attrs class."""
    assert not s.hooks.profiles(), "a concern plugin declares no system_profiles"
    for name, cls in s.hooks.options_schemas().items():
        assert attrs.has(cls), f"options schema of {name!r} must be an attrs class"


@_check(CONCERN_CHECKS)
def check_preflight_returns_findings(s: KitSession) -> None:
    """``preflight`` returns a list of findings for an organisation without connections."""
    from .config import OrgConfig

    findings = s.hooks.preflight(OrgConfig(plan="business", name="conformance"), {})
    assert isinstance(findings, list), type(findings)


# --- running the checks -------------------------------------------------------------------


def _run_one(check: Check, session: KitSession) -> CheckResult:
    reason = session.kit.not_applicable.get(check.name)
    if reason is not None:
        return CheckResult(check.name, "n/a", reason)
    try:
        with backoff.disabled():  # retries still run, without their waits
            note = check.run(session)
    except NotApplicable as exc:
        return CheckResult(check.name, "n/a", str(exc))
    except Exception as exc:  # a failed assertion, or the plugin raising where it must not
        text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return CheckResult(check.name, "failed", text)
    return CheckResult(check.name, "passed", note or "")


def run_conformance(kit: SystemKit, *, only: Iterable[str] | None = None) -> list[CheckResult]:
    """Run the system checks (or ``only`` those named) against one target; one result each."""
    names = list(SYSTEM_CHECKS) if only is None else list(only)
    unknown = [n for n in names if n not in SYSTEM_CHECKS]
    if unknown:
        raise ValueError(f"unknown checks {unknown} (known: {', '.join(SYSTEM_CHECKS)})")
    hooks = kit.hooks()
    with kit.target(hooks) as target:
        session = KitSession(kit, hooks, target)
        return [_run_one(SYSTEM_CHECKS[name], session) for name in names]


def format_results(results: Iterable[CheckResult]) -> str:
    """One line per check: outcome, name and what was found."""
    return "\n".join(f"{r.outcome:>6}  {r.name}  {r.detail}".rstrip() for r in results)


# --- pytest -------------------------------------------------------------------------------


def _test_method(check: Check, marks: Sequence[Any]) -> Callable[..., None]:
    def test(self: Any, kit_session: KitSession) -> None:
        result = _run_one(check, kit_session)
        if result.outcome == "n/a":
            pytest.skip(f"n/a: {check.name}: {result.detail}")
        if result.outcome == "failed":
            pytest.fail(f"{check.name}: {result.detail}", pytrace=False)

    test.__name__ = f"test_{check.name}"
    test.__doc__ = check.doc
    for mark in marks:
        test = mark(test)
    return test


def _test_class(
    title: str,
    checks: Mapping[str, Check],
    session: Callable[[], Iterator[KitSession]],
    known_failures: Mapping[str, str],
) -> type:
    unknown = set(known_failures) - set(checks)
    if unknown:
        raise ValueError(f"known_failures names unknown checks {sorted(unknown)}")

    def kit_session(cls: type) -> Iterator[KitSession]:
        yield from session()

    body: dict[str, Any] = {
        "kit_session": pytest.fixture(scope="class", name="kit_session")(classmethod(kit_session))  # type: ignore[arg-type]
    }
    for name, check in checks.items():
        marks = []
        if name in known_failures:
            marks.append(pytest.mark.xfail(reason=known_failures[name], strict=True))
        body[f"test_{name}"] = _test_method(check, marks)
    return type(title, (), body)


def conformance_tests(kit: SystemKit) -> type:
    """A pytest test class running every system check against ``kit``'s target (started once
    per class): assign it to a ``Test...`` name in a test module."""

    def session() -> Iterator[KitSession]:
        hooks = kit.hooks()
        with kit.target(hooks) as target:
            yield KitSession(kit, hooks, target)

    return _test_class(f"Conformance[{kit.system}]", SYSTEM_CHECKS, session, kit.known_failures)


def concern_plugin_tests(name: str, *, plugin: object | None = None) -> type:
    """A pytest test class for a plugin that owns no system (checks and gates only)."""
    kit = SystemKit(system=name, target=_no_target, plugin=plugin)

    def session() -> Iterator[KitSession]:
        yield KitSession(kit, kit.hooks(), None)

    return _test_class(f"Conformance[{name}]", CONCERN_CHECKS, session, {})


def _no_target(hooks: Hooks) -> AbstractContextManager[Target]:
    raise NotApplicable("a concern plugin has no target")


# --- opt-in fixtures ----------------------------------------------------------------------


@pytest.fixture
def plugin_manager() -> PluginManager:
    """A fresh plugin manager with the built-ins and the installed entry points."""
    return make_plugin_manager(environ={})


@pytest.fixture
def register_plugin(plugin_manager: PluginManager) -> Iterator[Callable[[object, str], object]]:
    """Register a plugin object on ``plugin_manager`` for one test; unregistered afterwards."""
    registered: list[object] = []

    def register(plugin: object, name: str) -> object:
        plugin_manager.register(plugin, name=name)
        plugin_manager.check_pending()
        registered.append(plugin)
        return plugin

    yield register
    for plugin in registered:
        plugin_manager.unregister(plugin)


@pytest.fixture
def no_backoff() -> Iterator[None]:
    """Remove every retry wait made through ``eventsync.backoff`` for one test."""
    with backoff.disabled():
        yield
