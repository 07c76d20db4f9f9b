"""Schema discovery: global and per-object describe into the core Schema, cached per
connection with a TTL and invalidated when Salesforce answers INVALID_FIELD."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from eventsync.errors import DiscoveryError, EventsyncError
from eventsync.models import ObjectSchema, Schema

from . import convert

if TYPE_CHECKING:
    from .connection import SalesforceConnection

#: Objects described when discover_schema is asked for the default set.
DEFAULT_OBJECTS = (
    "Lead",
    "Contact",
    "Account",
    "Campaign",
    "CampaignMember",
    "CampaignMemberStatus",
)


class SchemaCache:
    """Describe results per object name with a time-to-live."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._objects: dict[str, tuple[float, ObjectSchema]] = {}
        self._names: tuple[float, dict[str, str]] | None = None
        self._lock = threading.Lock()
        # Held while describing: workers that miss the cache together (a runner's first
        # batches) wait for one describe instead of each making its own API call.
        self._filling = threading.RLock()
        self.describes = 0

    def invalidate(self, name: str | None = None) -> None:
        """Forget one object (or everything) so the next use describes again."""
        with self._lock:
            if name is None:
                self._objects.clear()
                self._names = None
            else:
                self._objects.pop(name.lower(), None)

    def names(self, conn: SalesforceConnection) -> dict[str, str]:
        """Lower-cased object name -> API name, from the global describe."""
        with self._filling:
            with self._lock:
                if self._names and time.monotonic() - self._names[0] < self.ttl:
                    return self._names[1]
            body = _describe(conn, "global describe", lambda: conn.sf.describe())
            names = {entry["name"].lower(): entry["name"] for entry in body.get("sobjects", ())}
            with self._lock:
                self._names = (time.monotonic(), names)
            return names

    def object(self, conn: SalesforceConnection, name: str) -> ObjectSchema:
        """The described object, from the cache when fresh."""
        key = name.lower()
        with self._lock:
            cached = self._objects.get(key)
            if cached and time.monotonic() - cached[0] < self.ttl:
                return cached[1]
        with self._filling:
            return self._describe_object(conn, key, name)

    def _describe_object(self, conn: SalesforceConnection, key: str, name: str) -> ObjectSchema:
        with self._lock:  # described while this thread waited for the one describing
            cached = self._objects.get(key)
            if cached and time.monotonic() - cached[0] < self.ttl:
                return cached[1]
        api_name = self.names(conn).get(key)
        if api_name is None:
            raise DiscoveryError(
                f"salesforce: org {conn.org!r} has no object {name!r} (or the "
                "integration user cannot see it); check the object's API name "
                "and the user's permissions"
            )
        sftype = getattr(conn.sf, api_name)
        body = _describe(conn, f"describe {api_name}", lambda: sftype.describe())
        schema = convert.object_schema(body)
        with self._lock:
            self._objects[key] = (time.monotonic(), schema)
            self.describes += 1
        return schema


def _describe(conn: SalesforceConnection, what: str, fn):  # type: ignore[no-untyped-def]
    try:
        return conn.call(what, fn)
    except EventsyncError as exc:
        if isinstance(exc, DiscoveryError):
            raise
        from eventsync.errors import AuthenticationError, RetryableError

        if isinstance(exc, (AuthenticationError, RetryableError)):
            raise
        raise DiscoveryError(f"salesforce: {what} failed for org {conn.org!r}: {exc}") from exc


def discover(conn: SalesforceConnection, objects: Sequence[str] | None) -> Schema:
    """The Schema of ``objects`` (default: :data:`DEFAULT_OBJECTS` present in the org)."""
    if objects is None:
        available = conn.schema.names(conn)
        objects = [name for name in DEFAULT_OBJECTS if name.lower() in available]
    described = {}
    for name in objects:
        schema = conn.schema.object(conn, name)
        described[schema.name] = schema
    return Schema(system=convert.SYSTEM, objects=described)
