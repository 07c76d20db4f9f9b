"""Injected faults and API call counters.

A fault rule matches requests by method and path pattern (``fnmatch``, e.g.
``/v1/tickets/*/magicLinks``) and then answers with an HTTP status (429 with ``Retry-After``,
500, 503 ...), adds latency, or both. ``when="after"`` lets the request take effect first and
then fails the response, like a reply lost on the way back. A rule fires with ``probability``
and at most ``count`` times (None: unlimited).
"""

from __future__ import annotations

import fnmatch
import random
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

import attrs

from .ids import new_id

_RULE_KEYS = (
    "method",
    "path",
    "status",
    "retry_after",
    "latency",
    "probability",
    "count",
    "when",
    "body",
)


@attrs.define
class FaultRule:
    """One fault: which requests, what happens, how often."""

    id: str
    path: str = "*"
    method: str = "*"
    status: int | None = None
    retry_after: float | None = None
    latency: float = 0.0
    probability: float = 1.0
    count: int | None = None
    when: str = "before"
    body: str | None = None
    fired: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready copy."""
        return attrs.asdict(self)


def rule_from_json(body: Mapping[str, Any]) -> FaultRule:
    """Build a rule from the admin API body; ValueError on nonsense."""
    unknown = set(body) - set(_RULE_KEYS)
    if unknown:
        raise ValueError(f"unknown fault keys: {', '.join(sorted(unknown))}")
    rule = FaultRule(id=new_id(), **dict(body))
    if rule.status is None and not rule.latency:
        raise ValueError("a fault needs a status, a latency, or both")
    if rule.status is not None and not 400 <= int(rule.status) <= 599:
        raise ValueError("status must be 4xx or 5xx")
    if rule.when not in ("before", "after"):
        raise ValueError("when must be 'before' or 'after'")
    if not 0.0 <= float(rule.probability) <= 1.0:
        raise ValueError("probability must be between 0 and 1")
    return rule


class Faults:
    """The active rules and the call counters (thread-safe)."""

    def __init__(self, seed: int | None = None) -> None:
        self.lock = threading.Lock()
        self.rules: list[FaultRule] = []
        self.calls: Counter[str] = Counter()
        self.random = random.Random(seed)
        self.in_flight = 0
        self.peak_in_flight = 0

    def add(self, rule: FaultRule) -> FaultRule:
        """Activate a rule."""
        with self.lock:
            self.rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule."""
        with self.lock:
            self.rules.clear()

    def count_call(self, key: str) -> None:
        """Count one API call under ``"METHOD /v1/route/<param>"``."""
        with self.lock:
            self.calls[key] += 1

    def enter(self) -> None:
        """An API request started (for the peak of requests served at once)."""
        with self.lock:
            self.in_flight += 1
            self.peak_in_flight = max(self.peak_in_flight, self.in_flight)

    def leave(self) -> None:
        """An API request ended."""
        with self.lock:
            self.in_flight -= 1

    def counters(self) -> dict[str, Any]:
        """``{"total": n, "calls": {key: n}, "peak_in_flight": n}``."""
        with self.lock:
            return {
                "total": sum(self.calls.values()),
                "calls": dict(self.calls),
                "peak_in_flight": self.peak_in_flight,
            }

    def reset_counters(self) -> None:
        """Zero every counter (and the in-flight peak)."""
        with self.lock:
            self.calls.clear()
            self.peak_in_flight = self.in_flight

    def pick(self, method: str, path: str, when: str) -> FaultRule | None:
        """The first rule that fires for this request at this stage, consuming one of its count."""
        with self.lock:
            for rule in self.rules:
                if rule.when != when:
                    continue
                if rule.method != "*" and rule.method.upper() != method.upper():
                    continue
                if not fnmatch.fnmatchcase(path, rule.path):
                    continue
                if rule.count is not None and rule.fired >= rule.count:
                    continue
                if self.random.random() >= rule.probability:
                    continue
                rule.fired += 1
                return attrs.evolve(rule)
        return None
