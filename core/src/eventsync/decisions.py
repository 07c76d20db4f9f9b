"""The error class decides: what becomes of a batch whose job raised.

``decide(exc)`` is the one place that maps an exception to an action; the executor applies the
``Decision`` to every item of the batch. ``holds()`` reads back, from the sync log, the work
held until the operator acts (paused organisations, stopped flows) for ``eventsync status`` and
``/healthz``. The table of classes, what the engine does, where the operator sees it and what
to do is in docs/errors.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Literal

import attrs

from .errors import (
    AuthenticationError,
    ConfigurationError,
    DiscoveryError,
    FatalError,
    MappingError,
    NoPluginForSystem,
    PluginLoadError,
    RecordError,
    RemoteError,
    RetryableError,
)
from .models import RemoteFailure
from .store import LogEntry, StateStore

__all__ = ["Action", "Decision", "decide", "Hold", "holds", "INTERNAL_ERROR"]

#: The dead-letter code of an exception outside the taxonomy (a bug).
INTERNAL_ERROR = "INTERNAL_ERROR"

#: ``dead``: dead-letter every item now. ``retry``: back off and retry (a dead letter after
#: ``max_attempts``). ``pause_org``: back to pending without an attempt; the organisation's work
#: waits ``auth_pause`` seconds. ``stop_flow``: back to pending; the (org, flow) waits for a
#: restart.
Action = Literal["dead", "retry", "pause_org", "stop_flow"]


@attrs.frozen
class Decision:
    """What the executor does with every item of a batch whose job raised.

    :ivar failure: the code and message recorded on the rows, the dead letters and the log.
    :ivar retry_after: a lower bound for the backoff of a ``retry``, in seconds.
    :ivar bug: the exception is outside the taxonomy; it is logged with its traceback.
    """

    action: Action
    failure: RemoteFailure
    retry_after: float | None = None
    bug: bool = False


def decide(exc: BaseException) -> Decision:
    """The decision for an exception a job raised (see the table in docs/errors.md)."""
    if isinstance(exc, RetryableError):
        failure = RemoteFailure(exc.code, exc.message, exc.fields, retryable=True)
        return Decision("retry", failure, exc.retry_after)
    if isinstance(exc, RecordError | FatalError):
        # The remote code and text, verbatim: they are what the operator acts on.
        return Decision("dead", RemoteFailure(exc.code, exc.message, exc.fields))
    if isinstance(exc, MappingError):
        # Same code and text as a record that fails mapping inside a flow (mapping_failure).
        return Decision("dead", RemoteFailure("MAPPING_FAILED", "; ".join(exc.problems)))
    if isinstance(exc, AuthenticationError):
        failure = RemoteFailure(exc.error or "AUTHENTICATION_FAILED", str(exc), retryable=True)
        return Decision("pause_org", failure)
    if isinstance(exc, DiscoveryError):
        return Decision("stop_flow", RemoteFailure("DISCOVERY_ERROR", str(exc)))
    if isinstance(exc, ConfigurationError | NoPluginForSystem | PluginLoadError):
        # A missing or broken plugin is a deployment's configuration: fixed by a restart too.
        return Decision("stop_flow", RemoteFailure("CONFIGURATION_ERROR", str(exc)))
    if isinstance(exc, RemoteError):
        # The plugin did not say whether retrying helps: retry, and keep the remote code.
        failure = RemoteFailure(exc.code, exc.message, exc.fields, retryable=True)
        return Decision("retry", failure)
    text = str(exc)
    message = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return Decision("retry", RemoteFailure(INTERNAL_ERROR, message, retryable=True), bug=True)


@attrs.frozen
class Hold:
    """Work held back until something changes (shown by ``eventsync status`` and ``/healthz``).

    :ivar kind: ``paused``: the organisation's credentials were refused; its work is tried again
        every ``auth_pause`` seconds and the pause clears when a batch of it next succeeds.
        ``stopped``: a configuration or discovery error; the flow waits for a restart.
    :ivar flow: the stopped flow; for a pause, the flow whose batch was refused last.
    :ivar reason: the message of the failure, with the remote system's own words.
    :ivar at: when it was last seen.
    """

    kind: Literal["paused", "stopped"]
    org: str
    flow: str
    reason: str
    at: dt.datetime


#: Sync-log outcomes showing that an organisation authenticated after it was paused.
_AUTHENTICATED = ("done", "resumed")
#: Sync-log outcomes showing that a stopped (org, flow) ran again (after a restart).
_RAN = ("done", "retry", "dead", "requeued", "lost", "paused", "resumed")


def holds(store: StateStore, flows: Iterable[tuple[str, str]]) -> list[Hold]:
    """The paused organisations and stopped flows among ``flows`` ((org, flow) pairs).

    Read from the sync log, so every process sharing the store reports the same: an
    organisation is paused while its newest ``paused`` line is newer than its newest ``done``
    or ``resumed`` line; a flow is stopped while its newest ``stopped`` line is newer than
    anything else it did (it does nothing more until the engine restarts).
    """
    by_org: dict[str, list[str]] = {}
    for org, flow in flows:
        by_org.setdefault(org, []).append(flow)
    found: list[Hold] = []
    for org, names in sorted(by_org.items()):
        paused = _newest(store, org, names, ("paused",))
        if paused is not None and not _after(_newest(store, org, names, _AUTHENTICATED), paused):
            found.append(Hold("paused", org, paused.flow, paused.message, paused.at))
        for flow in sorted(names):
            stopped = _newest(store, org, [flow], ("stopped",))
            if stopped is not None and not _after(_newest(store, org, [flow], _RAN), stopped):
                found.append(Hold("stopped", org, flow, stopped.message, stopped.at))
    return found


def _newest(
    store: StateStore, org: str, flows: Sequence[str], outcomes: Sequence[str]
) -> LogEntry | None:
    # One indexed (org, flow, outcome, at) look-up each; an idle engine pays two per flow.
    lines = [
        line
        for flow in flows
        for outcome in outcomes
        for line in store.sync_log(org, flow, outcome=outcome, limit=1)
    ]
    return max(lines, key=lambda e: (e.at, e.id), default=None)


def _after(line: LogEntry | None, than: LogEntry) -> bool:
    return line is not None and (line.at, line.id) > (than.at, than.id)
