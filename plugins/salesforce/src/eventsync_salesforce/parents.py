"""Serialising writes that lock a parent record (Salesforce locks a CampaignMember's Campaign
while the member is created or updated; a second write under it at once fails with
``UNABLE_TO_LOCK_ROW``).

With several processes (the scale-out roles) the engine offers locks they all share
(``SystemSettings.locks``): a push holds the lock of every parent its records name, so workers
writing under different Campaigns still run side by side, and writes under one Campaign take
turns. A batch naming no parent for some record (a delete, an update by Id alone), and every
batch in one process (``eventsync run``), holds the connection's own lock instead; what still
collides is retried in place (``push``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from eventsync.models import PushRequest

if TYPE_CHECKING:
    from .connection import SalesforceConnection

__all__ = ["PARENT_FIELDS", "LOCK_SCOPE", "parents_locked"]

#: Objects whose writes lock a parent -> the (lower-case) field naming that parent.
PARENT_FIELDS = {"campaignmember": "campaignid"}
#: The scope of the shared locks (one key per parent record Id).
LOCK_SCOPE = "salesforce:parent"


def parents_of(request: PushRequest) -> set[str] | None:
    """The parent Ids ``request``'s records lock; None when some record names none."""
    field = PARENT_FIELDS[request.object.lower()]
    found: set[str] = set()
    for item in request.items:
        value = next((v for k, v in item.fields.items() if k.lower() == field), None)
        if not value:
            return None
        found.add(str(value))
    return found


@contextmanager
def parents_locked(conn: SalesforceConnection, request: PushRequest) -> Iterator[None]:
    """Hold the locks of the parents ``request`` writes under (no-op for other objects)."""
    if request.object.lower() not in PARENT_FIELDS:
        yield
        return
    shared = conn.settings.locks
    parents = parents_of(request) if shared is not None else None
    if shared is None or parents is None:
        with conn.parent_lock:
            yield
        return
    with shared.hold(conn.org, LOCK_SCOPE, parents):
        yield
