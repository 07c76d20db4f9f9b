"""Erasure (``eventsync forget EMAIL``, ``Engine.forget``): remove a person from eventsync.

For each organisation, in steps whose progress is saved in the state store (a rerun resumes
after the last finished step, so an interruption never leaves the state half-erased):

1. **Find** the person: the event platform's registrations and invitations with the address,
   the CRM records with it in every object an enabled flow names (``Flow.schema_objects``,
   the CRM's email field from its profile), and both ends of every link to them.
2. **Remote records eventsync created** (an ``insert`` in the audit trail): per
   ``[orgs.X.erasure]``, ``delete`` them, ``anonymise`` them (every field eventsync wrote is
   emptied, a required one set to ``(erased)``), or ``keep`` them. A system that cannot delete
   an object gets it anonymised instead; records eventsync only matched are not its own and are
   left alone. A transient failure stops here: run ``forget`` again to resume.
3. **State**: every row naming the address or one of those ids, in every table of the store
   (``StateStore.purge_person``), and an audit entry recording that an erasure happened, with
   counts and no personal data, in one transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import attrs

from .errors import EventsyncError, FatalError, RetryableError
from .flows.cancellation import GONE_CODES
from .models import Filter, PullRequest, PushItem, PushRequest
from .store import AuditWrite

if TYPE_CHECKING:
    from .engine import Engine
    from .flows.base import FlowContext, Role

__all__ = ["ForgetResult", "forget", "email_problem", "ERASED"]

#: What anonymisation writes into a required text field.
ERASED = "(erased)"


@attrs.frozen
class ForgetResult:
    """What ``forget`` did.

    :ivar remote: per organisation, counts: ``deleted``, ``anonymised``, ``kept`` (policy
        ``keep``), ``not_ours`` (records with the address eventsync did not create), and
        ``unchangeable`` when a system could neither delete nor change some of them.
    :ivar state: rows removed per table of the state store.
    :ivar resumed: an unfinished earlier request for the address was continued.
    """

    request: str
    orgs: tuple[str, ...]
    remote: Mapping[str, Mapping[str, int]]
    state: Mapping[str, int]
    resumed: bool = False

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (no personal data: the address is not in it)."""
        return {
            "request": self.request,
            "orgs": list(self.orgs),
            "remote": {org: dict(counts) for org, counts in self.remote.items()},
            "state": dict(self.state),
            "resumed": self.resumed,
        }


def email_problem(email: str) -> str | None:
    """Why ``email`` is not an address ``forget`` can look for, or None."""
    local, _, domain = email.partition("@")
    if not local or not domain or "@" in domain or any(c.isspace() for c in email):
        return f"{email!r} is not an email address (expected name@domain)"
    return None


def forget(engine: Engine, email: str, *, orgs: Sequence[str] = ()) -> ForgetResult:
    """Erase ``email`` from ``orgs`` (default: every organisation) and the state store.

    :raises ValueError: not an email address, or an unknown organisation.
    :raises RetryableError: a remote system failed transiently; the request stays open and a
        rerun resumes it.
    """
    email = email.strip()
    if (problem := email_problem(email)) is not None:
        raise ValueError(problem)
    unknown = [o for o in orgs if o not in engine.config.orgs]
    if unknown:
        known = ", ".join(engine.config.orgs) or "none"
        raise ValueError(f"unknown organisation(s) {', '.join(unknown)} (known: {known})")
    store = engine.store
    resumed = store.forget_request(email) is not None
    request = store.open_forget_request(email, list(orgs) or list(engine.config.orgs))
    progress: dict[str, Any] = {org: dict(step) for org, step in request.progress.items()}
    for org in request.orgs:
        step = progress.setdefault(org, {})
        if "ids" not in step:
            step.update(_find(engine, org, email))
            store.save_forget_progress(request.id, progress)
        if "remote" not in step:
            step["remote"] = _erase_remote(engine, org, step["created"], step.get("not_ours", 0))
            store.save_forget_progress(request.id, progress)
    ids = sorted({i for step in progress.values() for i in step["ids"]})
    audit = [
        AuditWrite(
            org,
            "forget",
            "eventsync",
            "person",
            "erase",
            request.id,
            "",
            tuple(f"{k}={v}" for k, v in sorted(progress[org]["remote"].items())),
        )
        for org in request.orgs
    ]
    state = store.purge_person(request.id, email, ids, audit)
    remote = {org: progress[org]["remote"] for org in request.orgs}
    return ForgetResult(request.id, request.orgs, remote, state, resumed)


def _find(engine: Engine, org_name: str, email: str) -> dict[str, Any]:
    """Step 1: the person's ids in this org, and the remote records eventsync created."""
    ctx = engine.context(org_name)
    org = engine.config.org(org_name)
    ids: set[str] = set()
    for obj in ("registration", "magicLink"):
        ids.update(_with_email(ctx, "platform", obj, "email", email))
    crm_email = _crm_email_field(ctx)
    found_in_crm: set[str] = set()
    if crm_email:
        objects: set[str] = set()
        for flow_name in org.flows.enabled():
            flow = engine.flows[flow_name]
            objects |= flow.schema_objects(org, org.flows[flow_name]).get("crm", set())
        for obj in sorted(objects):
            described = ctx.describe("crm", obj)
            if described is not None and described.field(crm_email) is not None:
                found_in_crm.update(_with_email(ctx, "crm", obj, crm_email, email))
    ids |= found_in_crm
    ids |= engine.store.linked_ids(org_name, ids)
    created: list[list[Any]] = []
    for record_id in sorted(ids):
        entries = engine.store.audit_entries(org=org_name, record_id=record_id)
        inserts = [e for e in entries if e.operation == "insert"]
        if inserts:
            fields = sorted({f for e in entries for f in e.fields})
            created.append([inserts[0].system, inserts[0].object, record_id, fields])
    ours = {c[2] for c in created}
    return {"ids": sorted(ids), "created": created, "not_ours": len(found_in_crm - ours)}


def _with_email(ctx: FlowContext, role: Role, obj: str, field: str, email: str) -> set[str]:
    """Ids of ``obj`` records whose ``field`` is ``email`` (none when the system cannot say)."""
    try:
        request = PullRequest(obj, fields=(field,), filters=(Filter(field, "=", email),))
        return {r.id for r in ctx.pull(role, request) if r.id}
    except RetryableError:
        raise
    except EventsyncError:
        return set()  # the system has no such object, or cannot filter it by email


def _crm_email_field(ctx: FlowContext) -> str | None:
    profile = ctx.hooks.profile(ctx.org.crm)
    return profile.person_fields.get("email") if profile is not None else None


def _erase_remote(
    engine: Engine, org_name: str, created: Sequence[Sequence[Any]], not_ours: int
) -> dict[str, int]:
    """Step 2: delete, anonymise or keep what eventsync created, per the org's policy."""
    ctx = engine.context(org_name)
    org = engine.config.org(org_name)
    counts = {"deleted": 0, "anonymised": 0, "kept": 0, "not_ours": not_ours}
    groups: dict[tuple[str, str], list[tuple[str, list[str]]]] = {}
    for system, obj, record_id, fields in created:
        groups.setdefault((system, obj), []).append((record_id, list(fields)))
    for (system, obj), records in groups.items():
        role: Role = "crm" if system == org.crm else "platform"
        policy = org.erasure.crm if role == "crm" else org.erasure.platform
        if policy == "keep":
            counts["kept"] += len(records)
            continue
        if policy == "delete":
            try:
                request = PushRequest(obj, "delete", tuple(PushItem(r, {}, r) for r, _ in records))
                results = ctx.push(role, request, flow="forget")
            except FatalError:
                results = None  # the system cannot delete this object: anonymise it instead
            if results is not None:
                counts["deleted"] += _settled(results, records)
                continue
        try:
            counts["anonymised"] += _anonymise(ctx, role, obj, records)
        except FatalError:
            # The system can neither delete nor change this object: nothing more to do
            # remotely; the state is still purged. Counted apart so the operator sees it.
            counts["unchangeable"] = counts.get("unchangeable", 0) + len(records)
    return counts


def _settled(results: Sequence[Any], records: Sequence[tuple[str, list[str]]]) -> int:
    """How many records are gone; a transient failure stops the erasure (resumable)."""
    for result in results:
        if result.ok or (result.error and result.error.code in GONE_CODES):
            continue
        failure = result.error
        if failure is not None and failure.retryable:
            raise RetryableError(failure.code, f"{failure.message}; run forget again to resume")
        raise FatalError(
            failure.code if failure else "UNKNOWN",
            f"could not erase record {result.key}: {failure.message if failure else ''}; fix "
            f"it and run forget again to resume",
        )
    return len(records)


def _anonymise(
    ctx: FlowContext, role: Role, obj: str, records: Sequence[tuple[str, list[str]]]
) -> int:
    """Empty every field eventsync wrote to each record (a required text field gets ERASED)."""
    described = ctx.describe(role, obj)
    items = []
    for record_id, fields in records:
        values: dict[str, Any] = {}
        for name in fields:
            field = described.field(name) if described is not None else None
            if field is not None and (not field.updateable or field.type == "boolean"):
                continue
            required = field is not None and not field.nillable
            values[name] = ERASED if required else None
        items.append(PushItem(record_id, values, record_id))
    results = ctx.push(role, PushRequest(obj, "update", tuple(items)), flow="forget")
    return _settled(results, records)
