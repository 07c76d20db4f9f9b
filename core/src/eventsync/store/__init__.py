"""The state store: links, watermarks, the outbox, dead letters and the sync log.

SQLAlchemy Core, one code path for SQLite (embedded default, WAL) and PostgreSQL (scale-out).
See docs/state-store.md.

    from eventsync.store import StateStore

    store = StateStore.open()                        # ./eventsync-state.sqlite3
    store = StateStore.open("postgresql+psycopg://eventsync@db/eventsync")
"""

from .audit import AuditEntry, AuditWrite
from .base import DatabaseClock
from .claims import ClaimRelease
from .core import StateStore
from .engine import DEFAULT_SQLITE_PATH, StateStoreMissing
from .links import content_hash
from .outbox import FOLLOW_ON, MAX_BATCH, Failed
from .records import (
    CompleteResult,
    DeadLetter,
    FlowStatus,
    Link,
    LogEntry,
    OutboxItem,
    Retrying,
    RetryPolicy,
)
from .schema import LATEST_VERSION, MAX_KEY, key_problem
from .shared import RecordCount, SharedUsage

__all__ = [
    "StateStore",
    "AuditEntry",
    "AuditWrite",
    "ClaimRelease",
    "DatabaseClock",
    "OutboxItem",
    "Link",
    "DeadLetter",
    "FlowStatus",
    "LogEntry",
    "Retrying",
    "CompleteResult",
    "RetryPolicy",
    "Failed",
    "MAX_BATCH",
    "FOLLOW_ON",
    "LATEST_VERSION",
    "MAX_KEY",
    "key_problem",
    "DEFAULT_SQLITE_PATH",
    "StateStoreMissing",
    "content_hash",
    "RecordCount",
    "SharedUsage",
]
