"""Outbound messages: rules fire after a change commits; a worker POSTs the SOAP envelope.

Faithful to Salesforce's documentation: the envelope of the ``http://soap.sforce.com/2005/09/
outbound`` namespace with OrganizationId, ActionId, SessionId, EnterpriseUrl, PartnerUrl and
1-100 Notifications; the latest field values are sent; delivery is retried with an
exponentially growing interval (capped) until a 2xx answer with ``<Ack>true</Ack>``, and
dropped after ``max_age``. ``duplicate`` and ``reorder`` make delivery at-least-once and out
of order on purpose. Records written without "trigger workflow" (the Data Import Wizard path)
or by a user lacking a rule's ``required_permission`` fire nothing.

The envelope is built with ElementTree (stdlib) because no SOAP client library is needed to
*send* one fixed document shape.
"""

from __future__ import annotations

import logging
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import defusedxml.ElementTree as SafeET
import requests

from . import soql
from .store import Change, Store

log = logging.getLogger(__name__)

SOAPENV = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND = "http://soap.sforce.com/2005/09/outbound"
SOBJECT = "urn:sobject.enterprise.soap.sforce.com"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


@attrs.frozen
class Rule:
    """A compiled outbound message rule (see :class:`config.OutboundSpec`)."""

    name: str
    object: str
    endpoint_url: str
    fields: tuple[str, ...]
    action_id: str
    user_id: str
    condition: Any = None
    events: tuple[str, ...] = ("create", "update")
    required_permission: str | None = None
    send_session_id: bool = False


@attrs.define
class Message:
    """One queued notification."""

    notification_id: str
    rule: Rule
    record_id: str
    queued_at: float
    due: float
    attempts: int = 0
    delivered: bool = False
    dropped: bool = False
    last_status: str = ""


class Outbound:
    """The outbound message queue and its delivery worker."""

    def __init__(
        self,
        store: Store,
        org_id: str,
        base_url: str,
        *,
        has_permission: Callable[[str, str], bool],
        session_for: Callable[[str], str],
        backoff: float = 1.0,
        backoff_cap: float = 7200.0,
        max_age: float = 86400.0,
        api_version: str = "59.0",
    ) -> None:
        self.store = store
        self.org_id = org_id
        self.base_url = base_url
        self.rules: list[Rule] = []
        self.backoff = backoff
        self.backoff_cap = backoff_cap
        self.max_age = max_age
        self.duplicate = False
        self.reorder = False
        self.api_version = api_version
        self._has_permission = has_permission
        self._session_for = session_for
        self._messages: list[Message] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._http = requests.Session()
        self._thread = threading.Thread(target=self._run, name="sandbox-outbound", daemon=True)
        store.listeners.append(self.on_commit)

    def start(self) -> None:
        """Start the delivery worker."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the worker (undelivered messages stay queued in memory)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._http.close()

    # --- firing -----------------------------------------------------------------------

    def on_commit(self, changes: list[Change]) -> None:
        """Store listener: queue a notification for every change a rule matches."""
        queued = []
        for change in changes:
            if change.op not in ("create", "update") or not change.context.trigger_workflow:
                continue
            for rule in self.rules:
                if rule.object.lower() != change.object.lower() or change.op not in rule.events:
                    continue
                if rule.required_permission and not self._has_permission(
                    change.context.user_id, rule.required_permission
                ):
                    continue
                if rule.condition is not None:
                    from .query import Resolver

                    resolver = Resolver(self.store, self.store.object(rule.object))
                    if not soql.evaluate(rule.condition, change.record, resolver):
                        continue
                now = time.monotonic()
                queued.append(
                    Message(self.store.ids.new("04l"), rule, change.record["Id"], now, now)
                )
        if queued:
            with self._cond:
                self._messages.extend(queued)
                self._cond.notify_all()

    def status(self) -> list[dict[str, Any]]:
        """Every message with its delivery state (admin API)."""
        with self._cond:
            return [
                {
                    "notification_id": m.notification_id,
                    "rule": m.rule.name,
                    "record_id": m.record_id,
                    "attempts": m.attempts,
                    "delivered": m.delivered,
                    "dropped": m.dropped,
                    "last_status": m.last_status,
                }
                for m in self._messages
            ]

    def pending(self) -> int:
        """How many messages wait for delivery."""
        with self._cond:
            return sum(1 for m in self._messages if not (m.delivered or m.dropped))

    # --- delivery ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._stopping:
                    return
                now = time.monotonic()
                due = [m for m in self._messages if not (m.delivered or m.dropped) and m.due <= now]
                if not due:
                    waits = [m.due - now for m in self._messages if not (m.delivered or m.dropped)]
                    self._cond.wait(timeout=min(waits) if waits else 1.0)
                    continue
            if self.reorder:
                due.reverse()
            for group in self._group(due):
                self._deliver(group)

    @staticmethod
    def _group(messages: list[Message]) -> list[list[Message]]:
        groups: dict[str, list[Message]] = {}
        for message in messages:
            bucket = groups.setdefault(message.rule.name, [])
            if len(bucket) < 100:
                bucket.append(message)
        return list(groups.values())

    def _deliver(self, group: list[Message]) -> None:
        rule = group[0].rule
        body = self.envelope(rule, group)
        sends = 2 if self.duplicate else 1
        ok = False
        status = ""
        for _ in range(sends):
            try:
                response = self._http.post(
                    rule.endpoint_url,
                    data=body,
                    timeout=10,
                    headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
                )
                status = str(response.status_code)
                ok = 200 <= response.status_code < 300 and _acked(response.content)
            except requests.RequestException as exc:
                status = type(exc).__name__
                ok = False
        now = time.monotonic()
        with self._cond:
            for message in group:
                message.attempts += 1
                message.last_status = status
                if ok:
                    message.delivered = True
                elif now - message.queued_at > self.max_age:
                    message.dropped = True
                else:
                    delay = min(self.backoff * 2 ** (message.attempts - 1), self.backoff_cap)
                    message.due = now + delay

    def envelope(self, rule: Rule, messages: list[Message]) -> bytes:
        """The SOAP envelope for ``messages`` of one rule, with the records' latest values."""
        ET.register_namespace("soapenv", SOAPENV)
        ET.register_namespace("xsi", XSI)
        ET.register_namespace("sf", SOBJECT)
        ET.register_namespace("", OUTBOUND)
        root = ET.Element(f"{{{SOAPENV}}}Envelope")
        body = ET.SubElement(root, f"{{{SOAPENV}}}Body")
        notes = ET.SubElement(body, f"{{{OUTBOUND}}}notifications")
        org15 = self.org_id[:15]
        ET.SubElement(notes, f"{{{OUTBOUND}}}OrganizationId").text = self.org_id
        ET.SubElement(notes, f"{{{OUTBOUND}}}ActionId").text = rule.action_id
        session = ET.SubElement(notes, f"{{{OUTBOUND}}}SessionId")
        if rule.send_session_id:
            session.text = self._session_for(rule.user_id)
        else:
            session.set(f"{{{XSI}}}nil", "true")
        ET.SubElement(
            notes, f"{{{OUTBOUND}}}EnterpriseUrl"
        ).text = f"{self.base_url}/services/Soap/c/{self.api_version}/{org15}"
        ET.SubElement(
            notes, f"{{{OUTBOUND}}}PartnerUrl"
        ).text = f"{self.base_url}/services/Soap/u/{self.api_version}/{org15}"
        obj = self.store.object(rule.object)
        for message in messages:
            record = self.store.find(obj, message.record_id) or {"Id": message.record_id}
            note = ET.SubElement(notes, f"{{{OUTBOUND}}}Notification")
            ET.SubElement(note, f"{{{OUTBOUND}}}Id").text = message.notification_id
            sobject = ET.SubElement(note, f"{{{OUTBOUND}}}sObject")
            sobject.set(f"{{{XSI}}}type", f"sf:{obj.name}")
            for name in ("Id", *[f for f in rule.fields if f != "Id"]):
                value = record.get(name)
                if value is None:
                    continue
                element = ET.SubElement(sobject, f"{{{SOBJECT}}}{name}")
                element.text = _text(value)
        return b'<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _acked(content: bytes) -> bool:
    try:
        root = SafeET.fromstring(content)
    except Exception:  # noqa: BLE001 - any unparsable answer is a failed delivery
        return False
    for element in root.iter(f"{{{OUTBOUND}}}Ack"):
        return (element.text or "").strip().lower() == "true"
    return False


def compile_rule(spec: Any, action_id: str, user_id: str) -> Rule:
    """A Rule from a config :class:`OutboundSpec`."""
    condition = None
    if spec.condition:
        condition = soql.parse(f"SELECT Id FROM {spec.object} WHERE {spec.condition}").where
    return Rule(
        name=spec.name,
        object=spec.object,
        endpoint_url=spec.endpoint_url,
        fields=tuple(spec.fields),
        action_id=action_id,
        user_id=user_id,
        condition=condition,
        events=tuple(spec.events),
        required_permission=spec.required_permission,
        send_session_id=spec.send_session_id,
    )


def as_mapping(rule: Rule) -> Mapping[str, Any]:
    """A rule as JSON (admin API)."""
    return {
        "name": rule.name,
        "object": rule.object,
        "endpoint_url": rule.endpoint_url,
        "fields": list(rule.fields),
        "action_id": rule.action_id,
        "events": list(rule.events),
        "required_permission": rule.required_permission,
    }
