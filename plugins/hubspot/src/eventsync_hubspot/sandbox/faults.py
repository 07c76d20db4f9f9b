"""Fault injection per endpoint, latency, API call counters and HubSpot's rate limits.

Endpoints are named ``account``, ``properties``, ``schemas``, ``create``, ``update``,
``upsert``, ``read``, ``search``, ``object`` (one record by id), ``token`` (OAuth);
``*`` matches every one. A fault with ``status`` 0 only adds ``latency`` (seconds), so a latency
profile is a list of such faults, one per endpoint.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Mapping
from typing import Any, Literal

import attrs

#: Default error category by injected status.
CATEGORIES = {
    429: "RATE_LIMITS",
    423: "LOCKED",
    500: "INTERNAL_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


@attrs.frozen
class Fault:
    """An injected fault.

    :ivar endpoint: endpoint name or ``*``.
    :ivar status: HTTP status to answer with (0: do not fail, only add latency).
    :ivar category: the error body's category (default by status).
    :ivar latency: seconds to wait before answering.
    :ivar probability: chance of firing per matching request.
    :ivar times: how many times it may fire (None: until cleared).
    :ivar when: ``"before"`` answers instead of handling the request; ``"after"`` handles it
        (a write takes effect) and then answers with the fault: an answer lost in transit.
    :ivar retry_after: the ``Retry-After`` of an injected 429 (seconds).
    """

    id: int
    endpoint: str = "*"
    status: int = 503
    category: str | None = None
    message: str | None = None
    latency: float = 0.0
    probability: float = 1.0
    times: int | None = None
    when: Literal["before", "after"] = "before"
    retry_after: float = 1.0

    def body(self) -> dict[str, Any]:
        """The error body this fault answers with."""
        body: dict[str, Any] = {
            "status": "error",
            "message": self.message or f"injected {self.status}",
            "correlationId": f"fault-{self.id}",
            "category": self.category or CATEGORIES.get(self.status, f"HTTP_{self.status}"),
        }
        if self.status == 429:
            body.update(errorType="RATE_LIMIT", policyName="TEN_SECONDLY_ROLLING")
        return body


class Faults:
    """The active faults and per-endpoint call counters (thread-safe)."""

    def __init__(self, seed: int | None = None) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._fired: Counter[int] = Counter()
        self._next = 1
        self._rng = random.Random(seed)
        self.calls: Counter[str] = Counter()
        self.injected: Counter[str] = Counter()

    def add(self, spec: Mapping[str, Any]) -> Fault:
        """Add a fault from its JSON description; ValueError for an unknown key."""
        known = set(attrs.fields_dict(Fault)) - {"id"}
        unknown = sorted(set(spec) - known)
        if unknown:
            raise ValueError(f"unknown fault keys {unknown} (known: {sorted(known)})")
        with self._lock:
            fault = Fault(id=self._next, **dict(spec))
            self._next += 1
            self._faults.append(fault)
            return fault

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()

    def listed(self) -> list[dict[str, Any]]:
        """The active faults as JSON."""
        with self._lock:
            return [attrs.asdict(f) for f in self._faults]

    def draw(self, endpoint: str) -> tuple[float, Fault | None]:
        """Count a call and decide its fate: (latency to add, the fault to answer with)."""
        with self._lock:
            self.calls[endpoint] += 1
            latency, chosen = 0.0, None
            for fault in self._faults:
                if fault.endpoint not in ("*", endpoint):
                    continue
                if fault.times is not None and self._fired[fault.id] >= fault.times:
                    continue
                if self._rng.random() >= fault.probability:
                    continue
                if fault.status == 0:
                    latency += fault.latency
                    self._fired[fault.id] += 1
                elif chosen is None:
                    chosen = fault
                    latency += fault.latency
                    self._fired[fault.id] += 1
                    self.injected[f"{endpoint}:{fault.status}:{fault.when}"] += 1
            return latency, chosen

    def counters(self) -> dict[str, Any]:
        """Calls per endpoint and the faults injected."""
        with self._lock:
            return {
                "total": sum(self.calls.values()),
                "calls": dict(self.calls),
                "injected": dict(self.injected),
            }

    def reset_counters(self) -> None:
        """Start counting again."""
        with self._lock:
            self.calls.clear()
            self.injected.clear()


class RateLimiter:
    """HubSpot's limits: a rolling window (``max_calls`` per ``interval_ms``) and a daily
    allowance; ``take`` answers the headers and, when a limit is reached, the 429."""

    def __init__(self, max_calls: int, interval_ms: int, daily: int) -> None:
        self.max_calls, self.interval_ms, self.daily = max_calls, interval_ms, daily
        self._lock = threading.Lock()
        self._window: deque[float] = deque()
        self.used_today = 0

    def take(self, daily_headers: bool) -> tuple[dict[str, str], dict[str, Any] | None]:
        """Count one call: (rate-limit headers, a 429 body when a limit is reached)."""
        with self._lock:
            now = time.monotonic()
            interval = self.interval_ms / 1000
            while self._window and self._window[0] <= now - interval:
                self._window.popleft()
            refused: dict[str, Any] | None = None
            if self.used_today >= self.daily:
                refused = {"message": "You have reached your daily limit.", "policyName": "DAILY"}
            elif len(self._window) >= self.max_calls:
                refused = {
                    "message": "You have reached your ten_secondly_rolling limit.",
                    "policyName": "TEN_SECONDLY_ROLLING",
                }
            else:
                self._window.append(now)
                self.used_today += 1
            headers = {
                "X-HubSpot-RateLimit-Interval-Milliseconds": str(self.interval_ms),
                "X-HubSpot-RateLimit-Max": str(self.max_calls),
                "X-HubSpot-RateLimit-Remaining": str(max(self.max_calls - len(self._window), 0)),
            }
            if daily_headers:
                headers["X-HubSpot-RateLimit-Daily"] = str(self.daily)
                headers["X-HubSpot-RateLimit-Daily-Remaining"] = str(
                    max(self.daily - self.used_today, 0)
                )
            if refused is not None:
                reopen = (self._window[0] + interval - now) if self._window else interval
                headers["Retry-After"] = str(max(1, math.ceil(reopen)))
                refused.update(status="error", errorType="RATE_LIMIT", category="RATE_LIMITS")
            return headers, refused
