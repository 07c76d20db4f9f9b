"""Identifiers and timestamps in Hopin's wire style."""

from __future__ import annotations

import datetime as dt
import functools
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits

#: Hopin external ids are opaque 25-character alphanumeric strings.
ID_LENGTH = 25


def new_id() -> str:
    """A fresh 25-character alphanumeric id, like ``uOWSaHxaRtjBBIsMLGQzMGxnK``."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(ID_LENGTH))


def now() -> dt.datetime:
    """The current UTC time with millisecond precision (what the wire carries)."""
    moment = dt.datetime.now(dt.UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def iso(moment: dt.datetime) -> str:
    """ISO-8601 UTC with a ``Z`` suffix, e.g. ``2019-08-24T14:15:22.123Z``."""
    text = moment.astimezone(dt.UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


# Cached: every list request filters and sorts the whole collection by its timestamps, and
# without the cache parsing them made a page of a large event cost far more than its latency.
@functools.lru_cache(maxsize=1 << 18)
def parse_iso(text: str) -> dt.datetime:
    """Parse an ISO-8601 timestamp (``Z`` or an offset); naive values are taken as UTC."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
