"""The dataSubscription behind the ``subscribe`` hook: created when ``webhook_url`` is set,
renewed before it expires, and stale ones (an earlier ``webhook_url``) ended.

Hopin documents ``POST /v1/events/{eventId}/dataSubscriptions`` with ``configuration.url``,
``configuration.type``, ``configuration.expiresAt`` and ``signals``; no list, renew or delete
route. Renewal is therefore a new POST with a later ``expiresAt`` (the sandbox treats the same
event, URL and type as the same subscription), and ending a stale subscription is a POST of
its URL expiring ``webhook_retire_after`` seconds ahead. Which subscriptions are eventsync's is
what the engine remembers in its state store (``previous``). Signal names are configurable.
Nothing here runs from ``authenticate`` or a pull: only ``eventsync run`` and ``eventsync
subscribe`` change subscriptions.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from eventsync.errors import AuthenticationError, EventsyncError
from eventsync.models import Subscription, SubscriptionReport

from .auth import HopinConnection
from .convert import SYSTEM, parse_resource, wire_time

log = logging.getLogger(__name__)


def post_subscription(connection: HopinConnection, url: str, expires: dt.datetime) -> Subscription:
    """POST a dataSubscription to ``url`` for the connection's event, expiring at ``expires``."""
    options = connection.options
    body = {
        "data": {
            "type": "dataSubscription",
            "attributes": {
                "configuration": {
                    "url": url,
                    "type": options.webhook_type,
                    "expiresAt": wire_time(expires),
                },
                "signals": list(options.webhook_signals),
            },
        }
    }
    created = parse_resource(
        connection.http.request(
            "POST", f"/v1/events/{connection.event_id}/dataSubscriptions", json_body=body
        ).json()
    )
    return Subscription(SYSTEM, str(created.id), url, expires)


def subscribe(
    connection: HopinConnection,
    previous: Sequence[Subscription],
    now: dt.datetime | None = None,
) -> SubscriptionReport:
    """Create or renew the subscription to ``webhook_url`` (when it expires within
    ``webhook_renew_before``) and end the ``previous`` ones to any other URL.

    A stale subscription that cannot be ended stays in ``active``, so the next call tries
    again. A failure to create the wanted one raises (and is kept in
    ``connection.subscription_error``, which ``preflight`` reports).
    """
    options = connection.options
    moment = now or dt.datetime.now(dt.UTC)
    wanted = options.webhook_url if connection.event_id else ""
    active: list[Subscription] = []
    created: list[str] = []
    removed: list[Subscription] = []
    if wanted:
        mine = [p for p in previous if p.target == wanted and p.expires_at is not None]
        current = max(mine, key=lambda p: p.expires_at or moment, default=None)
        renew_at = (
            current.expires_at - dt.timedelta(seconds=options.webhook_renew_before)
            if current is not None and current.expires_at is not None
            else moment
        )
        if current is None or renew_at <= moment:
            try:
                current = post_subscription(
                    connection, wanted, moment + dt.timedelta(seconds=options.webhook_ttl)
                )
            except EventsyncError as exc:
                connection.subscription_error = str(exc)
                raise
            created.append(current.id)
        active.append(current)
        connection.subscription = {
            "id": current.id,
            "expiresAt": current.expires_at,
            "url": wanted,
        }
        connection.subscription_error = ""
    for stale in previous:
        if stale.target == wanted:
            continue
        try:
            post_subscription(
                connection,
                stale.target,
                moment + dt.timedelta(seconds=options.webhook_retire_after),
            )
        except AuthenticationError:
            raise
        except EventsyncError as exc:
            log.warning(
                "hopin: the stale dataSubscription to %s (org %s) could not be ended yet: %s",
                stale.target,
                connection.org,
                exc,
            )
            active.append(stale)
            continue
        removed.append(stale)
    return SubscriptionReport(tuple(active), tuple(created), tuple(removed))
