"""The engine: flows, triggers, pollers, backfills and the executor, for many organisations.

This is also the embedding API (docs/embedding.md)::

    engine = Engine.from_file("eventsync.toml")     # or Engine(config_object)
    engine.start()                                   # workers and pollers in this process
    response = engine.handle_request("acme", "hopin", http_request)   # from the host's web app
    engine.backfill("acme", "export_registrations")
    engine.stop()

A trigger only marks entities in the outbox (durably) and answers; workers lease batches of
one (org, flow) and run the flow's ``run_batch``. Connections are made lazily per org and role
and reused; a failed authentication drops the connection so the next batch re-authenticates.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from .budget import Budget, BudgetGuard
from .checks import flow_objects
from .config import Config, OrgConfig, load_config, secrets_env, validate_config
from .decisions import Hold, holds
from .erasure import ForgetResult, forget
from .errors import (
    AuthenticationError,
    BadNotification,
    ConfigurationError,
    EventsyncError,
)
from .executor import Executor, Outcome
from .flows.base import Flow, FlowContext, Role, current_flow
from .hookspecs import Connection
from .logs import fields
from .metrics import EngineMetrics
from .models import (
    ApiUsage,
    ExclusiveLocks,
    HttpRequest,
    HttpResponse,
    ObjectSchema,
    Reception,
    RemoteFailure,
    SubscriptionReport,
    SystemSettings,
)
from .plugins import Hooks, make_plugin_manager
from .polling import BackfillResult, SourceScanner
from .preview import Preview, preview
from .store import FlowStatus, OutboxItem, StateStore, key_problem
from .usage_board import UsageBoard

__all__ = ["Engine", "BackfillResult", "StateUnavailable", "SubscriptionOutcome", "open_store"]

log = logging.getLogger("eventsync.engine")
SCHEMA_TTL = 3600.0


def open_store(config: Config, **kwargs: Any) -> StateStore:
    """Open the state store named by ``[engine] state`` (a SQLite path or a database URL);
    ``create=False`` refuses one that does not exist (``StateStoreMissing``).

    A store that cannot be opened (an unwritable directory, a database server that does not
    answer) is a ConfigurationError naming ``$.engine.state`` and what to check.
    """
    import sqlalchemy as sa

    state = config.engine.state
    url, path = (state, None) if "://" in state else (None, state)
    try:
        return StateStore.open(
            url,
            path=path,
            max_attempts=config.engine.max_attempts,
            backoff_base=config.engine.backoff_base,
            backoff_cap=config.engine.backoff_cap,
            sqlite_synchronous=config.engine.sqlite_synchronous,
            **kwargs,
        )
    except OSError as exc:  # the directory cannot be made
        raise ConfigurationError(
            [
                f"$.engine.state: cannot create {exc.filename or state} ({exc.strerror}); "
                "choose a directory this user may write to"
            ]
        ) from None
    except sa.exc.OperationalError as exc:
        problem = _state_problem(state, exc)
        if "://" not in state or state.startswith("sqlite"):
            raise ConfigurationError([problem]) from None
        raise StateUnavailable(problem) from None


class StateUnavailable(EventsyncError):
    """The state database cannot be opened or reached (the process can do nothing)."""


def _state_problem(state: str, exc: Exception) -> str:
    reason = str(getattr(exc, "orig", exc)).strip().splitlines()[0]
    where = state if "://" not in state else _hide_password(state)
    if "://" not in state or state.startswith("sqlite"):
        return (
            f"$.engine.state: cannot open the SQLite state database {where} ({reason}); check "
            "that its directory exists and this user may write to it, and that the disk is not full"
        )
    return (
        f"$.engine.state: cannot reach the state database {where} ({reason}); check that "
        "the database server is running and the URL, user and database name are right"
    )


def _hide_password(url: str) -> str:
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "<the configured URL>"


@attrs.frozen
class SubscriptionOutcome:
    """What ``Engine.subscribe`` did for one system of one organisation: its report (None when
    the system is not subscribed to by API), or the error that stopped it."""

    org: str
    system: str
    report: SubscriptionReport | None = None
    error: str = ""
    exc: BaseException | None = attrs.field(default=None, eq=False, repr=False)


class Engine:
    """Runs the configured flows of every organisation in this process.

    :param config: the configuration (``load_config`` or built in code).
    :param hooks: a plugin facade (default: a manager built from the config's allow/block lists).
    :param store: a state store (default: ``open_store(config)``).
    :param env: environment for secrets (default: the process environment).
    :param pollers: run a poller per enabled flow after ``start()``.
    :param create_store: False refuses a state store that does not exist yet (commands that
        only read state, such as ``eventsync status``).
    :param subscribe: ``start()`` (and maintenance) make and renew the systems' notification
        subscriptions (``subscribe``); False for an engine that only works through a backlog.
    :param run_executor: False starts no worker threads: another process drains the outbox
        (the ``serve`` and ``scheduler`` roles, ``eventsync.distributed``).
    """

    def __init__(
        self,
        config: Config,
        *,
        hooks: Hooks | None = None,
        store: StateStore | None = None,
        env: Mapping[str, str] | None = None,
        pollers: bool = True,
        workers: int | None = None,
        create_store: bool = True,
        subscribe: bool = True,
        run_executor: bool = True,
    ) -> None:
        self.hooks = hooks or Hooks(
            make_plugin_manager(
                allow=config.engine.plugins_allow, block=config.engine.plugins_block
            )
        )
        # Every flow's settings structured, roles resolved, the plugins' settings checked.
        config = validate_config(config, hooks=self.hooks)
        self.config = config
        self.flows: dict[str, Flow] = self.hooks.flows()
        self.store = store or open_store(config, create=create_store)
        self._own_store = store is None
        self.env = secrets_env(config, env)
        self.run_pollers = pollers
        self.run_subscriptions = subscribe
        self.run_executor = run_executor
        #: Called with ``(org, flow)`` after marks were stored (the scale-out roles dispatch a
        #: drain of the flow to the workers); must not raise or block.
        self.on_marked: Callable[[str, str], None] | None = None
        #: Exclusive locks shared with the deployment's other processes, offered to plugins in
        #: ``SystemSettings.locks`` (the scale-out roles set it before connecting).
        self.shared_locks: ExclusiveLocks | None = None
        self.transforms = self.hooks.transforms()
        self._contexts: dict[str, FlowContext] = {}
        self._connections: dict[tuple[str, str], Connection] = {}
        # (org, system) -> (what they were made of, the settings): ``_settings``.
        self._system_settings: dict[tuple[str, str], tuple[tuple[Any, ...], SystemSettings]] = {}
        self.budget_guard = BudgetGuard(self.config.engine)
        self.usage_board = UsageBoard(self.store)
        self._schemas: dict[tuple[str, str, str], tuple[float, ObjectSchema | None]] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.poll_errors: dict[tuple[str, str], str] = {}
        self._running = False
        self.started_at = time.time()
        self.scanner = SourceScanner(self)
        self.metrics = EngineMetrics(config, shared=self.store.record_counts)
        # org -> (ok, reason) of its last batch that reached a remote system (``readiness``).
        self.write_health: dict[str, tuple[bool, str]] = {}
        # (org, system) -> why its last connection attempt failed, until one succeeds.
        self.connect_errors: dict[tuple[str, str], str] = {}
        self.executor = Executor(
            self.store,
            self.job,
            workers=workers or config.engine.workers,
            batch_size=config.engine.batch_size,
            lease_seconds=config.engine.lease_seconds,
            linger=config.engine.batch_linger,
            auth_pause=config.engine.auth_pause,
            on_outcomes=self._count_outcomes,
        )

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> Engine:
        """Build an engine from a TOML configuration file."""
        return cls(load_config(path), **kwargs)

    # --- per-org context ----------------------------------------------------------------

    def context(self, org_name: str) -> FlowContext:
        """The FlowContext of one organisation (built once)."""
        with self._lock:
            ctx = self._contexts.get(org_name)
            if ctx is None:
                org = self.config.org(org_name)
                ctx = FlowContext(
                    config=self.config,
                    org=org,
                    hooks=self.hooks.for_plugins(org.plugins),
                    store=self.store,
                    connect=functools.partial(self.connection, org_name),
                    describe=functools.partial(self.describe, org_name),
                    transforms=self.transforms,
                    mark=functools.partial(self.mark, org_name),
                    connections=_LazyConnections(self, org_name),
                    observe=functools.partial(self.metrics.observe_call, org_name),
                )
                self._contexts[org_name] = ctx
            return ctx

    def _system(self, org_name: str, role: Role) -> str:
        org = self.config.org(org_name)
        return org.crm if role == "crm" else org.event_platform

    def connection(self, org_name: str, role: Role) -> Connection:
        """The live connection of an org's role, authenticating on first use."""
        return self.system_connection(org_name, self._system(org_name, role))

    def _settings(self, org: OrgConfig, system: str) -> SystemSettings:
        # Kept per system: every webhook delivery asks, and building them (options copied,
        # twice) cost more than parsing it. Built anew when what they are made of changed.
        made_of = (org, self.env, self.shared_locks, self.config.engine.secrets_file)
        kept = self._system_settings.get((org.name, system))
        if kept is not None and all(a is b for a, b in zip(kept[0], made_of, strict=True)):
            return kept[1]
        # The secrets file too: a plugin saves a rotated credential there (save_secret).
        settings = attrs.evolve(
            org.settings(system, self.env),
            secrets_file=self.config.engine.secrets_file,
            locks=self.shared_locks,
        )
        self._system_settings[(org.name, system)] = (made_of, settings)
        return settings

    def system_connection(self, org_name: str, system: str) -> Connection:
        """The live connection of one of an org's systems, authenticating on first use."""
        key = (org_name, system)
        with self._lock:
            conn = self._connections.get(key)
        if conn is None:
            org = self.config.org(org_name)
            try:
                conn = self.context(org_name).hooks.authenticate(self._settings(org, system))
            except Exception as exc:
                self.connect_errors[key] = f"{type(exc).__name__}: {exc}"
                raise
            with self._lock:
                self._connections[key] = conn
            self.connect_errors.pop(key, None)
        return conn

    def drop_connection(self, org_name: str, role: Role) -> None:
        """Forget a connection (after an authentication failure) so the next use reconnects."""
        with self._lock:
            self._connections.pop((org_name, self._system(org_name, role)), None)

    def describe(self, org_name: str, role: Role, obj: str) -> ObjectSchema | None:
        """The schema of one object (cached for an hour), or None when it cannot be described."""
        key = (org_name, role, obj)
        now = time.monotonic()
        with self._lock:
            hit = self._schemas.get(key)
        if hit is not None and now - hit[0] < SCHEMA_TTL:
            return hit[1]
        try:
            schema = self.context(org_name).hooks.discover_schema(
                self.connection(org_name, role), [obj]
            )
            described = schema.object(obj)
        except EventsyncError as exc:
            log.warning("cannot describe %s %s for %s: %s", role, obj, org_name, exc)
            described = None
        with self._lock:
            self._schemas[key] = (now, described)
        return described

    def secret_values(self) -> list[str]:
        """The values of every secret the configuration names (``*_env`` settings), so that
        logs can hide them (``eventsync.logs.SecretsFilter``)."""
        env = self.env if self.env is not None else os.environ
        values = []
        for org in self.config.orgs.values():
            for table in [*org.systems.values(), *org.plugin_options.values()]:
                for key, name in table.items():
                    if key.endswith("_env") and isinstance(name, str) and env.get(name):
                        values.append(env[name])
        return values

    # --- marking and triggers -----------------------------------------------------------

    def mark(
        self,
        org_name: str,
        flow: str,
        entities: Iterable[str] | Mapping[str, Any],
        *,
        hint: str | None = None,
    ) -> int:
        """Durably record that these entities of ``flow`` may have changed. A mapping of
        entity to payload stores each payload with its mark (a snapshot the job may use
        instead of reading the entity, ``flows.base.snapshot_of``)."""
        keys: list[str] | dict[str, Any] = (
            {e: payload for e, payload in entities.items() if e}
            if isinstance(entities, Mapping)
            else [e for e in dict.fromkeys(entities) if e]
        )
        if not keys:
            return 0
        marked = self.store.mark_many(org_name, flow, keys, hint=hint)
        if self.on_marked is not None:
            self.on_marked(org_name, flow)
        return marked

    def sync_entity(self, org_name: str, flow: str, entity: str) -> int:
        """Ask for one entity to be synced now (marks it; a worker picks it up at once)."""
        self.require_flow(org_name, flow)
        marked = self.store.mark(org_name, flow, entity, hint="manual")
        if self.on_marked is not None:
            self.on_marked(org_name, flow)
        return marked

    def handle_request(self, org_name: str, system: str, request: HttpRequest) -> HttpResponse:
        """Verify and parse an inbound notification, store its intents, return the response.

        The response (e.g. Salesforce's ``<Ack>true</Ack>``) is returned only after every intent
        is durably in the outbox; malformed, unsigned or foreign input gets a 4xx and stores
        nothing. ``receive`` does the same and also says what became of the notification.
        """
        return self.receive(org_name, system, request).response

    def receive(self, org_name: str, system: str, request: HttpRequest) -> Reception:
        """``handle_request``, answering with the response and how the notification was taken.

        A notification the plugin marks ``ignored`` stores nothing. One whose ``dedupe_ids``
        were all received within its ``replay_horizon`` (a re-send, or a replay of a captured
        request) stores nothing either and gets the same acknowledgement. The ids are
        remembered in the transaction that stores the marks: a failure leaves neither, and the
        sender's retry marks again rather than be refused. A notification naming an
        id or an entity the store cannot hold (``eventsync.store.key_problem``: too long, or a
        NUL character) is refused with a 400 before anything is stored. The re-send check, the
        marks (with what each flow takes from the notification: ``Flow.carried``) and the ids
        are one transaction; one naming nothing any enabled flow takes needs none (it is
        accepted, and a re-send of it stores nothing either).
        """
        if org_name not in self.config.orgs:
            return Reception(
                HttpResponse(404, f"unknown organisation {org_name!r}\n".encode()), "unknown"
            )
        org = self.config.org(org_name)
        if system not in org.systems:
            return Reception(
                HttpResponse(404, f"organisation {org_name!r} has no system {system!r}\n".encode()),
                "unknown",
            )
        ctx = self.context(org_name)
        try:
            notification = ctx.hooks.parse_notification(self._settings(org, system), request)
        except BadNotification as exc:
            log.info("rejected %s notification for %s: %s", system, org_name, exc.message)
            return Reception(HttpResponse(exc.status, (exc.message + "\n").encode()), "rejected")
        if notification.ignored:
            log.info("ignored %s notification for %s: %s", system, org_name, notification.ignored)
            return Reception(notification.response, "ignored")
        if refused := _unstorable(system, org_name, "id", notification.dedupe_ids):
            return refused
        named = {f: self.flows[f].entities_from(ctx, notification) for f in org.flows.enabled()}
        every = [entity for entities in named.values() for entity in entities]
        if refused := _unstorable(system, org_name, "entity", every):
            return refused
        if not any(every):
            # Nothing for any enabled flow (e.g. a signal only another flow would use): nothing
            # to store, and so nothing a replay of it could store twice; no transaction.
            return Reception(notification.response, "accepted", 0)
        marks: dict[str, dict[str, Any]] = {}
        for flow_name, entities in named.items():
            carried = self.flows[flow_name].carried(ctx, notification) if entities else {}
            marks[flow_name] = {e: carried.get(e) for e in dict.fromkeys(entities) if e}
        # The re-send check, the marks and the ids remembered: one transaction.
        marked = self.store.accept_notification(
            org_name,
            system,
            marks,
            ids=notification.dedupe_ids,
            horizon=notification.replay_horizon,
            hint="notification",
        )
        if marked is None:
            log.info(
                "%s notification %s for %s was received before; nothing stored",
                system,
                ", ".join(notification.dedupe_ids[:3]),
                org_name,
            )
            return Reception(notification.response, "duplicate")
        for flow_name, entities in named.items():
            self.scanner.notified(org_name, flow_name, entities)
        return Reception(notification.response, "accepted", marked)

    # --- pollers and backfills ----------------------------------------------------------

    def require_flow(self, org_name: str, flow: str) -> Flow:
        """The flow, when it is configured and enabled for the org; ConfigurationError otherwise."""
        org = self.config.org(org_name)
        if flow not in org.flows.enabled():
            raise ConfigurationError(
                [
                    f"$.orgs.{org_name}.flows.{flow}: this flow is not configured for the organisation "
                    f"(enabled: {', '.join(org.flows.enabled()) or 'none'})"
                ]
            )
        return self.flows[flow]

    def poll_once(self, org_name: str, flow_name: str) -> int:
        """Read the flow's source since its watermark and mark what changed; returns the count
        (see ``SourceScanner.poll_once``)."""
        return self.scanner.poll_once(org_name, flow_name)

    def backfill(
        self,
        org_name: str,
        flow_name: str,
        *,
        restart: bool = False,
        progress: Callable[[int], None] | None = None,
        budget_share: float | None = None,
        max_pending: int | None = None,
    ) -> BackfillResult:
        """Mark every source entity of a flow, resumably, within the API budget
        (see ``SourceScanner.backfill``)."""
        return self.scanner.backfill(
            org_name,
            flow_name,
            restart=restart,
            progress=progress,
            budget_share=budget_share,
            max_pending=max_pending,
        )

    def preview(
        self,
        org_name: str,
        flow_name: str,
        *,
        entities: Sequence[str] = (),
        limit: int | None = None,
        budget_share: float | None = None,
    ) -> Preview:
        """What a run of the flow would do to each record (create, update with a diff, skip,
        fail), writing nothing (see ``eventsync.preview``)."""
        return preview(
            self, org_name, flow_name, entities=entities, limit=limit, budget_share=budget_share
        )

    def forget(self, email: str, *, orgs: Sequence[str] = ()) -> ForgetResult:
        """Erase a person: the remote records eventsync created for ``email`` (per each org's
        ``[orgs.X.erasure]`` policy) and every trace in the state store; resumable (see
        ``eventsync.erasure``)."""
        return forget(self, email, orgs=orgs)

    def _poll_loop(self, org_name: str, flow_name: str) -> None:
        interval = self.config.org(org_name).flows[flow_name].poll_interval
        while not self._stop.is_set():
            try:
                self.poll_once(org_name, flow_name)
                self.poll_errors.pop((org_name, flow_name), None)
            except AuthenticationError as exc:
                self.poll_errors[(org_name, flow_name)] = str(exc)
                self.drop_connection(org_name, self.flows[flow_name].source_role)
                log.warning(
                    "poller %s/%s: credentials refused: %s",
                    org_name,
                    flow_name,
                    exc,
                    extra=fields(org=org_name, flow=flow_name, code="AUTHENTICATION"),
                )
            except Exception as exc:  # a poller must survive any remote failure
                self.poll_errors[(org_name, flow_name)] = f"{type(exc).__name__}: {exc}"
                log.warning(
                    "poller %s/%s failed: %s",
                    org_name,
                    flow_name,
                    exc,
                    extra=fields(org=org_name, flow=flow_name),
                )
            self._stop.wait(interval)

    def maintain(self) -> None:
        """Prune the sync log to ``[engine] log_retention``, the audit trail and the API usage
        readings too old to count (``UsageBoard.prune``), call the ``maintain`` hook on every
        live connection and, when the engine keeps subscriptions, renew them (``subscribe``);
        failures are logged."""
        self.prune_log()
        self.usage_board.prune()
        try:
            days = self.config.engine.audit_retention_days
            self.store.prune_audit(dt.timedelta(days=days))
        except Exception as exc:  # upkeep must never stop the engine
            log.warning("pruning the audit trail failed: %s", exc)
        with self._lock:
            live = list(self._connections.items())
        for (org_name, system), conn in live:
            try:
                self.context(org_name).hooks.maintain(conn)
                if self.run_subscriptions:
                    self._subscribe_one(org_name, system, conn)
            except Exception as exc:  # upkeep must never stop the engine
                log.warning("maintenance of %s for %s failed: %s", system, org_name, exc)

    def subscribe(self, orgs: Iterable[str] | None = None) -> list[SubscriptionOutcome]:
        """Make, renew and end the notification subscriptions of every system of ``orgs``
        (default: all), remembering them in the store. Never raises for one system's failure:
        each outcome carries its report or its error."""
        outcomes = []
        for org_name in orgs if orgs is not None else list(self.config.orgs):
            for system in self.config.org(org_name).systems:
                try:
                    conn = self.system_connection(org_name, system)
                    report = self._subscribe_one(org_name, system, conn)
                    outcomes.append(SubscriptionOutcome(org_name, system, report))
                except Exception as exc:  # reported per system; the others go on
                    log.warning("cannot subscribe %s for %s: %s", system, org_name, exc)
                    outcomes.append(
                        SubscriptionOutcome(
                            org_name, system, error=str(exc) or type(exc).__name__, exc=exc
                        )
                    )
        return outcomes

    def _subscribe_one(
        self, org_name: str, system: str, conn: Connection
    ) -> SubscriptionReport | None:
        previous = self.store.subscriptions(org_name, system)
        report = self.context(org_name).hooks.subscribe(conn, previous)
        if report is not None:
            self.store.replace_subscriptions(org_name, system, report.active)
        return report

    def prune_log(self) -> int:
        """Delete sync-log lines older than ``[engine] log_retention`` days (and the oldest
        beyond ``store.MAX_LOG_ROWS``); returns how many. Failures are logged, never raised."""
        try:
            pruned = self.store.prune_log(dt.timedelta(days=self.config.engine.log_retention))
        except Exception as exc:  # upkeep must never stop the engine
            log.warning("pruning the sync log failed: %s", exc)
            return 0
        if pruned:
            log.info("pruned %d sync-log lines", pruned, extra=fields(count=pruned))
        return pruned

    def _maintain_loop(self) -> None:
        while not self._stop.wait(self.config.engine.maintenance_interval):
            self.maintain()

    # --- the job ------------------------------------------------------------------------

    def job(self, items: list[OutboxItem]) -> Sequence[Outcome]:
        """Run one leased batch (all of one org and flow) through its flow."""
        org_name, flow_name = items[0].org, items[0].flow
        flow = self.flows.get(flow_name)
        if (
            flow is None
            or org_name not in self.config.orgs
            or flow_name not in self.config.org(org_name).flows.enabled()
        ):
            failure = RemoteFailure(
                "FLOW_NOT_CONFIGURED", f"flow {flow_name!r} is not configured for {org_name!r}"
            )
            return [Outcome.dead(failure) for _ in items]
        token = current_flow.set(flow_name)
        try:
            outcomes = flow.run_batch(self.context(org_name), items)
        except AuthenticationError as exc:
            # The next attempt re-authenticates; the executor pauses the org (docs/errors.md).
            self.drop_connection(org_name, "crm")
            self.drop_connection(org_name, "platform")
            self.write_health[org_name] = (False, f"credentials refused: {exc}")
            raise
        except Exception as exc:
            self.write_health[org_name] = (False, f"{flow_name}: {type(exc).__name__}: {exc}")
            raise
        finally:
            current_flow.reset(token)
        self._judge_writes(org_name, flow_name, outcomes)
        return outcomes

    def _judge_writes(self, org_name: str, flow_name: str, outcomes: Sequence[Outcome]) -> None:
        """Remember whether the org's remote writes succeed (for ``readiness``): a batch with a
        success says yes, one whose every failure is transient says no."""
        if any(o.kind == "done" for o in outcomes):
            self.write_health[org_name] = (True, "")
        elif outcomes and all(o.kind == "retry" for o in outcomes):
            failure = outcomes[0].failure
            reason = f"{failure.code}: {failure.message}" if failure else "retrying"
            self.write_health[org_name] = (False, f"{flow_name}: writes failing ({reason})")

    def readiness(self) -> dict[str, list[str]]:
        """Per organisation, why it is not ready (an empty list: ready): a system it cannot
        connect to (credentials refused, unreachable), credentials refused later (a paused
        organisation, a poller refused), writes failing, a stopped flow, a failing
        poller, or a lag above ``[engine] ready_lag`` seconds."""
        reasons: dict[str, list[str]] = {name: [] for name in self.config.orgs}
        for hold in self.holds():
            if hold.org in reasons:
                what = "credentials refused" if hold.kind == "paused" else f"{hold.flow} stopped"
                reasons[hold.org].append(f"{what}: {hold.reason}")
        for (org_name, system), error in list(self.connect_errors.items()):
            if org_name in reasons:
                reasons[org_name].append(f"cannot connect {system}: {error}")
        for (org_name, flow_name), error in list(self.poll_errors.items()):
            if org_name in reasons:
                reasons[org_name].append(f"poller {flow_name} failing: {error}")
        for org_name, (ok, why) in list(self.write_health.items()):
            if not ok and org_name in reasons:
                reasons[org_name].append(why)
        limit = self.config.engine.ready_lag
        for status in self.status():
            if status.org in reasons and (status.lag_seconds or 0.0) > limit:
                reasons[status.org].append(
                    f"{status.flow} lags {status.lag_seconds:.0f}s (more than {limit:g}s)"
                )
        return reasons

    # --- lifecycle ----------------------------------------------------------------------

    @property
    def stopping(self) -> threading.Event:
        """Set once ``stop()`` was called (pollers and backfills wait on it)."""
        return self._stop

    @property
    def executor_running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._running

    def connect_all(self) -> dict[tuple[str, str], str]:
        """Authenticate every configured system of every org now (nothing remote changes).
        Returns the failures by (org, system)."""
        failures: dict[tuple[str, str], str] = {}
        for org in self.config.orgs.values():
            for system in org.systems:
                try:
                    self.system_connection(org.name, system)
                except Exception as exc:  # reported, retried on first use
                    failures[(org.name, system)] = f"{type(exc).__name__}: {exc}"
                    log.warning("cannot connect %s for %s: %s", system, org.name, exc)
        return failures

    def warm_schemas(self, skip: Iterable[tuple[str, str]] = ()) -> int:
        """Describe, now, the CRM objects each org's enabled flows write (``Flow.schema_objects``)
        so the first burst of webhooks does not wait for, nor pay, the describes (Salesforce:
        the global describe and one per object, then cached by the connection for its
        ``schema_cache_seconds``). Systems in ``skip`` (not connected) are left alone, and a
        describe that fails is logged: the first push describes again. Returns the objects
        described."""
        skipped, warmed = set(skip), 0
        for org in self.config.orgs.values():
            objects = sorted(flow_objects(org, self.flows)["crm"])
            if not objects or not org.crm or (org.name, org.crm) in skipped:
                continue
            try:
                schema = self.context(org.name).hooks.discover_schema(
                    self.connection(org.name, "crm"), objects
                )
            except Exception as exc:  # the first use describes (and reports) it again
                log.warning("cannot describe %s for %s: %s", ", ".join(objects), org.name, exc)
                continue
            warmed += len(schema.objects) if schema is not None else 0
        return warmed

    def start(self) -> Engine:
        """Connect every system, describe the CRM objects the flows write (``warm_schemas``),
        make its notification subscriptions (unless ``subscribe`` is False), start the workers
        and, if enabled, one poller per enabled flow.

        A system that cannot be reached does not stop the start: its failure is logged and the
        next use retries.
        """
        failed = self.connect_all()
        self.warm_schemas(skip=failed)
        if self.run_subscriptions:
            self.subscribe()
        self.prune_log()
        self._stop.clear()
        self.started_at = time.time()
        if self.run_executor:
            self.executor.start()
        self._running = True
        maintenance = threading.Thread(target=self._maintain_loop, name="maintenance", daemon=True)
        maintenance.start()
        self._threads.append(maintenance)
        if self.run_pollers:
            for org in self.config.orgs.values():
                for flow_name in org.flows.enabled():
                    thread = threading.Thread(
                        target=self._poll_loop,
                        args=(org.name, flow_name),
                        name=f"poller-{org.name}-{flow_name}",
                        daemon=True,
                    )
                    thread.start()
                    self._threads.append(thread)
        return self

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop pollers and workers; in-flight batches finish or are released. True if clean."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        if not self._running:
            return True
        self._running = False
        return self.executor.stop(timeout) if self.run_executor else True

    def close(self) -> None:
        """Stop, and close the store if the engine opened it."""
        self.stop()
        if self._own_store:
            self.store.close()

    def __enter__(self) -> Engine:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- status -------------------------------------------------------------------------

    def budgets(self, org: str | None = None) -> list[Budget]:
        """The API budget of every live connection (of ``org``): usage, share and what is
        paused (``eventsync.budget``; read by ``/metrics`` and embedding hosts)."""
        with self._lock:
            live = [(o, conn) for (o, _system), conn in self._connections.items()]
        found = {
            (budget.org, budget.system): budget
            for name, conn in live
            if org in (None, name) and (budget := self.budget_of(name, conn)) is not None
        }
        # Systems this process has no connection to, as the deployment's other processes saw
        # them (a receiver's /metrics, `eventsync status`).
        for (name, system), usage in self.usage_board.readings().items():
            cfg = self.config.orgs.get(name)
            if (name, system) in found or org not in (None, name) or cfg is None:
                continue
            if system in cfg.systems:  # no finding from here: a reader (status) writes none
                found[name, system] = self.budget_guard.figures(name, system, usage)
        return sorted(found.values(), key=lambda b: (b.org, b.system))

    def _count_outcomes(self, org: str, flow: str, outcomes: list[tuple[str, str]]) -> None:
        """A batch was recorded: count it in this process's metrics and the deployment's
        counters, and share the API usage its calls brought (``UsageBoard``)."""
        self.metrics.count_records(org, flow, outcomes)
        if self.metrics.known(org, flow):
            self.store.add_record_counts(org, flow, collections.Counter(outcomes))
        with self._lock:
            live = [(s, c) for (o, s), c in self._connections.items() if o == org]
        hooks = self.context(org).hooks
        for system, conn in live:
            if (usage := hooks.api_usage(conn)) is not None:
                self.usage_board.publish(org, system, usage)

    def budget_of(self, org_name: str, connection: Connection) -> Budget | None:
        """The API budget of one connection (None when its plugin reports no usage). The
        first time its share crosses the warning level, every enabled flow of the organisation
        gets a finding saying so, which ``eventsync status`` shows."""
        local = self.context(org_name).hooks.api_usage(connection)
        if local is not None:
            self.usage_board.publish(org_name, connection.system, local)
        # The deployment's latest reading: other processes may have spent since this one's.
        usage = self.usage_board.reading(org_name, connection.system) or local
        if usage is None:
            return None
        return self._budget(org_name, connection.system, usage)

    def _budget(self, org_name: str, system: str, usage: ApiUsage) -> Budget:
        budget, crossed = self.budget_guard.observe(org_name, system, usage)
        if crossed:
            lines = [
                (org_name, flow, system, "finding", budget.describe())
                for flow in self.config.org(org_name).flows.enabled()
            ]
            self.store.log_many(lines)
        return budget

    def status(self) -> list[FlowStatus]:
        """Per (org, flow): pending, leased, lag, last success and dead letters."""
        found = {(s.org, s.flow): s for s in self.store.statuses()}
        for org in self.config.orgs.values():
            for flow in org.flows.enabled():
                found.setdefault((org.name, flow), FlowStatus(org=org.name, flow=flow))
        return [found[k] for k in sorted(found)]

    def holds(self) -> list[Hold]:
        """Paused organisations and stopped flows, as every process sharing the store sees them."""
        return holds(
            self.store,
            [(org.name, flow) for org in self.config.orgs.values() for flow in org.flows.enabled()],
        )

    def wait_idle(self, timeout: float = 30.0, org: str | None = None) -> bool:
        """Block until no outbox row is pending or leased (tests, demo); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            busy = [s for s in self.store.statuses(org=org) if s.pending or s.leased]
            if not busy:
                return True
            time.sleep(0.05)
        return False


def _unstorable(system: str, org_name: str, noun: str, keys: Iterable[str]) -> Reception | None:
    """A 400 for a notification naming a key the store cannot hold (``key_problem``), so that
    nothing of it is stored and the sender is told, instead of a 500 from the database."""
    for key in keys:
        problem = key_problem(key)
        if problem is not None:
            text = f"the notification names an {noun} the state store cannot hold: it {problem}"
            log.info("rejected %s notification for %s: %s", system, org_name, text)
            return Reception(HttpResponse(400, (text + "\n").encode()), "rejected")
    return None


class _LazyConnections(Mapping[str, Connection]):
    """An org's connections by system name, each made on first access."""

    def __init__(self, engine: Engine, org_name: str) -> None:
        self._engine = engine
        self._org = org_name

    def __getitem__(self, system: str) -> Connection:
        if system not in self._engine.config.org(self._org).systems:
            raise KeyError(system)
        return self._engine.system_connection(self._org, system)

    def __iter__(self) -> Any:
        return iter(self._engine.config.org(self._org).systems)

    def __len__(self) -> int:
        return len(self._engine.config.org(self._org).systems)
