"""The typed records the state store hands out: frozen attrs classes, no ORM objects."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

__all__ = [
    "OutboxItem",
    "Link",
    "DeadLetter",
    "FlowStatus",
    "LogEntry",
    "Retrying",
    "CompleteResult",
    "RetryPolicy",
]


@attrs.frozen
class OutboxItem:
    """One leased outbox row: "entity ``entity`` of flow ``flow`` in org ``org`` may have changed".

    :ivar id: the row id (stable while the row exists).
    :ivar generation: bumped by every ``mark``; ``complete`` clears the row only if it did not move.
    :ivar attempts: failed attempts so far (reset when a newer change arrives after a record error).
    :ivar payload: the JSON payload of the latest mark (None when none was given).
    :ivar hint: a short free-form hint of the latest mark (e.g. ``"created"``, ``"deleted"``).
    :ivar lease_token: the token of the lease that returned this item; ``complete``/``fail``/
        ``release`` act only while the row still carries it.
    :ivar lease_until: when the lease expires and another worker may take the row over.
    """

    id: int
    org: str
    flow: str
    entity: str
    generation: int
    attempts: int
    payload: Any = None
    hint: str | None = None
    lease_token: str | None = None
    leased_by: str | None = None
    lease_until: dt.datetime | None = None
    created_at: dt.datetime | None = None
    last_error: str | None = None


@attrs.frozen
class Link:
    """Which source entity became which target record, and a hash of what was last written.

    :ivar source_modified: when the source changed the version last written (None: unknown).
    """

    org: str
    flow: str
    source_key: str
    target_object: str
    target_id: str
    hash: str | None = None
    updated_at: dt.datetime | None = None
    source_modified: dt.datetime | None = None


@attrs.frozen
class DeadLetter:
    """A row that failed for good, with the remote system's own error, verbatim.

    :ivar code: the remote error code (``REQUIRED_FIELD_MISSING``, ``HTTP_503`` ...).
    :ivar message: the remote error text exactly as the remote system sent it.
    :ivar fields: the fields the remote error names.
    """

    id: int
    org: str
    flow: str
    entity: str
    code: str
    message: str
    fields: tuple[str, ...] = ()
    attempts: int = 0
    payload: Any = None
    hint: str | None = None
    first_failure_at: dt.datetime | None = None
    last_failure_at: dt.datetime | None = None


@attrs.frozen
class FlowStatus:
    """Health of one (org, flow), as shown by ``eventsync status``.

    :ivar pending: rows waiting to be worked on (not leased), including rows in backoff.
    :ivar leased: rows a worker holds an unexpired lease on.
    :ivar retrying: rows waiting after at least one failed attempt.
    :ivar lag_seconds: age of the oldest unfinished change (None when the outbox is empty).
    :ivar last_success_at: when an entity of this flow last synced successfully.
    :ivar dead_letters: dead letters waiting for an operator.
    """

    org: str
    flow: str
    pending: int = 0
    leased: int = 0
    retrying: int = 0
    lag_seconds: float | None = None
    last_success_at: dt.datetime | None = None
    dead_letters: int = 0


@attrs.frozen
class LogEntry:
    """One line of the sync log."""

    id: int
    org: str
    flow: str
    entity: str
    outcome: str
    message: str
    at: dt.datetime
    #: Structured detail (version 7): what a write changed, which attempt a failure was ...
    detail: Any = None


@attrs.frozen
class Retrying:
    """An outbox row whose last attempt failed and that waits for its next try."""

    org: str
    flow: str
    entity: str
    attempts: int
    code: str | None
    error: str | None
    due_at: dt.datetime
    first_failure_at: dt.datetime | None


@attrs.frozen
class CompleteResult:
    """What ``complete`` did with each item.

    :ivar completed: ids of rows deleted (their generation did not move).
    :ivar requeued: ids of rows released for another run (re-marked during the job).
    :ivar lost: ids whose lease was no longer ours (expired and taken over, or released).
    """

    completed: tuple[int, ...] = ()
    requeued: tuple[int, ...] = ()
    lost: tuple[int, ...] = ()


@attrs.frozen
class RetryPolicy:
    """Backoff and dead-letter policy of the outbox.

    The n-th failed attempt waits ``min(cap, base * 2 ** (n - 1))`` seconds, shortened by a random
    share of up to ``jitter`` (so waits still grow: 2 * (1 - 0.2) > 1), and never less than a
    ``retry_after`` the remote system asked for. After ``max_attempts`` failed attempts the row
    becomes a dead letter.
    """

    max_attempts: int = attrs.field(default=8, validator=attrs.validators.ge(1))
    backoff_base: float = attrs.field(default=2.0, validator=attrs.validators.gt(0))
    backoff_cap: float = attrs.field(default=900.0, validator=attrs.validators.gt(0))
    jitter: float = attrs.field(
        default=0.2, validator=[attrs.validators.ge(0), attrs.validators.lt(0.5)]
    )
