"""Webhook deliveries: change events batched, signed (v3) and POSTed to the app's target URL.

Events follow the webhooks API: ``contact.creation``, ``contact.propertyChange`` (one per
property whose value changed, with ``propertyName`` and ``propertyValue``) and
``contact.deletion``; custom objects send ``object.*`` events with their ``objectTypeId``. Up
to 100 events go in one request. A delivery answered with anything but a 2xx is sent again
(``attemptNumber`` counts), a few times quickly rather than over a day. Delivery faults
(``/_admin/webhooks``): ``duplicate`` (the chance a delivery is sent twice) and ``reorder``
(each delivery is held back and sent after the next one, its events reversed).
"""

from __future__ import annotations

import itertools
import queue
import random
import threading
import time
from typing import Any

import requests

from ..webhooks import signed_request
from .store import Change, ObjectType

MAX_EVENTS = 100


class Deliverer:
    """Posts signed event batches from a background thread."""

    def __init__(self, portal_id: str, app_id: str, secret: str, seed: int | None = None) -> None:
        self.portal_id, self.app_id, self.secret = portal_id, app_id, secret
        self.url: str | None = None
        self.duplicate = 0.0
        self.reorder = False
        self.log: list[dict[str, Any]] = []
        self._rng = random.Random(seed)
        self._events = itertools.count(1)
        self._queue: queue.Queue[list[dict[str, Any]] | None] = queue.Queue()
        self._held: list[dict[str, Any]] | None = None
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="hubspot-webhooks", daemon=True)
        self._thread.start()

    def changes(self, obj: ObjectType, changes: list[Change]) -> None:
        """The store's listener: queue the events of one write (when a target URL is set)."""
        if not self.url:
            return
        now = int(time.time() * 1000)
        events = []
        for action, record, before in changes:
            if action == "propertyChange":
                changed = [
                    n
                    for n, v in record["properties"].items()
                    if before is not None
                    and before.get(n) != v
                    and n not in ("lastmodifieddate", "hs_lastmodifieddate")
                ]
                events += [self._event(obj, action, record, now, name) for name in changed]
            else:
                events.append(self._event(obj, action, record, now, None))
        for start in range(0, len(events), MAX_EVENTS):
            self._idle.clear()
            self._queue.put(events[start : start + MAX_EVENTS])

    def _event(
        self, obj: ObjectType, action: str, record: dict[str, Any], now: int, prop: str | None
    ) -> dict[str, Any]:
        legacy = obj.name == "contacts"
        event: dict[str, Any] = {
            "eventId": next(self._events),
            "subscriptionId": 4001 if legacy else 4002,
            "portalId": int(self.portal_id) if self.portal_id.isdigit() else self.portal_id,
            "appId": int(self.app_id) if self.app_id.isdigit() else self.app_id,
            "occurredAt": now,
            "subscriptionType": f"{'contact' if legacy else 'object'}.{action}",
            "attemptNumber": 0,
            "objectId": int(record["id"]),
            "changeSource": "INTEGRATION",
        }
        if not legacy:
            event["objectTypeId"] = obj.type_id
        if prop is not None:
            event.update(propertyName=prop, propertyValue=record["properties"].get(prop) or "")
        return event

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until every queued delivery was attempted."""
        return self._idle.wait(timeout)

    def _run(self) -> None:
        while (events := self._queue.get()) is not None:
            if self.reorder and self._held is None and not self._queue.empty():
                self._held = events[::-1]  # sent after the next one
                continue
            self._deliver(events)
            if self.duplicate and self._rng.random() < self.duplicate:
                self._deliver(events)
            if self._held is not None:
                held, self._held = self._held, None
                self._deliver(held)
            if self._queue.empty():
                self._idle.set()

    def _deliver(self, events: list[dict[str, Any]]) -> None:
        url = self.url
        if not url:
            return
        for attempt in range(5):
            batch = [{**e, "attemptNumber": attempt} for e in events]
            body, headers = signed_request(self.secret, url, batch)
            try:
                status = self._session.post(
                    url, data=body, headers={**headers, "Connection": "close"}, timeout=10
                ).status_code
            except requests.RequestException:
                status = 0
            self.log.append({"url": url, "status": status, "attempt": attempt, "events": batch})
            if 200 <= status < 300 or self._stop.wait(0.1 * (attempt + 1)):
                return

    def stop(self) -> None:
        """Stop delivering."""
        self._stop.set()
        self._queue.put(None)
        self._thread.join(timeout=5)
