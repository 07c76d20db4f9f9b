"""The error class decides (docs/errors.md): one test per class through the real executor and
store, plus the decision table itself and ``eventsync status`` reporting held work."""

from __future__ import annotations

import json
import logging
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from eventsync.decisions import INTERNAL_ERROR, Decision, decide, holds
from eventsync.errors import (
    AuthenticationError,
    ConfigurationError,
    DiscoveryError,
    FatalError,
    MappingError,
    NoPluginForSystem,
    RecordError,
    RemoteError,
    RetryableError,
)
from eventsync.executor import Executor, Outcome
from eventsync.models import RemoteFailure
from eventsync.store import OutboxItem, StateStore
from eventsync.waiting import wait_until

# ``target``, ``clock`` and ``clocked_store`` are the fixtures of this directory's conftest.
Target = Any
FakeClock = Any

AUTH = AuthenticationError(
    "salesforce", "invalid_grant", "authentication failure", hint="check the connected app"
)
AUTH_TEXT = (
    "salesforce: authentication failed: invalid_grant: authentication failure "
    "(check the connected app)"
)


class Calls:
    """A job that raises ``exc`` for the first ``failing`` batches, then completes every item."""

    def __init__(self, exc: Exception, failing: int | None = None) -> None:
        self.exc = exc
        self.failing = failing
        self.batches: list[tuple[str, str, tuple[str, ...]]] = []
        self._lock = threading.Lock()

    def __call__(self, items: list[OutboxItem]) -> list[Outcome]:
        with self._lock:
            self.batches.append((items[0].org, items[0].flow, tuple(i.entity for i in items)))
            n = len(self.batches)
        if self.failing is None or n <= self.failing:
            raise self.exc
        return [Outcome.done() for _ in items]

    def count(self) -> int:
        """Batches the job was called with."""
        with self._lock:
            return len(self.batches)

    def tries(self) -> Counter[str]:
        """How often the job saw each entity (PostgreSQL workers may split a batch)."""
        with self._lock:
            return Counter(e for _, _, entities in self.batches for e in entities)


def _executor(store: StateStore, job: Callable[..., object], **kw: object) -> Executor:
    options: dict[str, object] = dict(workers=2, poll_interval=0.02, wake_on_mark=True)
    options.update(kw)
    return Executor(store, job, **options)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- the table


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (
            RecordError(
                "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Spam companies may not register", fields=["X"]
            ),
            Decision(
                "dead",
                RemoteFailure(
                    "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Spam companies may not register", ("X",)
                ),
            ),
        ),
        (
            FatalError("HTTP_403", "Forbidden: the API is not enabled"),
            Decision("dead", RemoteFailure("HTTP_403", "Forbidden: the API is not enabled")),
        ),
        (
            MappingError(["$.Email: no such field", "$.Company: required"]),
            Decision(
                "dead",
                RemoteFailure("MAPPING_FAILED", "$.Email: no such field; $.Company: required"),
            ),
        ),
        (
            RetryableError(
                "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access", retry_after=7
            ),
            Decision(
                "retry",
                RemoteFailure(
                    "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access", retryable=True
                ),
                7,
            ),
        ),
        (
            RemoteError("ODD_CODE", "a plugin gave no class"),
            Decision("retry", RemoteFailure("ODD_CODE", "a plugin gave no class", retryable=True)),
        ),
        (
            AUTH,
            Decision("pause_org", RemoteFailure("invalid_grant", AUTH_TEXT, retryable=True)),
        ),
        (
            ConfigurationError(["$.orgs.acme.systems.salesforce.login_url: missing"]),
            Decision(
                "stop_flow",
                RemoteFailure(
                    "CONFIGURATION_ERROR",
                    "configuration problems (1):\n"
                    "  - $.orgs.acme.systems.salesforce.login_url: missing",
                ),
            ),
        ),
        (
            DiscoveryError("salesforce: Lead: no access to the object"),
            Decision(
                "stop_flow",
                RemoteFailure("DISCOVERY_ERROR", "salesforce: Lead: no access to the object"),
            ),
        ),
        (
            NoPluginForSystem("authenticate", "zoho"),
            Decision(
                "stop_flow",
                RemoteFailure(
                    "CONFIGURATION_ERROR", str(NoPluginForSystem("authenticate", "zoho"))
                ),
            ),
        ),
        (
            KeyError("Email"),
            Decision(
                "retry",
                RemoteFailure(INTERNAL_ERROR, "KeyError: 'Email'", retryable=True),
                bug=True,
            ),
        ),
        (
            RuntimeError(),
            Decision(
                "retry", RemoteFailure(INTERNAL_ERROR, "RuntimeError", retryable=True), bug=True
            ),
        ),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else None,
)
def test_decide_maps_each_class(exc: Exception, expected: Decision) -> None:
    assert decide(exc) == expected


# --------------------------------------------------------------------------- dead at once


@pytest.mark.parametrize(
    ("exc", "code", "message", "fields"),
    [
        (
            RecordError(
                "FIELD_CUSTOM_VALIDATION_EXCEPTION",
                "Spam companies may not register",
                system="salesforce",
                fields=["Company"],
            ),
            "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "Spam companies may not register",
            ["Company"],
        ),
        (
            FatalError("HTTP_403", "registrations: Forbidden", system="hopin", status=403),
            "HTTP_403",
            "registrations: Forbidden",
            [],
        ),
        (
            MappingError(["$.LastName: required by Lead, mapped from nothing"]),
            "MAPPING_FAILED",
            "$.LastName: required by Lead, mapped from nothing",
            [],
        ),
    ],
    ids=["RecordError", "FatalError", "MappingError"],
)
def test_record_fatal_and_mapping_errors_dead_letter_at_once_with_the_remote_code(
    target: Target, exc: Exception, code: str, message: str, fields: list[str]
) -> None:
    store = target.open(max_attempts=5, backoff_base=0.01)
    store.mark_many("acme", "export", ["a", "b", "c"])
    job = Calls(exc)
    with _executor(store, job) as ex:
        wait_until("three dead letters", lambda: ex.stats.dead == 3)
    assert store.pending() == []
    assert job.tries() == {"a": 1, "b": 1, "c": 1}  # no retry
    letters = store.dead_letters()
    assert sorted(d.entity for d in letters) == ["a", "b", "c"]
    assert {(d.code, d.message, tuple(d.fields), d.attempts) for d in letters} == {
        (code, message, tuple(fields), 1)
    }
    lines = store.sync_log(outcome="dead")
    assert {e.message for e in lines} == {f"{code}: {message}"}
    assert ex.stats.retried == 0


# --------------------------------------------------------------------------- retryable


def test_retryable_error_backs_off_at_least_retry_after_then_dead_letters(
    clocked_store: Callable[..., StateStore], clock: FakeClock
) -> None:
    store = clocked_store(max_attempts=3, backoff_base=0.01)
    store.mark_many("acme", "export", ["a", "b"])
    job = Calls(
        RetryableError("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", retry_after=600)
    )
    with _executor(store, job) as ex:
        for attempt in (1, 2):
            wait_until(f"attempt {attempt}", lambda n=2 * attempt: ex.stats.retried == n)
            rows = store.pending()
            assert [(r.attempts, r.last_error) for r in rows] == [
                (attempt, "TotalRequests Limit exceeded.")
            ] * 2
            clock.advance(599)  # the backoff is at least retry_after: still nothing is due
            assert store.peek_due() == (0, None)
            assert job.tries() == {"a": attempt, "b": attempt}
            clock.advance(2)
        wait_until("dead letters after max_attempts", lambda: ex.stats.dead == 2)
    assert job.tries() == {"a": 3, "b": 3}
    assert {(d.code, d.message, d.attempts) for d in store.dead_letters()} == {
        ("REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.", 3)
    }


# --------------------------------------------------------------------------- bugs


def test_a_bug_is_retried_with_backoff_as_internal_error_and_logged_with_its_traceback(
    clocked_store: Callable[..., StateStore],
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = clocked_store(max_attempts=2, backoff_base=10, backoff_cap=10)
    store.mark("acme", "export", "a")
    job = Calls(ValueError("could not convert 'n/a' to a date"))
    caplog.set_level(logging.ERROR, logger="eventsync.executor")
    with _executor(store, job, workers=1) as ex:
        wait_until("the first failure", lambda: ex.stats.retried == 1)
        [row] = store.pending()
        assert (row.attempts, row.last_error) == (
            1,
            "ValueError: could not convert 'n/a' to a date",
        )
        assert store.peek_due() == (0, None)  # backing off (at least 10 * (1 - jitter) s)
        clock.advance(10.5)
        wait_until("a retryable dead letter", lambda: ex.stats.dead == 1)
    [letter] = store.dead_letters()
    assert (letter.code, letter.message, letter.attempts) == (
        INTERNAL_ERROR,
        "ValueError: could not convert 'n/a' to a date",
        2,
    )
    bugs = [r for r in caplog.records if r.exc_info and r.exc_info[0] is ValueError]
    assert len(bugs) == 2 and "acme/export" in bugs[0].getMessage()


# --------------------------------------------------------------------------- authentication


def test_auth_pause_never_dead_letters_and_clears_when_a_batch_succeeds(target: Target) -> None:
    store = target.open(max_attempts=2, backoff_base=0.01)
    store.mark_many("acme", "export", ["a", "b"])
    job = Calls(AUTH, failing=6)  # three times max_attempts
    # One worker: on PostgreSQL two workers may split the two rows into two batches.
    with _executor(store, job, workers=1, auth_pause=0.05) as ex:
        wait_until("the rows done after the credentials work again", lambda: ex.stats.done == 2)
    assert job.count() == 7
    assert store.dead_letters() == [] and store.pending() == []
    assert ex.stats.paused == 12 and ex.stats.retried == 0 and ex.stats.dead == 0
    log = Counter(e.outcome for e in store.sync_log(limit=100))
    assert log == {"marked": 2, "paused": 12, "resumed": 1, "done": 2}
    assert {e.message for e in store.sync_log(outcome="paused")} == {AUTH_TEXT}
    assert ex.paused_orgs == frozenset()
    assert holds(store, [("acme", "export")]) == []


def test_auth_pause_holds_back_the_whole_org_without_attempts_and_is_reported(
    target: Target,
) -> None:
    store = target.open(max_attempts=2, backoff_base=0.01)
    store.mark_many("acme", "export", ["a", "b", "c", "d"])
    store.mark_many("acme", "import", ["x"])

    def job(items: list[OutboxItem]) -> list[Outcome]:
        calls.append((items[0].org, items[0].flow))
        if items[0].org == "acme":
            raise AUTH
        return [Outcome.done() for _ in items]

    calls: list[tuple[str, str]] = []
    with _executor(store, job, workers=1, batch_size=2, auth_pause=3600) as ex:
        wait_until("acme paused", lambda: ex.stats.paused == 2)
        store.mark_many("globex", "export", ["g1", "g2", "g3"])  # another org keeps working
        wait_until("globex done", lambda: ex.stats.done == 3)
        assert ex.paused_orgs == {"acme"}
    # One refused login for the whole org, however many batches it has; nothing burnt.
    assert [c for c in calls if c[0] == "acme"] == [("acme", "export")]
    rows = store.pending(org="acme")
    assert len(rows) == 5
    assert all(r.attempts == 0 and r.lease_token is None for r in rows)
    assert store.dead_letters() == []
    [held] = holds(store, [("acme", "export"), ("acme", "import"), ("globex", "export")])
    assert (held.kind, held.org, held.flow, held.reason) == ("paused", "acme", "export", AUTH_TEXT)
    # The refused batch's rows carry the remote message as their last error.
    assert {r.entity: r.last_error for r in rows} == {
        "a": AUTH_TEXT,
        "b": AUTH_TEXT,
        "c": None,
        "d": None,
        "x": None,
    }


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (
            ConfigurationError(["$.orgs.acme.systems.salesforce.client_secret_env: unset"]),
            "CONFIGURATION_ERROR",
        ),
        (DiscoveryError("salesforce: Lead: the object does not exist"), "DISCOVERY_ERROR"),
    ],
    ids=["ConfigurationError", "DiscoveryError"],
)
def test_configuration_and_discovery_errors_stop_the_flow_until_restart(
    target: Target, exc: Exception, code: str
) -> None:
    store = target.open(max_attempts=1, backoff_base=0.01)
    store.mark_many("acme", "export", ["a", "b", "c"])

    def job(items: list[OutboxItem]) -> list[Outcome]:
        calls.append((items[0].flow, len(items)))
        if items[0].flow == "export":
            raise exc
        return [Outcome.done() for _ in items]

    calls: list[tuple[str, int]] = []
    with _executor(store, job, workers=1, batch_size=2) as ex:
        wait_until("the flow stopped", lambda: ex.stats.stopped == 2)
        # Other flows go on, and prove the workers kept leasing past the stopped rows.
        for n in range(3):
            store.mark("acme", "import", f"i{n}")
            wait_until(f"import {n} done", lambda n=n: ex.stats.done == n + 1)
        assert ex.stopped_flows == {("acme", "export"): str(exc)}
    assert [c for c in calls if c[0] == "export"] == [("export", 2)]  # never retried
    rows = sorted(store.pending(org="acme", flow="export"), key=lambda r: r.entity)
    assert [(r.entity, r.attempts, r.lease_token) for r in rows] == [
        ("a", 0, None),
        ("b", 0, None),
        ("c", 0, None),
    ]
    assert store.dead_letters() == []  # max_attempts=1, still nothing dead-lettered
    [held] = holds(store, [("acme", "export"), ("acme", "import")])
    assert (held.kind, held.org, held.flow, held.reason) == ("stopped", "acme", "export", str(exc))
    assert {e.message for e in store.sync_log(outcome="stopped")} == {str(exc)}
    assert [r.last_error for r in rows] == [str(exc), str(exc), None]
    assert decide(exc).failure.code == code

    # A restart (after the fix) takes the rows up again, and the flow is no longer stopped.
    with _executor(store, lambda items: [Outcome.done() for _ in items]) as again:
        wait_until("the stopped rows synced after the restart", lambda: again.stats.done == 3)
    assert holds(store, [("acme", "export")]) == []


# --------------------------------------------------------------------------- the store


def test_defer_is_no_attempt_and_lease_skips_paused_orgs_and_stopped_flows(
    clocked_store: Callable[..., StateStore], clock: FakeClock
) -> None:
    store = clocked_store(max_attempts=1)
    store.mark_many("acme", "export", ["a"])
    store.mark_many("acme", "import", ["b"])
    store.mark_many("globex", "export", ["c"])
    [a] = store.lease("w", org="acme", flow="export")
    failure = RemoteFailure("invalid_grant", "authentication failure")
    assert store.defer([a], 30, failure) == 1
    assert store.defer([a], 30, failure) == 0  # the lease is no longer ours
    [row] = store.pending(org="acme", flow="export")
    assert (row.attempts, row.lease_token, row.last_error) == (0, None, "authentication failure")
    assert [i.entity for i in store.lease("w", skip_orgs={"acme"})] == ["c"]
    assert store.lease("w", skip_flows=[("acme", "import")]) == []  # a is deferred 30 s
    assert store.peek_due(skip_flows=[("acme", "import")])[0] == 0
    clock.advance(31)
    assert [i.entity for i in store.lease("w", skip_flows=[("acme", "import")])] == ["a"]
    assert [i.entity for i in store.lease("w")] == ["b"]


def test_status_reports_a_paused_org_and_a_stopped_flow(run_cli, tmp_path) -> None:
    run_cli("init")
    config = tmp_path / "eventsync.toml"
    config.write_text(
        config.read_text().replace('state = "eventsync.sqlite"', 'state = "state.sqlite"')
    )
    store = StateStore.open(path=tmp_path / "state.sqlite")
    # The flow first (leased oldest first): once the org is paused, none of its work is leased.
    store.mark("acme", "import_registrations", "cm-1")
    store.mark("acme", "export_registrations", "reg-1")
    problem = ConfigurationError(["$.orgs.acme.flows.import_registrations: bad ticket field"])

    def job(items: list[OutboxItem]) -> list[Outcome]:
        raise AUTH if items[0].flow == "export_registrations" else problem

    try:
        with _executor(store, job, workers=1, auth_pause=3600) as ex:
            wait_until("both held", lambda: ex.stats.paused == 1 and ex.stats.stopped == 1)
    finally:
        store.close()

    result = run_cli("status", "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert [(h["kind"], h["org"], h["flow"], h["reason"]) for h in report["holds"]] == [
        ("paused", "acme", "export_registrations", AUTH_TEXT),
        ("stopped", "acme", "import_registrations", str(problem)),
    ]
    assert report["dead_letters"] == []
    text = run_cli("status")
    assert text.returncode == 1
    assert "PAUSED" in text.stdout and "STOPPED" in text.stdout
    assert "invalid_grant" in text.stdout and "fix the configuration, then restart" in text.stdout
