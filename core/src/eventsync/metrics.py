"""The engine's Prometheus metrics, with prometheus_client, in a registry of the engine's own.

Counted as work happens: records by outcome and error class, the time of every push and pull
call, notifications by result. Read at scrape time (``server._EngineCollector``): outbox depth,
oldest pending age, API usage and limit. Every label value comes from the configuration (its
organisations, flows and systems) or from a fixed list (outcomes, error classes, results): a
name that is not configured is never a label, so requests to made-up URLs cannot grow the
number of series.
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from .config import Config
from .store import RecordCount

log = logging.getLogger("eventsync.metrics")

__all__ = ["EngineMetrics", "ERROR_CLASSES", "NO_ERROR"]

#: ``error_class`` label values: what kind of failure (docs/errors.md), ``none`` for success.
NO_ERROR = "none"
ERROR_CLASSES = (
    NO_ERROR,
    "retryable",
    "record",
    "mapping",
    "authentication",
    "configuration",
    "bug",
)
#: Seconds: remote calls take from milliseconds to the client's timeout.
_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class EngineMetrics(Collector):
    """The counters and histograms one engine updates; a ``Collector`` for any registry."""

    def __init__(
        self, config: Config, shared: Callable[[], Sequence[RecordCount]] | None = None
    ) -> None:
        self.config = config
        #: Reads the deployment's record counters (``StateStore.record_counts``) at scrape time.
        self.shared = shared
        self.records = Counter(
            "eventsync_records_total",
            "Records a batch finished, by outcome (done, retry, dead, requeued, lost, paused, "
            "stopped) and error class (none, retryable, record, mapping, authentication, "
            "configuration, bug)",
            ["org", "flow", "outcome", "error_class"],
            registry=None,
        )
        self.batches = Counter(
            "eventsync_batches_total", "Batches run", ["org", "flow"], registry=None
        )
        self.calls = Histogram(
            "eventsync_remote_call_duration_seconds",
            "Time of each remote call a flow made: push (a write call) or pull (a read, until "
            "its last record arrived)",
            ["org", "system", "call"],
            buckets=_BUCKETS,
            registry=None,
        )
        self.notifications = Counter(
            "eventsync_notifications_total",
            "Notifications received, by result (accepted, duplicate, ignored, rejected, error) "
            "and HTTP status",
            ["org", "system", "result", "status"],
            registry=None,
        )
        self.unrouted = Counter(
            "eventsync_notifications_unrouted_total",
            "Requests under /hooks naming an organisation or system that is not configured "
            "(answered 404 or 405; no label, so they cannot create series)",
            registry=None,
        )
        self.marked = Counter(
            "eventsync_notification_entities_total",
            "Entities notifications marked for sync (the work they caused)",
            ["org", "system"],
            registry=None,
        )

    def known(self, org: str, flow: str | None = None, system: str | None = None) -> bool:
        """Whether these names are configured (only configured names become labels)."""
        cfg = self.config.orgs.get(org)
        if cfg is None:
            return False
        if flow is not None and flow not in cfg.flows.enabled():
            return False
        return system is None or system in cfg.systems

    def count_records(self, org: str, flow: str, outcomes: list[tuple[str, str]]) -> None:
        """Count a batch's ``(outcome, error_class)`` pairs."""
        if not self.known(org, flow):
            return
        self.batches.labels(org, flow).inc()
        for (outcome, error_class), n in collections.Counter(outcomes).items():
            self.records.labels(org, flow, outcome, error_class).inc(n)

    def observe_call(self, org: str, system: str, call: str, seconds: float) -> None:
        """Record the duration of one push or pull call."""
        if self.known(org, system=system):
            self.calls.labels(org, system, call).observe(seconds)

    def collect(self) -> Iterator[Any]:
        """Every metric of this engine (for a registry it is registered with)."""
        for metric in (
            self.records,
            self.batches,
            self.calls,
            self.notifications,
            self.unrouted,
            self.marked,
        ):
            yield from metric.collect()
        if self.shared is not None:
            yield from self._deployment_records()

    def _deployment_records(self) -> Iterator[Any]:
        # Every process adds its batches to the store's counters, so any one process's scrape
        # gives the deployment's totals (``eventsync_records_total`` counts this process only).
        family = CounterMetricFamily(
            "eventsync_deployment_records",
            "Records every process of the deployment finished (the shared state store's "
            "counters), by outcome and error class; the same figures from every process",
            labels=["org", "flow", "outcome", "error_class"],
        )
        try:
            counts = self.shared() if self.shared is not None else ()
        except Exception:  # a scrape must answer even when the store does not
            log.warning("could not read the deployment's record counters", exc_info=True)
            counts = ()
        for c in counts:
            if self.known(c.org, c.flow):
                family.add_metric([c.org, c.flow, c.outcome, c.error_class], c.count)
        yield family

    def registry(self) -> CollectorRegistry:
        """A new registry holding these metrics."""
        registry = CollectorRegistry()
        registry.register(self)
        return registry
