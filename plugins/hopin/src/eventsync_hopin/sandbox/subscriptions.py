"""dataSubscription deliveries: signed POSTs to each subscriber, retried until acknowledged.

Hopin documents only the subscription body (``configuration.url``, ``configuration.type``,
``configuration.expiresAt``, ``signals``). Everything here is an assumption, configurable
through the sandbox options: the signal names (``registrationCreated``, ``registrationUpdated``,
``magicLinkCreated``, ``magicLinkAccepted``, ``attendanceRecorded``), the payload shape, the
signature (HMAC-SHA256 of the raw body, hex, ``sha256=`` prefix, header ``X-Hopin-Signature``)
and the retry schedule (exponential from ``delivery_backoff`` up to ``delivery_backoff_max``).
Deliveries go one after another by default; ``delivery_concurrency`` sends up to that many at
once, each on its own connection, as a sender with several workers does (their order is then
not kept).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any

import attrs
import requests

from .ids import iso, new_id, now, parse_iso
from .store import TYPES, Store

log = logging.getLogger(__name__)

SIGNALS = (
    "registrationCreated",
    "registrationUpdated",
    "magicLinkCreated",
    "magicLinkAccepted",
    "attendanceRecorded",
)


def sign(secret: str, body: bytes, algorithm: str = "sha256") -> str:
    """The signature header value: ``<algorithm>=<hex HMAC of body>``."""
    digest = hmac.new(secret.encode(), body, getattr(hashlib, algorithm)).hexdigest()
    return f"{algorithm}={digest}"


@attrs.define
class Delivery:
    """One payload on its way to one subscriber."""

    id: str
    subscription_id: str
    url: str
    signal: str
    body: bytes
    attempts: int = 0
    next_at: float = 0.0
    delivered: bool = False
    in_flight: bool = False
    last_status: int | None = None
    last_error: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready summary (the body decoded)."""
        return {
            "id": self.id,
            "subscriptionId": self.subscription_id,
            "url": self.url,
            "signal": self.signal,
            "attempts": self.attempts,
            "delivered": self.delivered,
            "lastStatus": self.last_status,
            "lastError": self.last_error,
            "payload": json.loads(self.body),
        }


class Deliverer:
    """Turns store signals into deliveries and sends them from ``concurrency`` background
    threads (one by default: in order)."""

    def __init__(
        self,
        store: Store,
        secret: str,
        *,
        header: str = "X-Hopin-Signature",
        algorithm: str = "sha256",
        backoff: float = 0.2,
        backoff_max: float = 30.0,
        timeout: float = 5.0,
        concurrency: int = 1,
    ) -> None:
        if concurrency < 1:
            raise ValueError("delivery_concurrency must be at least 1")
        self.store = store
        self.secret = secret
        self.header = header
        self.algorithm = algorithm
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.timeout = timeout
        self.deliveries: list[Delivery] = []
        self.cond = threading.Condition()
        self.stopping = False
        self.drop_next = 0
        self.sessions = [requests.Session() for _ in range(concurrency)]
        self.threads = [
            threading.Thread(
                target=self._run, args=(session,), name=f"hopin-sandbox-deliveries-{n}", daemon=True
            )
            for n, session in enumerate(self.sessions)
        ]
        store.listeners.append(self.on_signal)

    def start(self) -> None:
        """Start the delivery threads."""
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        """Stop the delivery threads (pending deliveries are dropped)."""
        with self.cond:
            self.stopping = True
            self.cond.notify_all()
        for thread in self.threads:
            if thread.is_alive():
                thread.join(timeout=5)
        for session in self.sessions:
            session.close()

    def drop(self, count: int) -> None:
        """Silently lose the next ``count`` signals (a missed webhook, for poller tests)."""
        with self.cond:
            self.drop_next = max(0, int(count))

    def on_signal(
        self, signal: str, event_id: str, collection: str, item: Mapping[str, Any]
    ) -> None:
        """Queue one delivery per live subscription of the event that listens to ``signal``."""
        with self.cond:
            if self.drop_next > 0:
                self.drop_next -= 1
                return
        moment = now()
        for sub in self.store.find(
            "dataSubscriptions", lambda s: s["attributes"]["eventId"] == event_id
        ):
            attrs_ = sub["attributes"]
            config = attrs_.get("configuration") or {}
            expires = config.get("expiresAt")
            if expires and parse_iso(expires) <= moment:
                continue
            if signal not in (attrs_.get("signals") or []) and "*" not in (
                attrs_.get("signals") or []
            ):
                continue
            event = self.store.get("events", event_id)
            payload = {
                "id": new_id(),
                "signal": signal,
                "occurredAt": iso(moment),
                "subscriptionId": sub["id"],
                "organizationId": event["attributes"]["organizationId"],
                "eventId": event_id,
                "data": {
                    "id": item["id"],
                    "type": TYPES[collection],
                    "attributes": item["attributes"],
                },
            }
            body = json.dumps(payload).encode()
            delivery = Delivery(payload["id"], sub["id"], config["url"], signal, body)
            with self.cond:
                self.deliveries.append(delivery)
                self.cond.notify_all()

    def log(self) -> list[dict[str, Any]]:
        """Every delivery so far, oldest first."""
        with self.cond:
            return [d.to_json() for d in self.deliveries]

    def _due(self) -> tuple[Delivery | None, float]:
        moment = time.monotonic()
        soonest = 3600.0
        for delivery in self.deliveries:
            if delivery.delivered or delivery.in_flight:
                continue
            if delivery.next_at <= moment:
                return delivery, 0.0
            soonest = min(soonest, delivery.next_at - moment)
        return None, soonest

    def _run(self, session: requests.Session) -> None:
        while True:
            with self.cond:
                if self.stopping:
                    return
                delivery, wait = self._due()
                if delivery is None:
                    self.cond.wait(timeout=wait)
                    continue
                delivery.in_flight = True  # no other thread takes it meanwhile
            self._attempt(session, delivery)

    def _attempt(self, session: requests.Session, delivery: Delivery) -> None:
        headers = {
            "Content-Type": "application/json",
            self.header: sign(self.secret, delivery.body, self.algorithm),
            "User-Agent": "hopin-sandbox-deliveries",
        }
        status: int | None = None
        error = ""
        try:
            response = session.post(
                delivery.url, data=delivery.body, headers=headers, timeout=self.timeout
            )
            status = response.status_code
            error = "" if response.ok else response.text[:200]
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self.cond:
            delivery.in_flight = False
            delivery.attempts += 1
            delivery.last_status = status
            delivery.last_error = error
            if status is not None and 200 <= status < 300:
                delivery.delivered = True
            else:
                delay = min(self.backoff * 2 ** (delivery.attempts - 1), self.backoff_max)
                delivery.next_at = time.monotonic() + delay
