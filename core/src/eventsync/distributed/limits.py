"""Limits shared by every worker process: per-organisation concurrency.

At most ``[engine] org_concurrency`` batches of one organisation run at once, whichever
workers run them: each batch first holds one of the org's numbered slots. A slot is a claim in
the state store (``StateStore.claim``), which ends on the database's clock, so a worker killed
while holding one blocks nobody for longer than a lease. A drain that finds every slot taken
returns: the holders re-dispatch the flow when they finish, and the sweep does too.
"""

from __future__ import annotations

from ..store import StateStore

__all__ = ["OrgSlots", "SLOT_SCOPE"]

#: The claim scope of concurrency slots (claims are keyed by org, scope and key).
SLOT_SCOPE = "eventsync:org-slot"


class OrgSlots:
    """The concurrency slots of every organisation, in the shared store.

    :param limit: slots per organisation.
    :param seconds: how long a slot is held without renewal (a batch lease).
    """

    def __init__(self, store: StateStore, limit: int, seconds: float) -> None:
        self.store = store
        self.limit = limit
        self.seconds = seconds

    def acquire(self, org: str, holder: str) -> str | None:
        """Take a free slot of ``org`` for ``holder``; its key, or None when all are taken."""
        for n in range(self.limit):
            key = f"slot-{n}"
            if self.store.claim(org, SLOT_SCOPE, [key], holder, self.seconds):
                return key
        return None

    def renew(self, org: str, key: str, holder: str) -> bool:
        """Extend ``holder``'s slot; False when it expired and someone else took it."""
        return bool(self.store.claim(org, SLOT_SCOPE, [key], holder, self.seconds))

    def release(self, org: str, key: str, holder: str) -> None:
        """Give the slot back."""
        self.store.release_claims(org, SLOT_SCOPE, [key], holder)
