"""Cancellations: what a cancelled, refunded or removed source record does to what was written.

The export flow's ``on_cancel`` policy, for a registration that is cancelled or refunded
(``status`` / ``refunded``) or no longer exists at the source:

* ``keep``: leave the CRM record alone (the flow's ``refunded`` setting still applies);
* ``mark``: set ``cancel_field`` to ``cancel_value`` on the record it was exported to;
* ``delete``: delete that record, and the link to it;
* ``remove``: delete the membership record that ties the person to the event (the CRM record
  the import flow invited them from, e.g. a CampaignMember, found through the invitation the
  registration came from; or the exported record itself when it is of the import flow's
  object), leaving the person's own record.

A registration that was never exported is done with nothing to undo. A record already gone in
the CRM counts as removed. Every write goes through ``FlowContext.push``, so it is in the audit
trail and in previews.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from ..executor import Outcome
from ..models import PushItem, PushRequest, PushResult, Record
from ..store import Link
from . import platform as P
from .base import FlowContext, outcome_of

__all__ = ["cancel", "cancel_problems", "GONE_CODES"]

#: Remote codes meaning the record is already gone: the cancellation is done.
GONE_CODES = frozenset(
    {"ENTITY_IS_DELETED", "NOT_FOUND", "INVALID_CROSS_REFERENCE_KEY", "HTTP_404", "HTTP_410"}
)
IMPORT_FLOW = "import_registrations"


def cancel_problems(settings: Any, path: str) -> list[str]:
    """Settings problems of ``on_cancel``: ``mark`` needs the field and the value."""
    if getattr(settings, "on_cancel", "keep") != "mark":
        return []
    return [
        f'{path}.{key}: on_cancel = "mark" needs {key} (the target field and the value '
        f"a cancelled registration's record gets)"
        for key in ("cancel_field", "cancel_value")
        if getattr(settings, key) in (None, "")
    ]


def cancel(
    ctx: FlowContext,
    flow: str,
    cfg: Any,
    cancelled: Mapping[str, Record | None],
    links: Mapping[str, Link],
) -> dict[str, Outcome]:
    """Apply ``cfg.on_cancel`` to each cancelled entity (its record, None when gone)."""
    outcomes = {
        e: Outcome.done("cancelled: nothing was exported for it")
        for e in cancelled
        if e not in links
    }
    linked = {e: links[e] for e in cancelled if e in links}
    if not linked:
        return outcomes
    if cfg.on_cancel == "mark":
        outcomes.update(_mark(ctx, flow, cfg, linked))
    elif cfg.on_cancel == "delete":
        targets = {e: (link.target_object, link.target_id) for e, link in linked.items()}
        done = _delete(ctx, flow, targets, "deleted")
        ctx.store.delete_links(ctx.org.name, flow, [e for e, o in done.items() if o.kind == "done"])
        outcomes.update(done)
    else:
        outcomes.update(_remove(ctx, flow, cancelled, linked))
    return outcomes


def _mark(ctx: FlowContext, flow: str, cfg: Any, linked: Mapping[str, Link]) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    kept: list[Link] = []
    targets = {e: (link.target_object, link.target_id) for e, link in linked.items()}
    for obj, rows in _by_object(targets):
        items = tuple(PushItem(e, {cfg.cancel_field: cfg.cancel_value}, id=tid) for e, tid in rows)
        for result in ctx.push("crm", PushRequest(obj, "update", items), flow=flow):
            outcomes[result.key] = _settled(
                result, f"cancelled: {obj} marked {cfg.cancel_field} = {cfg.cancel_value!r}"
            )
            if result.ok:
                # A changed hash: should the registration come back, it is exported again.
                kept.append(attrs.evolve(linked[result.key], hash="cancelled"))
    ctx.store.put_links(kept)
    return outcomes


def _remove(
    ctx: FlowContext,
    flow: str,
    cancelled: Mapping[str, Record | None],
    linked: Mapping[str, Link],
) -> dict[str, Outcome]:
    """Delete each entity's membership record; the person's own record stays."""
    membership = (
        getattr(ctx.settings(IMPORT_FLOW), "source_object", None)
        if ctx.enabled(IMPORT_FLOW)
        else None
    )
    targets: dict[str, tuple[str, str]] = {}
    outcomes: dict[str, Outcome] = {}
    for entity, link in linked.items():
        found = _membership(ctx, cancelled.get(entity), link, membership)
        if found is None:
            outcomes[entity] = Outcome.done(
                "cancelled: no membership record is known for it (it was not invited by "
                "eventsync); nothing removed"
            )
        else:
            targets[entity] = found
    outcomes.update(_delete(ctx, flow, targets, "removed"))
    return outcomes


def _membership(
    ctx: FlowContext, record: Record | None, link: Link, membership: str | None
) -> tuple[str, str] | None:
    if membership is None:
        return None
    if link.target_object.lower() == membership.lower():
        return link.target_object, link.target_id
    invitation = record.get(P.REGISTRATION_MAGIC_LINK) if record is not None else None
    if not invitation:
        return None
    for invited in ctx.store.find_links_to(ctx.org.name, P.MAGIC_LINK, str(invitation)):
        if invited.flow == IMPORT_FLOW:
            return membership, invited.source_key
    return None


def _delete(
    ctx: FlowContext, flow: str, targets: Mapping[str, tuple[str, str]], verb: str
) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    for obj, rows in _by_object(targets):
        items = tuple(PushItem(e, {}, id=tid) for e, tid in rows)
        ids = dict(rows)
        for result in ctx.push("crm", PushRequest(obj, "delete", items), flow=flow):
            outcomes[result.key] = _settled(result, f"cancelled: {verb} {obj} {ids[result.key]}")
    return outcomes


def _settled(result: PushResult, message: str) -> Outcome:
    if result.ok or (result.error is not None and result.error.code in GONE_CODES):
        return Outcome.done(message)
    return outcome_of(result)


def _by_object(targets: Mapping[str, tuple[str, str]]) -> list[tuple[str, list[tuple[str, str]]]]:
    grouped: dict[str, list[tuple[str, str]]] = {}
    for entity, (obj, target_id) in targets.items():
        grouped.setdefault(obj, []).append((entity, target_id))
    return list(grouped.items())
