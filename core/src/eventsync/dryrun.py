"""What a dry run is made of: writes it would make, answered without reaching the remote system,
and a state store that reads but never writes.

A preview runs a flow's own ``run_batch`` on a ``FlowContext`` with ``dry_run=True``: reads go
to the remote systems as usual (the match query, the records by id), every push is collected as
a ``PlannedWrite`` and answered as if it had succeeded, and the store keeps every row as it was.
So a preview predicts from the same code that a real run executes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from .models import PushRequest, PushResult
from .policies import same_value
from .store.audit import AuditWrite

__all__ = ["PlannedWrite", "ReadOnlyStore", "plan_writes", "audit_writes", "DRY_RUN_ID"]

#: The id a dry run gives a record it would create.
DRY_RUN_ID = "(new)"

# StateStore methods that change state; a dry run answers them without touching the database.
_WRITES = frozenset(
    {
        "put_links",
        "delete_link",
        "delete_links",
        "log",
        "log_many",
        "mark",
        "mark_many",
        "release_claims",
        "record_audit",
        "save_watermark",
    }
)


@attrs.frozen
class PlannedWrite:
    """One write a dry run would make.

    :ivar changes: per field written, its current value (None when unknown or empty) and the
        value that would be written; for an update, only fields whose value would change.
    :ivar held: fields an update policy would leave as they are, with the reason.
    """

    entity: str
    system: str
    object: str
    operation: str
    record_id: str | None
    changes: Mapping[str, Mapping[str, Any]]
    held: Mapping[str, str] = attrs.field(factory=dict)


class ReadOnlyStore:
    """A state store view that reads through and answers every write as a no-op.

    ``claim`` grants every value (a dry run creates nothing to race for)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def claim(self, org: str, scope: str, keys: Any, holder: str, seconds: float) -> set[str]:
        """Every key, granted without storing a claim."""
        return set(keys)

    def __getattr__(self, name: str) -> Any:
        if name in _WRITES:
            return lambda *args, **kwargs: None
        return getattr(self._store, name)


def plan_writes(
    system: str,
    request: PushRequest,
    before: Mapping[str, Mapping[str, Any]] | None,
    held: Mapping[str, Mapping[str, str]] | None,
) -> tuple[list[PlannedWrite], list[PushResult]]:
    """The planned writes of ``request`` and the answers a dry run gives the flow: every item
    succeeds, a create with the id ``DRY_RUN_ID``."""
    plans: list[PlannedWrite] = []
    results: list[PushResult] = []
    creating = request.operation == "insert"
    for item in request.items:
        current = (before or {}).get(item.key)
        now = {k.lower(): v for k, v in (current or {}).items()}
        changes = {
            name: {"before": now.get(name.lower()), "after": value}
            for name, value in item.fields.items()
            if creating or current is None or not same_value(value, now.get(name.lower()))
        }
        plans.append(
            PlannedWrite(
                item.key,
                system,
                request.object,
                request.operation,
                item.id,
                changes,
                dict((held or {}).get(item.key, {})),
            )
        )
        results.append(
            PushResult(
                item.key,
                True,
                id=item.id or DRY_RUN_ID,
                created=creating or (request.operation == "upsert" and item.id is None),
            )
        )
    return plans, results


def audit_writes(
    org: str,
    flow: str,
    system: str,
    request: PushRequest,
    results: Sequence[PushResult],
    before: Mapping[str, Mapping[str, Any]] | None,
) -> list[AuditWrite]:
    """The audit entries of a push: one per record written, naming the fields that change
    (every field the item carries when the current values are unknown)."""
    items = {item.key: item for item in request.items}
    out: list[AuditWrite] = []
    for result in results:
        item = items.get(result.key)
        if not result.ok or item is None:
            continue
        current = (before or {}).get(item.key)
        now = {k.lower(): v for k, v in (current or {}).items()}
        names = tuple(
            k
            for k, v in item.fields.items()
            if current is None or not same_value(v, now.get(k.lower()))
        )
        operation = request.operation
        if operation == "upsert":
            operation = "insert" if result.created else "update"
        out.append(
            AuditWrite(
                org,
                flow,
                system,
                request.object,
                operation,
                result.id or item.id or "",
                item.key,
                names,
            )
        )
    return out
