"""The sandbox admin API under ``/_admin``: seed data, act as invitees and attendees, inject
faults, read counters and deliveries. Documented in the plugin README. No auth (127.0.0.1 only)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request

from .faults import Faults, rule_from_json
from .jsonapi import ApiError, json_response, resource
from .store import Store
from .subscriptions import Deliverer


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if body is None and not request.data:
        return {}
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    return body


def create_admin(
    store: Store, faults: Faults, deliverer: Deliverer, info: Callable[[], dict[str, Any]]
) -> Blueprint:
    """The admin blueprint over the sandbox's state."""
    admin = Blueprint("admin", __name__, url_prefix="/_admin")

    def ok(collection: str, item: dict[str, Any], status: int = 200) -> Response:
        """A JSON:API document of one resource."""
        return json_response({"data": resource(collection, item)}, status)

    @admin.get("/info")
    def get_info() -> Response:
        """GET /_admin/info."""
        return json_response(info())

    @admin.get("/state")
    def state() -> Response:
        """GET /_admin/state."""
        with store.lock:
            return json_response(store.data)

    @admin.post("/organizations")
    def organization() -> Response:
        """POST /_admin/organizations."""
        return ok(
            "organizations", store.create_organization(_body().get("name", "Organisation")), 201
        )

    @admin.post("/organizations/<org_id>/events")
    def event(org_id: str) -> Response:
        """POST /_admin/organizations/<org_id>/events."""
        return ok("events", store.create_event(org_id, _body()), 201)

    @admin.post("/events/<event_id>/tickets")
    def ticket(event_id: str) -> Response:
        """POST /_admin/events/<event_id>/tickets."""
        return ok("tickets", store.create_ticket(event_id, _body()), 201)

    @admin.post("/tickets/<ticket_id>/bankQuestions")
    def question(ticket_id: str) -> Response:
        """POST /_admin/tickets/<ticket_id>/bankQuestions."""
        return ok("bankQuestions", store.create_question(ticket_id, _body()), 201)

    @admin.post("/events/<event_id>/registrations")
    def registration(event_id: str) -> Response:
        """POST /_admin/events/<event_id>/registrations."""
        try:
            return ok("registrations", store.create_registration(event_id, _body()), 201)
        except ValueError as exc:
            raise ApiError(422, str(exc)) from exc

    @admin.patch("/registrations/<registration_id>")
    def update_registration(registration_id: str) -> Response:
        """PATCH /_admin/registrations/<registration_id>."""
        return ok("registrations", store.update_registration(registration_id, _body()))

    @admin.delete("/registrations/<registration_id>")
    def remove_registration(registration_id: str) -> Response:
        """DELETE /_admin/registrations/<registration_id>: the organiser removes a registration
        in the dashboard (the public API has no route for it); reads by id no longer find it."""
        store.delete("registrations", registration_id)
        return Response(status=204)

    @admin.post("/registrations/<registration_id>/refund")
    def refund(registration_id: str) -> Response:
        """POST /_admin/registrations/<registration_id>/refund."""
        return ok(
            "registrations",
            store.update_registration(registration_id, {"refunded": True, "status": "refunded"}),
        )

    @admin.post("/events/<event_id>/onsite")
    def onsite(event_id: str) -> Response:
        """POST /_admin/events/<event_id>/onsite: registered at the door (channel ``onsite``),
        checked in and badge printed unless ``checkIn`` / ``badgePrinted`` are false."""
        body = _body()
        check_in = body.pop("checkIn", True)
        badge = body.pop("badgePrinted", True)
        at = body.pop("checkedInAt", None)
        try:
            item = store.create_registration(event_id, {**body, "channel": "onsite"})
        except ValueError as exc:
            raise ApiError(422, str(exc)) from exc
        if check_in:
            item = store.check_in(item["id"], at, badge=bool(badge))
        return ok("registrations", item, 201)

    @admin.post("/registrations/<registration_id>/checkIn")
    def check_in(registration_id: str) -> Response:
        """POST /_admin/registrations/<registration_id>/checkIn: checked in at the venue."""
        body = _body()
        item = store.check_in(
            registration_id, body.get("checkedInAt"), badge=bool(body.get("badgePrinted"))
        )
        return ok("registrations", item)

    @admin.post("/magicLinks/<link_id>/invite")
    def invite(link_id: str) -> Response:
        """POST /_admin/magicLinks/<link_id>/invite."""
        return ok("magicLinks", store.mark_invited(link_id))

    @admin.post("/magicLinks/<link_id>/accept")
    def accept(link_id: str) -> Response:
        """POST /_admin/magicLinks/<link_id>/accept."""
        return ok("magicLinks", store.accept_magic_link(link_id))

    @admin.post("/attendance")
    def attendance() -> Response:
        """POST /_admin/attendance."""
        body = _body()
        registration_id = body.pop("registrationId", None)
        email = body.pop("email", None)
        if not registration_id and email:
            found = store.find(
                "registrations", lambda r: r["attributes"]["email"].lower() == str(email).lower()
            )
            if not found:
                raise ApiError(404, f"no registration for {email}")
            registration_id = found[-1]["id"]
        if not registration_id:
            raise ApiError(400, "give registrationId or email")
        item = store.record_attendance(str(registration_id), body)
        return json_response(
            {"data": {"id": item["id"], "type": "attendance", "attributes": item["attributes"]}},
            201,
        )

    @admin.get("/faults")
    def list_faults() -> Response:
        """GET /_admin/faults."""
        return json_response({"faults": [rule.to_json() for rule in faults.rules]})

    @admin.post("/faults")
    def add_fault() -> Response:
        """POST /_admin/faults."""
        try:
            rule = faults.add(rule_from_json(_body()))
        except (TypeError, ValueError) as exc:
            raise ApiError(400, str(exc)) from exc
        return json_response(rule.to_json(), 201)

    @admin.delete("/faults")
    def clear_faults() -> Response:
        """DELETE /_admin/faults."""
        faults.clear()
        return Response(status=204)

    @admin.get("/counters")
    def counters() -> Response:
        """GET /_admin/counters."""
        return json_response(faults.counters())

    @admin.delete("/counters")
    def reset_counters() -> Response:
        """DELETE /_admin/counters."""
        faults.reset_counters()
        return Response(status=204)

    @admin.get("/deliveries")
    def deliveries() -> Response:
        """GET /_admin/deliveries."""
        return json_response({"deliveries": deliverer.log()})

    @admin.post("/deliveries/drop")
    def drop_deliveries() -> Response:
        """POST /_admin/deliveries/drop."""
        count = _body().get("count", 1)
        if not isinstance(count, int) or count < 0:
            raise ApiError(400, "count must be a non-negative integer")
        deliverer.drop(count)
        return Response(status=204)

    return admin
