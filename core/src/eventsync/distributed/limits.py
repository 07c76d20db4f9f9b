"""Limits shared by every worker process: per-organisation concurrency.

At most ``[engine] org_concurrency`` batches of one organisation run at once, whichever
workers run them: each batch first holds one of the org's numbered slots. A slot is a claim in
the state store (``StateStore.claim``), which ends on the database's clock, so a worker killed
while holding one blocks nobody for longer than a lease. A drain that finds every slot taken
returns: the holders re-dispatch the flow when they finish, and the sweep does too.

While a drain holds a slot, a thread of the process renews it every third of a lease (as the
executor's heartbeat renews batch leases and ``StoreLocks`` renews parent locks): a batch
slower than a lease keeps its slot rather than let another drain of the org start beside it.
A killed process renews nothing, so its slots still end with a lease.
"""

from __future__ import annotations

import logging
import threading

from ..store import StateStore

__all__ = ["OrgSlots", "SLOT_SCOPE"]

log = logging.getLogger("eventsync.distributed")

#: The claim scope of concurrency slots (claims are keyed by org, scope and key).
SLOT_SCOPE = "eventsync:org-slot"


class OrgSlots:
    """The concurrency slots of every organisation, in the shared store.

    :param limit: slots per organisation.
    :param seconds: how long a slot is held without renewal (a batch lease).
    :param renew_every: seconds between renewals of the slots held (default a third of
        ``seconds``).
    """

    def __init__(
        self,
        store: StateStore,
        limit: int,
        seconds: float,
        renew_every: float | None = None,
    ) -> None:
        if limit < 1:
            raise ValueError(f"org_concurrency must be at least 1, not {limit}")
        self.store = store
        self.limit = limit
        self.seconds = seconds
        self.renew_every = seconds / 3 if renew_every is None else renew_every
        #: Renewals made, and held slots a renewal found taken by others (renewed too late).
        self.renewals = 0
        self.lost = 0
        # Every slot held now: (org, key, holder).
        self._held: set[tuple[str, str, str]] = set()
        self._held_lock = threading.Lock()
        self._closed = threading.Event()
        self._renewer: threading.Thread | None = None

    def acquire(self, org: str, holder: str) -> str | None:
        """Take a free slot of ``org`` for ``holder`` and keep it renewed until ``release``;
        its key, or None when all are taken."""
        for n in range(self.limit):
            key = f"slot-{n}"
            if self.store.claim(org, SLOT_SCOPE, [key], holder, self.seconds):
                with self._held_lock:
                    self._held.add((org, key, holder))
                self._start_renewing()
                return key
        return None

    def renew(self, org: str, key: str, holder: str) -> bool:
        """Extend ``holder``'s slot; False when it expired and someone else took it."""
        return bool(self.store.claim(org, SLOT_SCOPE, [key], holder, self.seconds))

    def release(self, org: str, key: str, holder: str) -> None:
        """Give the slot back (and stop renewing it)."""
        # Untracked first, under the lock a renewal holds: no renewal re-takes it after.
        with self._held_lock:
            self._held.discard((org, key, holder))
        self.store.release_claims(org, SLOT_SCOPE, [key], holder)

    def held(self) -> int:
        """How many slots this process holds now."""
        with self._held_lock:
            return len(self._held)

    def holds(self, org: str, key: str, holder: str) -> bool:
        """Whether ``holder`` still holds the slot (False once a renewal found it taken)."""
        with self._held_lock:
            return (org, key, holder) in self._held

    def release_all(self) -> int:
        """Release every slot this process holds (the worker's stop timeout); returns how many."""
        with self._held_lock:
            held, self._held = self._held, set()
        for org, key, holder in held:
            self.store.release_claims(org, SLOT_SCOPE, [key], holder)
        return len(held)

    def close(self) -> None:
        """Stop renewing (the slots still held then end with their lease)."""
        self._closed.set()

    def _start_renewing(self) -> None:
        with self._held_lock:
            if self._renewer is None and not self._closed.is_set():
                self._renewer = threading.Thread(
                    target=self._renew, name="slot-renewer", daemon=True
                )
                self._renewer.start()

    def _renew(self) -> None:
        while not self._closed.wait(self.renew_every):
            self.renew_held()

    def renew_held(self) -> int:
        """Renew every slot this process holds (the renewer thread's round); returns how many
        were lost: taken by another drain because this process renewed too late."""
        with self._held_lock:
            slots = list(self._held)
        lost = 0
        for slot in slots:
            org, key, holder = slot
            with self._held_lock:  # still held? (a release waits for this renewal)
                if slot not in self._held:
                    continue
                try:
                    kept = self.renew(org, key, holder)
                except Exception:  # the next renewal tries again, well within the lease
                    log.warning("could not renew slot %s of %s", key, org, exc_info=True)
                    continue
                self.renewals += 1
                if not kept:  # its drain stops after the batch in flight (``holds``)
                    self.lost += 1
                    self._held.discard(slot)
            if not kept:
                lost += 1
                log.warning("slot %s of %s was taken by another drain before its renewal", key, org)
        return lost
