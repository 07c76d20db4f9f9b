"""Taking in a notification: its marks and the ids it is recognised by, in one transaction.

A webhook burst is a transaction per delivery; doing the re-send check, the marks and the
remembering of the ids in one (instead of three) keeps the receiving side's cost per delivery
down, and makes "marked but not remembered" impossible rather than merely harmless.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .outbox import OutboxOps, _new_row
from .seen import SeenNotificationOps, notification_key

__all__ = ["NotificationOps"]


class NotificationOps(OutboxOps, SeenNotificationOps):
    """``accept_notification`` of ``StateStore``."""

    def accept_notification(
        self,
        org: str,
        system: str,
        marks: Mapping[str, Mapping[str, Any]],
        *,
        ids: Sequence[str] = (),
        horizon: float = 0.0,
        hint: str | None = None,
    ) -> int | None:
        """Mark ``marks`` (flow -> entity -> payload or None) and remember ``ids`` for
        ``horizon`` seconds, in one transaction; returns how many marks were written, or None
        (nothing written) when every one of ``ids`` was received within its horizon."""
        keys = list(dict.fromkeys(notification_key(i) for i in ids if i))
        remember = bool(keys) and horizon > 0
        total = 0
        with self._tx() as conn:
            now = self._now(conn)
            if remember and self._seen_in(conn, now, org, system, ids) >= {i for i in ids if i}:
                return None
            for flow, entities in marks.items():
                if not entities:
                    continue
                rows = [_new_row(org, flow, e, p, hint, now) for e, p in entities.items()]
                self._upsert_many(conn, rows)
                self._log_marks(conn, org, flow, list(entities), hint, now)
                total += len(rows)
            if remember:
                self._remember_in(conn, now, org, system, keys, horizon)
        if total:
            self._notify_marked()
        return total
