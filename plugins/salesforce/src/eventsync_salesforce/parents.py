"""Serialising writes that lock a parent record (Salesforce locks a CampaignMember's Campaign
while the member is created, updated or deleted; a second write under it at once fails with
``UNABLE_TO_LOCK_ROW``).

In one process (``eventsync run``) the connection's own lock serialises the org's writes of
such objects. With several processes (the scale-out roles) the engine offers locks they all
share (``SystemSettings.locks``): a push holds the lock of every parent its records are under,
so workers writing under different Campaigns run side by side and writes under one Campaign
take turns. The parent of a record named only by its Id (an update or delete) is read with one
query per 500 such records, only when the locks are shared. What still collides (another
client of the org) is retried in place (``push``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from eventsync.models import PushRequest

from . import soql

if TYPE_CHECKING:
    from .connection import SalesforceConnection

__all__ = ["PARENT_FIELDS", "LOCK_SCOPE", "parents_locked", "parents_of"]

#: Objects (lower case) whose writes lock a parent -> (object, the field naming the parent).
PARENT_FIELDS = {"campaignmember": ("CampaignMember", "CampaignId")}
#: The scope of the shared locks (one key per parent record Id).
LOCK_SCOPE = "salesforce:parent"
#: Record Ids per parent query.
QUERY_CHUNK = 500


@contextmanager
def parents_locked(conn: SalesforceConnection, request: PushRequest) -> Iterator[None]:
    """Hold the locks of the parents ``request`` writes under (nothing for other objects)."""
    if request.object.lower() not in PARENT_FIELDS:
        yield
        return
    shared = conn.settings.locks
    if shared is None:
        with conn.parent_lock:
            yield
        return
    with shared.hold(conn.org, LOCK_SCOPE, parents_of(conn, request)):
        yield


def parents_of(conn: SalesforceConnection, request: PushRequest) -> set[str]:
    """The parent Ids of ``request``'s records: named in their fields, or read by their Id."""
    obj, field = PARENT_FIELDS[request.object.lower()]
    found: set[str] = set()
    unnamed: list[str] = []
    for item in request.items:
        value = next((v for k, v in item.fields.items() if k.lower() == field.lower()), None)
        if value:
            found.add(str(value))
        elif item.id:
            unnamed.append(item.id)
    for start in range(0, len(unnamed), QUERY_CHUNK):
        ids = unnamed[start : start + QUERY_CHUNK]
        statement = f"SELECT Id, {field} FROM {obj} WHERE Id IN {soql.in_list(ids)}"
        found.update(_parents_read(conn, statement, field))
    return found


def _parents_read(conn: SalesforceConnection, statement: str, field: str) -> set[str]:
    """The ``field`` values of the records ``statement`` reads."""
    answer: dict[str, Any] = conn.call("parent query", lambda: conn.sf.query_all(statement))
    return {str(r[field]) for r in answer.get("records", []) if r.get(field)}
