"""Keeping a dataSubscription alive: created when ``webhook_url`` is set, renewed before it expires.

Hopin documents ``POST /v1/events/{eventId}/dataSubscriptions`` with ``configuration.url``,
``configuration.type``, ``configuration.expiresAt`` and ``signals``; no list, renew or delete
route. Renewal is therefore a new POST with a later ``expiresAt`` (the sandbox treats the same
event, URL and type as the same subscription). Signal names are configurable.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from eventsync.errors import AuthenticationError, EventsyncError

from .auth import HopinConnection
from .convert import parse_resource, wire_time

log = logging.getLogger(__name__)


def subscribe(connection: HopinConnection, now: dt.datetime | None = None) -> dict[str, Any]:
    """POST the subscription for the connection's event; remembers its id and expiry."""
    options = connection.options
    moment = now or dt.datetime.now(dt.UTC)
    expires = moment + dt.timedelta(seconds=options.webhook_ttl)
    body = {
        "data": {
            "type": "dataSubscription",
            "attributes": {
                "configuration": {
                    "url": options.webhook_url,
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
    connection.subscription = {"id": created.id, "expiresAt": expires, "url": options.webhook_url}
    return dict(connection.subscription)


def renew_if_due(connection: HopinConnection, now: dt.datetime | None = None) -> bool:
    """Create or renew the subscription when ``webhook_url`` is set and the current one expires
    within ``webhook_renew_before`` seconds. Returns True when it called Hopin."""
    options = connection.options
    if not options.webhook_url or not connection.event_id:
        return False
    moment = now or dt.datetime.now(dt.UTC)
    expires = connection.subscription.get("expiresAt")
    if (
        expires is not None
        and expires - dt.timedelta(seconds=options.webhook_renew_before) > moment
    ):
        return False
    subscribe(connection, moment)
    return True


def keep_alive(connection: HopinConnection) -> None:
    """``renew_if_due`` that never stops a sync: a failure is logged and kept in
    ``connection.subscription_error`` (shown by ``preflight``); the next call tries again and
    the pollers catch what the missing deliveries would have said."""
    try:
        renew_if_due(connection)
    except AuthenticationError:
        raise
    except EventsyncError as exc:
        connection.subscription_error = str(exc)
        log.warning(
            "hopin: dataSubscription for org %s not created or renewed: %s", connection.org, exc
        )
    else:
        connection.subscription_error = ""
