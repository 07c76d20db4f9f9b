"""Writing records: magic-link invitations (with look-before-create), registration metadata
updates, registrations and magic-link deletion. One PushResult per item, in order; a bad item
never fails the batch."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from eventsync import backoff
from eventsync.errors import (
    AuthenticationError,
    FatalError,
    RecordError,
    RemoteError,
    RetryableError,
)
from eventsync.models import Filter, PushItem, PushRequest, PushResult, RemoteFailure

from . import filters as flt
from .auth import HopinConnection
from .convert import SYSTEM, Resource, parse_list, parse_resource, ticket_code
from .lookup import Looked, look_batch
from .pull import pages, parallel_map

MAGIC_LINK_ATTRIBUTES = (
    "email",
    "firstName",
    "lastName",
    "headline",
    "extraFields",
    "metadata",
    "registrationId",
)


def _failure(exc: RemoteError) -> RemoteFailure:
    return RemoteFailure(
        code=exc.code,
        message=exc.message,
        fields=exc.fields,
        retryable=isinstance(exc, RetryableError),
    )


def _string_map(value: Any) -> dict[str, str]:
    if not value:
        return {}
    if not isinstance(value, Mapping):
        raise RecordError("INVALID_FIELD", "must be a mapping of strings", system=SYSTEM)
    return {str(k): "" if v is None else str(v) for k, v in value.items()}


def returned(resource: Resource, connection: HopinConnection) -> dict[str, Any]:
    """What a magic-link result hands back: the URL, its status, and who/which ticket."""
    attrs = resource.attributes
    status = attrs.get(connection.options.magic_link_status_attribute)
    return {
        "magicLink": attrs.get("magicLink"),
        "status": str(status).lower() if status is not None else None,
        "email": attrs.get("email"),
        "ticketId": attrs.get("ticketId"),
        "registrationId": attrs.get("registrationId"),
    }


def resolve_ticket(connection: HopinConnection, fields: Mapping[str, Any]) -> str:
    """The ticket id of an item: ``ticketId``, or the ticket whose integration code is ``ticketCode``."""
    if fields.get("ticketId"):
        return str(fields["ticketId"])
    code = fields.get("ticketCode") or fields.get("integrationCode")
    if not code:
        raise RecordError(
            "REQUIRED_FIELD_MISSING",
            "ticketId (or ticketCode) is required",
            fields=("ticketId",),
            system=SYSTEM,
        )
    if code not in connection.ticket_codes:
        for record in pages(
            connection, "ticket", f"/v1/events/{connection.event_id}/tickets", {}, None
        ):
            found = ticket_code(record.fields, connection.options)
            if found and record.id:
                connection.ticket_codes[found] = record.id
    if code not in connection.ticket_codes:
        raise RecordError(
            "UNKNOWN_TICKET_CODE",
            f"no ticket of event {connection.event_id} has integration code {code!r}",
            fields=("ticketCode",),
            system=SYSTEM,
        )
    return connection.ticket_codes[str(code)]


def find_magic_link(connection: HopinConnection, ticket_id: str, email: str) -> Resource | None:
    """The existing invitation for this email on this ticket (case-insensitive), or None."""
    params, body = flt.encode([Filter("email", "=", email)], connection.options.filter_encoding)
    url: str | None = f"/v1/tickets/{ticket_id}/magicLinks"
    first = True
    while url:
        page = parse_list(
            connection.http.get_json(url, params=params if first else None, json_body=body)
        )
        for resource in page.data:
            if str(resource.attributes.get("email", "")).lower() == email.lower():
                return resource
        url, first = page.links.next, False
    return None


def _magic_link(
    connection: HopinConnection, item: PushItem, lookup: bool, looked: Looked | None = None
) -> PushResult:
    """Create the invitation; a transient failure of the create is retried after looking again,
    so a create that happened although its answer was lost is never made twice. ``looked``: the
    batch's look-before-create (``lookup.look_batch``), trusted on the first try only."""
    attempt = 1
    while True:
        try:
            return _magic_link_once(connection, item, lookup, looked, fresh=attempt == 1)
        except RetryableError as exc:
            if attempt > connection.options.retries:
                raise
            backoff.wait(
                exc.retry_after
                if exc.retry_after is not None
                else backoff.delay(
                    attempt,
                    base=connection.options.backoff_factor,
                    cap=connection.options.backoff_max,
                )
            )
            attempt += 1
            lookup = True


def _magic_link_once(
    connection: HopinConnection,
    item: PushItem,
    lookup: bool,
    looked: Looked | None = None,
    *,
    fresh: bool = True,
) -> PushResult:
    fields = item.fields
    ticket_id = resolve_ticket(connection, fields)
    email = str(fields.get("email") or "").strip()
    if not email:
        raise RecordError(
            "REQUIRED_FIELD_MISSING", "email is required", fields=("email",), system=SYSTEM
        )
    if lookup:
        # A retry looks again: the create that failed may have happened (its answer lost).
        batch = looked is not None and fresh and looked.covers(ticket_id, email)
        existing = (
            looked.get(ticket_id, email)
            if batch and looked is not None
            else find_magic_link(connection, ticket_id, email)
        )
        if existing is not None:
            if looked is not None:
                looked.add(ticket_id, email, existing)
            return PushResult(
                key=item.key,
                ok=True,
                id=existing.id,
                created=False,
                returned=returned(existing, connection),
            )
    blank = connection.options.magic_link_blank_name
    attributes: dict[str, Any] = {
        "email": email,
        "firstName": str(fields.get("firstName") or "").strip() or blank,
        "lastName": str(fields.get("lastName") or "").strip() or blank,
    }
    if fields.get("headline"):
        attributes["headline"] = str(fields["headline"])
    for name in ("extraFields", "metadata"):
        if fields.get(name):
            attributes[name] = _string_map(fields[name])
    if fields.get("registrationId"):
        attributes["registrationId"] = str(fields["registrationId"])
    body = {"data": {"type": "magicLink", "attributes": attributes}}
    created = parse_resource(
        connection.http.request(
            "POST", f"/v1/tickets/{ticket_id}/magicLinks", json_body=body
        ).json()
    )
    if looked is not None:
        looked.add(ticket_id, email, created)
    return PushResult(
        key=item.key, ok=True, id=created.id, created=True, returned=returned(created, connection)
    )


def _update_registration(connection: HopinConnection, item: PushItem) -> PushResult:
    if not item.id:
        raise RecordError("MISSING_ID", "update needs the registration id", system=SYSTEM)
    allowed = connection.options.registration_update_fields
    refused = sorted(set(item.fields) - set(allowed))
    if refused:
        raise RecordError(
            "NOT_UPDATABLE",
            f"Hopin only lets these registration fields change: "
            f"{', '.join(allowed)} (set registration_update_fields)",
            fields=tuple(refused),
            system=SYSTEM,
        )
    attributes = dict(item.fields)
    if "metadata" in attributes:
        attributes["metadata"] = _string_map(attributes["metadata"])
    body = {"data": {"type": "registration", "attributes": attributes}}
    updated = parse_resource(
        connection.http.request("PATCH", f"/v1/registrations/{item.id}", json_body=body).json()
    )
    return PushResult(
        key=item.key,
        ok=True,
        id=updated.id,
        returned={"updatedAt": updated.attributes.get("updatedAt")},
    )


def _insert_registration(connection: HopinConnection, item: PushItem) -> PushResult:
    attributes = dict(item.fields)
    attributes["ticketId"] = resolve_ticket(connection, attributes)
    attributes.pop("ticketCode", None)
    body = {"data": {"type": "registration", "attributes": attributes}}
    created = parse_resource(
        connection.http.request(
            "POST", f"/v1/events/{connection.event_id}/registrations", json_body=body
        ).json()
    )
    return PushResult(key=item.key, ok=True, id=created.id, created=True)


def _delete_magic_link(connection: HopinConnection, item: PushItem) -> PushResult:
    if not item.id:
        raise RecordError("MISSING_ID", "delete needs the magic link id", system=SYSTEM)
    connection.http.request("DELETE", f"/v1/magicLinks/{item.id}")
    return PushResult(key=item.key, ok=True, id=item.id)


def _operation(
    connection: HopinConnection, request: PushRequest, looked: Looked | None
) -> Callable[[PushItem], PushResult]:
    obj, op = request.object, request.operation
    lookup = connection.options.magic_link_lookup
    table: dict[tuple[str, str], Callable[[PushItem], PushResult]] = {
        ("magicLink", "insert"): lambda item: _magic_link(connection, item, lookup, looked),
        ("magicLink", "upsert"): lambda item: _magic_link(connection, item, True, looked),
        ("magicLink", "delete"): lambda item: _delete_magic_link(connection, item),
        ("registration", "update"): lambda item: _update_registration(connection, item),
        ("registration", "insert"): lambda item: _insert_registration(connection, item),
    }
    if (obj, op) not in table:
        supported = ", ".join(f"{o} {p}" for o, p in table)
        raise FatalError(
            "UNSUPPORTED_OPERATION",
            f"hopin cannot {op} {obj!r} (supported: {supported})",
            system=SYSTEM,
        )
    return table[(obj, op)]


def push_records(connection: HopinConnection, request: PushRequest) -> list[PushResult]:
    """Run the batch, up to ``max_parallel`` items at once; remote failures become per-item
    results. Items sharing an email run one after another (a look-before-create must see the
    invitation made just before it), and the first runs alone, so that caches it fills (the
    ticket codes) are filled once. Invitations that look before they create look once for the
    whole batch (``lookup.look_batch``), which fills those caches itself: then all run at once."""
    items = list(request.items)
    if not items:
        return []
    looks = request.object == "magicLink" and (
        request.operation == "upsert"
        or (request.operation == "insert" and connection.options.magic_link_lookup)
    )
    looked = (
        look_batch(connection, items, lambda fields: resolve_ticket(connection, fields))
        if looks and len(items) > 1
        else None
    )
    run = _operation(connection, request, looked)

    def one(item: PushItem) -> PushResult:
        try:
            return run(item)
        except AuthenticationError:
            raise
        except RemoteError as exc:
            return PushResult(key=item.key, ok=False, id=item.id, error=_failure(exc))

    results: dict[int, PushResult] = {} if looked is not None else {0: one(items[0])}
    groups: dict[str, list[int]] = {}
    for n, item in enumerate(items[len(results) :], start=len(results)):
        email = str(item.fields.get("email") or "").strip().lower()
        groups.setdefault(email or f"\x00{n}", []).append(n)

    def run_group(key: str) -> dict[int, PushResult]:
        return {n: one(items[n]) for n in groups[key]}

    for done in parallel_map(connection, list(groups), run_group).values():
        results.update(done)
    return [results[n] for n in range(len(items))]
