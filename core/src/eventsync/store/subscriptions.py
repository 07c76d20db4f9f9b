"""The notification subscriptions eventsync made on remote systems (``subscribe`` hook).

Remembered so that a later ``eventsync run`` or ``eventsync subscribe`` (in any process sharing
the store) renews its own subscriptions and ends those the settings no longer ask for, instead
of leaving them delivering to an old URL for ever.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from ..models import Subscription
from .base import StoreBase

__all__ = ["SubscriptionOps"]


class SubscriptionOps(StoreBase):
    """Subscription operations of ``StateStore``."""

    def subscriptions(self, org: str, system: str) -> list[Subscription]:
        """The subscriptions eventsync made for ``org`` on ``system``, oldest id first."""
        t = self.tables.subscriptions
        q = sa.select(t).where(t.c.org == org, t.c.system == system).order_by(t.c.subscription_id)
        with self._read() as conn:
            return [
                Subscription(system, r.subscription_id, r.target, r.expires_at)
                for r in conn.execute(q)
            ]

    def replace_subscriptions(self, org: str, system: str, active: Sequence[Subscription]) -> None:
        """Remember exactly ``active`` as the subscriptions of ``org`` on ``system``."""
        t = self.tables.subscriptions
        with self._tx() as conn:
            now = self._now(conn)
            conn.execute(sa.delete(t).where(t.c.org == org, t.c.system == system))
            if active:
                conn.execute(
                    t.insert(),
                    [
                        dict(
                            org=org,
                            system=system,
                            subscription_id=s.id,
                            target=s.target,
                            expires_at=s.expires_at,
                            updated_at=now,
                        )
                        for s in active
                    ],
                )
