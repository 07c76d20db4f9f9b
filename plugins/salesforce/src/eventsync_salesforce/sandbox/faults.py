"""Fault injection per endpoint and API call counters, driven through the admin API.

Endpoints are named by category: ``token``, ``versions``, ``limits``, ``describe_global``,
``describe``, ``sobject`` (single-record CRUD and upsert), ``query`` (query and queryMore),
``collections``, ``composite``, ``bulk``; ``*`` matches every one.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any, Literal

import attrs

#: Default messages of the error codes commonly injected (Salesforce's documentation).
DEFAULT_MESSAGES = {
    "UNABLE_TO_LOCK_ROW": "unable to obtain exclusive access to this record or 1 records",
    "REQUEST_LIMIT_EXCEEDED": "TotalRequests Limit exceeded.",
    "INVALID_SESSION_ID": "Session expired or invalid",
    "SERVER_UNAVAILABLE": "Service temporarily unavailable",
}


@attrs.frozen
class Fault:
    """An injected fault.

    :ivar endpoint: category name or ``*``.
    :ivar method: HTTP method to match, or None for any.
    :ivar status: HTTP status to answer with (0: do not fail, only add latency).
    :ivar error_code: Salesforce error code of the body (None: a plain-text body).
    :ivar per_record: for ``collections``: fail each record with ``error_code`` in an HTTP 200
        result instead of failing the call.
    :ivar latency: seconds to wait before answering.
    :ivar probability: chance of firing per matching request.
    :ivar times: how many times it may fire (None: until cleared).
    :ivar when: ``"before"`` answers instead of handling the request; ``"after"`` handles it
        (the write takes effect) and then answers with the fault: an answer lost in transit.
    """

    id: int
    endpoint: str = "*"
    method: str | None = None
    status: int = 503
    error_code: str | None = None
    message: str | None = None
    per_record: bool = False
    latency: float = 0.0
    probability: float = 1.0
    times: int | None = None
    when: Literal["before", "after"] = "before"

    def body(self) -> list[dict[str, Any]] | str:
        """The error body this fault answers with."""
        if self.error_code is None:
            return self.message or "Service Unavailable"
        text = self.message or DEFAULT_MESSAGES.get(self.error_code, self.error_code)
        return [{"message": text, "errorCode": self.error_code, "fields": []}]


class Faults:
    """The active faults; thread-safe."""

    def __init__(self, seed: int | None = None) -> None:
        self._faults: list[Fault] = []
        self._fired: Counter[int] = Counter()
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._random = random.Random(seed)

    def add(self, spec: Mapping[str, Any]) -> Fault:
        """Add a fault from its JSON spec (the fields of :class:`Fault` except ``id``)."""
        allowed = {f.name for f in attrs.fields(Fault)} - {"id"}
        unknown = set(spec) - allowed
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)} (allowed: {sorted(allowed)})")
        fault = Fault(id=next(self._ids), **spec)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def list(self) -> list[dict[str, Any]]:
        """The active faults as JSON, with how often each fired."""
        with self._lock:
            return [attrs.asdict(f) | {"fired": self._fired[f.id]} for f in self._faults]

    def pick(self, endpoint: str, method: str) -> Fault | None:
        """The fault to apply to this request, if any (counts it as fired)."""
        with self._lock:
            for fault in list(self._faults):
                if fault.endpoint not in ("*", endpoint):
                    continue
                if fault.method and fault.method.upper() != method.upper():
                    continue
                if self._random.random() >= fault.probability:
                    continue
                self._fired[fault.id] += 1
                if fault.times is not None and self._fired[fault.id] >= fault.times:
                    self._faults.remove(fault)
                return fault
        return None


class Counters:
    """API calls per endpoint category, plus the daily total used for ``Sforce-Limit-Info``,
    and the peak of requests of each category served at once (``enter``/``leave``: what a test
    of concurrency limits reads, e.g. never two writes of one org at once)."""

    def __init__(self, daily_limit: int) -> None:
        self.daily_limit = daily_limit
        self.used = 0
        self._by_endpoint: Counter[str] = Counter()
        self._in_flight: Counter[str] = Counter()
        self._peak: Counter[str] = Counter()
        self._lock = threading.Lock()

    def enter(self, endpoint: str) -> None:
        """A request of ``endpoint`` started."""
        with self._lock:
            self._in_flight[endpoint] += 1
            self._peak[endpoint] = max(self._peak[endpoint], self._in_flight[endpoint])

    def leave(self, endpoint: str) -> None:
        """A request of ``endpoint`` ended."""
        with self._lock:
            self._in_flight[endpoint] -= 1

    def count(self, endpoint: str, api: bool) -> int:
        """Count one request; returns the daily total after it."""
        with self._lock:
            self._by_endpoint[endpoint] += 1
            if api:
                self.used += 1
            return self.used

    def exhausted(self) -> bool:
        """True when the daily allowance is used up."""
        with self._lock:
            return self.used >= self.daily_limit

    def snapshot(self) -> dict[str, Any]:
        """Counters as JSON."""
        with self._lock:
            return {
                "api_usage": self.used,
                "daily_limit": self.daily_limit,
                "by_endpoint": dict(self._by_endpoint),
                "total": sum(self._by_endpoint.values()),
                "peak_in_flight": dict(self._peak),
            }

    def reset(self, used: int | None = 0, daily_limit: int | None = None) -> None:
        """Reset the per-endpoint counters; optionally set the daily usage and allowance."""
        with self._lock:
            self._by_endpoint.clear()
            self._peak = Counter({k: n for k, n in self._in_flight.items() if n})
            if used is not None:
                self.used = used
            if daily_limit is not None:
                self.daily_limit = daily_limit
