"""The Flask application of the sandbox: the ``/v1`` API, the OAuth platform routes and the
magic-link click target. The admin API lives in ``admin.py``."""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
from typing import Any
from urllib.parse import urlencode

from eventsync.latency import Latency
from flask import Blueprint, Flask, Response, g, redirect, request

from .config import SandboxConfig
from .faults import Faults
from .ids import iso, new_id, now, parse_iso
from .jsonapi import (
    ApiError,
    document,
    error_response,
    json_response,
    list_document,
    matches,
    parse_filters,
    sort_items,
    time_range,
    write_attributes,
)
from .reports import REPORT_TYPES, render_csv
from .store import TRACKING_ATTRIBUTES, NotFound, Store

#: Ascending time sorts whose own field a list may be cut by (``time_range``).
RANGE_SORTS = frozenset({"updatedAt", "createdAt"})
RANGE_OPS = frozenset({"gt", "gte", "lt", "lte"})

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
REGISTRATION_FILTERS = ("email", "createdAt", "updatedAt", "userUpdatedAt", "refunded")
MAGIC_LINK_FILTERS = ("email", "updatedAt", "includeConfirmAndJoin")
REGISTRATION_PATCH_FIELDS = (
    "metadata",
    "answers",
    "externalBarcode",
    "firstName",
    "headline",
    "lastName",
    "ticketId",
)


def create_app(
    config: SandboxConfig,
    store: Store,
    faults: Faults,
    admin: Blueprint,
    latency: Latency | None = None,
) -> Flask:
    """Build the sandbox application around its state (``latency``: delays before answering)."""
    app = Flask("eventsync_hopin.sandbox")
    api = Blueprint("v1", __name__, url_prefix="/v1")

    # --- cross-cutting: faults, counters, errors, auth ----------------------------------

    @app.before_request
    def _before() -> Response | None:
        if not _is_api(request.path):
            return None
        rule = request.url_rule.rule if request.url_rule else request.path
        key = f"{request.method} {rule}"
        faults.count_call(key)
        faults.enter()
        g.in_flight = True
        if latency is not None:
            latency.wait(key)
        fault = faults.pick(request.method, request.path, "before")
        return _apply(fault)

    @app.teardown_request
    def _done(_exc: BaseException | None) -> None:
        if g.pop("in_flight", False):
            faults.leave()

    @app.after_request
    def _after(response: Response) -> Response:
        if not _is_api(request.path) or response.status_code >= 400:
            return response
        fault = faults.pick(request.method, request.path, "after")
        return _apply(fault) or response

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> Response:
        return error_response(exc.status, exc.detail, exc.headers)

    @app.errorhandler(NotFound)
    def _not_found(exc: NotFound) -> Response:
        return error_response(404, str(exc.args[0]))

    @app.errorhandler(404)
    def _no_route(exc: Exception) -> Response:
        return error_response(404, f"no route for {request.method} {request.path}")

    @app.errorhandler(405)
    def _bad_method(exc: Exception) -> Response:
        return error_response(405, f"{request.method} not allowed on {request.path}")

    @api.before_request
    def _authenticate() -> None:
        if request.endpoint == "v1.health":
            return
        header = request.headers.get("Authorization", "").strip()
        bearer = header.lower().startswith("bearer ")
        token = header[7:].strip() if bearer else header
        if not token:
            raise ApiError(401, "missing credentials (Authorization header)")
        if config.auth_header != "both" and config.auth_header != ("bearer" if bearer else "raw"):
            # What a server that knows one form sees: a key it does not recognise.
            raise ApiError(401, "invalid API key")
        g.organization_ids = _token_orgs(token)

    def _token_orgs(token: str) -> list[str]:
        for key in store.find("apiKeys"):
            if key["attributes"]["key"] == token:
                return list(key["attributes"]["organizationIds"])
        for grant in store.find("oauthTokens"):
            attrs = grant["attributes"]
            if attrs["accessToken"] == token:
                if parse_iso(attrs["expiresAt"]) <= now():
                    raise ApiError(401, "access token expired")
                return list(attrs["organizationIds"])
        raise ApiError(401, "invalid API key or token")

    def _org(org_id: str) -> dict[str, Any]:
        organization = store.get("organizations", org_id)
        if org_id not in g.organization_ids:
            raise ApiError(403, f"this token has no access to organization {org_id}")
        return organization

    def _event(event_id: str) -> dict[str, Any]:
        event = store.get("events", event_id)
        _org(event["attributes"]["organizationId"])
        return event

    def _ticket(ticket_id: str) -> dict[str, Any]:
        ticket = store.get("tickets", ticket_id)
        _event(ticket["attributes"]["eventId"])
        return ticket

    # --- health, organisations, events ---------------------------------------------------

    @api.get("/health")
    def health() -> Response:
        """GET /v1/health."""
        return json_response({"status": "ok"})

    @api.get("/organizations")
    def organizations() -> Response:
        """GET /v1/organizations."""
        items = store.find("organizations", lambda o: o["id"] in g.organization_ids)
        return list_document(
            "organizations", items, {}, config.default_page_size, config.max_page_size
        )

    @api.get("/organizations/<org_id>")
    def organization(org_id: str) -> Response:
        """GET /v1/organizations/<org_id>."""
        return document("organizations", _org(org_id))

    @api.get("/organizations/<org_id>/events")
    def events(org_id: str) -> Response:
        """GET /v1/organizations/<org_id>/events."""
        _org(org_id)
        items = store.find("events", lambda e: e["attributes"]["organizationId"] == org_id)
        return list_document("events", items, {}, config.default_page_size, config.max_page_size)

    @api.post("/organizations/<org_id>/events")
    def create_event(org_id: str) -> Response:
        """POST /v1/organizations/<org_id>/events."""
        _org(org_id)
        attributes = write_attributes("event")
        if not attributes.get("name"):
            raise ApiError(422, "name can't be blank")
        return document("events", store.create_event(org_id, attributes), 201)

    @api.get("/events/<event_id>")
    def event(event_id: str) -> Response:
        """GET /v1/events/<event_id>."""
        return document("events", _event(event_id))

    # --- tickets and questions -----------------------------------------------------------

    @api.get("/events/<event_id>/tickets")
    def tickets(event_id: str) -> Response:
        """GET /v1/events/<event_id>/tickets."""
        _event(event_id)
        items = store.find("tickets", lambda t: t["attributes"]["eventId"] == event_id)
        return list_document("tickets", items, {}, config.default_page_size, config.max_page_size)

    @api.get("/tickets/<ticket_id>")
    def ticket(ticket_id: str) -> Response:
        """GET /v1/tickets/<ticket_id>."""
        return document("tickets", _ticket(ticket_id))

    @api.get("/tickets/<ticket_id>/bankQuestions")
    def bank_questions(ticket_id: str) -> Response:
        """GET /v1/tickets/<ticket_id>/bankQuestions."""
        _ticket(ticket_id)
        items = store.find("bankQuestions", lambda q: q["attributes"]["ticketId"] == ticket_id)
        return list_document(
            "bankQuestions", items, {}, config.default_page_size, config.max_page_size
        )

    # --- registrations -------------------------------------------------------------------

    @api.get("/events/<event_id>/registrations")
    def registrations(event_id: str) -> Response:
        """GET /v1/events/<event_id>/registrations."""
        _event(event_id)
        filters = parse_filters(REGISTRATION_FILTERS)
        sort = request.args.get("sort", "")
        # A range of the sort's own time field (a window of updatedAt) is cut from the list
        # without it by bisection; the rest is filtered once per change.
        ranged = sort if sort in RANGE_SORTS and set(filters.get(sort, {})) <= RANGE_OPS else ""
        listed = {k: v for k, v in filters.items() if k != ranged}

        def produce() -> tuple[list[dict[str, Any]], list[Any]]:
            items = store.find(
                "registrations",
                lambda r: (
                    r["attributes"]["eventId"] == event_id and matches(r["attributes"], listed)
                ),
                copy_items=False,
            )
            items = sort_items(items, sort) if sort else items
            times = [parse_iso(r["attributes"][ranged]) for r in items] if ranged else []
            return items, times

        # Remembered until the next change: each page costs a page, not the whole event.
        key = ("registrations", event_id, json.dumps(listed, sort_keys=True, default=str), sort)
        items, times = store.listing(key, produce)
        if ranged and ranged in filters:
            items = time_range(items, times, filters[ranged])
        return list_document(
            "registrations",
            items,
            filters,
            config.default_page_size,
            config.max_page_size,
            presorted=True,
        )

    @api.post("/events/<event_id>/registrations")
    def create_registration(event_id: str) -> Response:
        """POST /v1/events/<event_id>/registrations."""
        _event(event_id)
        attributes = write_attributes("registration")
        _require_email(attributes)
        ticket_id = str(attributes.get("ticketId") or "")
        if not ticket_id:
            raise ApiError(422, "ticketId can't be blank")
        ticket_ = store.get("tickets", ticket_id)
        if ticket_["attributes"]["eventId"] != event_id:
            raise ApiError(422, "ticketId does not belong to this event")
        _check_string_map(attributes, "metadata")
        return document("registrations", store.create_registration(event_id, attributes), 201)

    @api.get("/registrations/<registration_id>")
    def registration(registration_id: str) -> Response:
        """GET /v1/registrations/<registration_id>."""
        item = store.get("registrations", registration_id)
        _event(item["attributes"]["eventId"])
        return document("registrations", item)

    @api.patch("/registrations/<registration_id>")
    def update_registration(registration_id: str) -> Response:
        """PATCH /v1/registrations/<registration_id>."""
        item = store.get("registrations", registration_id)
        _event(item["attributes"]["eventId"])
        attributes = write_attributes("registration")
        unknown = sorted(set(attributes) - set(REGISTRATION_PATCH_FIELDS))
        if unknown:
            raise ApiError(422, f"these attributes cannot be updated: {', '.join(unknown)}")
        _check_string_map(attributes, "metadata")
        return document("registrations", store.update_registration(registration_id, attributes))

    # --- magic links ---------------------------------------------------------------------

    @api.get("/tickets/<ticket_id>/magicLinks")
    def magic_links(ticket_id: str) -> Response:
        """GET /v1/tickets/<ticket_id>/magicLinks."""
        _ticket(ticket_id)
        filters = parse_filters(MAGIC_LINK_FILTERS)
        confirm = filters.pop("includeConfirmAndJoin", None)
        items = store.find(
            "magicLinks",
            lambda m: (
                m["attributes"]["ticketId"] == ticket_id and matches(m["attributes"], filters)
            ),
        )
        if confirm is not None:
            filters["includeConfirmAndJoin"] = confirm
        return list_document(
            "magicLinks", items, filters, config.default_page_size, config.max_page_size
        )

    @api.post("/tickets/<ticket_id>/magicLinks")
    def create_magic_link(ticket_id: str) -> Response:
        """POST /v1/tickets/<ticket_id>/magicLinks."""
        ticket_ = _ticket(ticket_id)
        event_ = store.get("events", ticket_["attributes"]["eventId"])
        attributes = write_attributes("magicLink")
        _require_email(attributes)
        for name in ("firstName", "lastName"):
            if not str(attributes.get(name) or "").strip():
                raise ApiError(422, f"{name} can't be blank")
        _check_string_map(attributes, "extraFields")
        _check_string_map(attributes, "metadata")
        allowed = {
            "email",
            "firstName",
            "lastName",
            "headline",
            "extraFields",
            "metadata",
            "registrationId",
        }
        unknown = sorted(set(attributes) - allowed)
        if unknown:
            raise ApiError(422, f"unknown attributes: {', '.join(unknown)}")
        if not event_["attributes"].get("published"):
            raise ApiError(422, "the event must be published before magic links can be created")
        return document("magicLinks", store.create_magic_link(ticket_id, attributes), 201)

    @api.get("/magicLinks/<link_id>")
    def magic_link(link_id: str) -> Response:
        """GET /v1/magicLinks/<link_id>."""
        item = store.get("magicLinks", link_id)
        _ticket(item["attributes"]["ticketId"])
        return document("magicLinks", item)

    @api.delete("/magicLinks/<link_id>")
    def delete_magic_link(link_id: str) -> Response:
        """DELETE /v1/magicLinks/<link_id>."""
        item = store.get("magicLinks", link_id)
        _ticket(item["attributes"]["ticketId"])
        store.delete("magicLinks", link_id)
        return Response(status=204)

    # --- reports -------------------------------------------------------------------------

    @api.get("/events/<event_id>/reports")
    def reports(event_id: str) -> Response:
        """GET /v1/events/<event_id>/reports."""
        _event(event_id)
        items = [
            _ripen(r)
            for r in store.find("reports", lambda r: r["attributes"]["eventId"] == event_id)
        ]
        return list_document("reports", items, {}, config.default_page_size, config.max_page_size)

    @api.post("/events/<event_id>/reports/<report_type>")
    def create_report(event_id: str, report_type: str) -> Response:
        """POST /v1/events/<event_id>/reports/<report_type>."""
        _event(event_id)
        if report_type not in REPORT_TYPES:
            raise ApiError(
                422, f"unknown report type {report_type!r} (known: {', '.join(REPORT_TYPES)})"
            )
        created = store.create_report(event_id, report_type, {"downloadUrl": None})
        return document("reports", created, 201)

    def _ripen(item: dict[str, Any]) -> dict[str, Any]:
        attrs = item["attributes"]
        ready_at = parse_iso(attrs["createdAt"]) + dt.timedelta(seconds=config.report_ready_after)
        if attrs["status"] == "pending" and now() >= ready_at:
            url = f"{request.host_url.rstrip('/')}/v1/reports/{item['id']}/download"
            item = store.update("reports", item["id"], {"status": "completed", "downloadUrl": url})
        return item

    @api.get("/reports/<report_id>")
    def report(report_id: str) -> Response:
        """GET /v1/reports/<report_id>."""
        item = store.get("reports", report_id)
        _event(item["attributes"]["eventId"])
        return document("reports", _ripen(item))

    @api.get("/reports/<report_id>/download")
    def download(report_id: str) -> Response:
        """GET /v1/reports/<report_id>/download."""
        item = _ripen(store.get("reports", report_id))
        _event(item["attributes"]["eventId"])
        if item["attributes"]["status"] != "completed":
            raise ApiError(
                409, "report is not ready yet; poll GET /v1/reports/{id} until status is completed"
            )
        text = render_csv(
            store,
            item["attributes"]["reportType"],
            item["attributes"]["eventId"],
            check_ins=config.report_check_ins,
        )
        return Response(
            text,
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{report_id}.csv"'},
        )

    # --- dataSubscriptions ---------------------------------------------------------------

    @api.post("/events/<event_id>/dataSubscriptions")
    def create_subscription(event_id: str) -> Response:
        """POST /v1/events/<event_id>/dataSubscriptions."""
        _event(event_id)
        attributes = write_attributes("dataSubscription")
        configuration = attributes.get("configuration")
        if not isinstance(configuration, dict) or not str(configuration.get("url", "")).startswith(
            ("http://", "https://")
        ):
            raise ApiError(422, "configuration.url must be an http(s) URL")
        expires = configuration.get("expiresAt")
        try:
            if expires and parse_iso(expires) <= now():
                raise ApiError(422, "configuration.expiresAt must be in the future")
        except ValueError as exc:
            raise ApiError(422, f"configuration.expiresAt: {exc}") from exc
        signals = attributes.get("signals")
        if (
            not isinstance(signals, list)
            or not all(isinstance(s, str) for s in signals)
            or not signals
        ):
            raise ApiError(422, "signals must be a non-empty list of strings")
        return document(
            "dataSubscriptions", upsert_subscription(store, event_id, configuration, signals), 201
        )

    app.register_blueprint(api)
    app.register_blueprint(admin)
    _public_routes(app, store, config)
    return app


def upsert_subscription(
    store: Store, event_id: str, configuration: dict[str, Any], signals: list[str]
) -> dict[str, Any]:
    """Create a subscription; the same event, URL and type again renews it (new expiry, signals)."""
    config = {"type": "webhook", **configuration}
    for existing in store.find(
        "dataSubscriptions", lambda s: s["attributes"]["eventId"] == event_id
    ):
        old = existing["attributes"]["configuration"]
        if old.get("url") == config["url"] and old.get("type") == config["type"]:
            return store.update(
                "dataSubscriptions", existing["id"], {"configuration": config, "signals": signals}
            )
    return store.put_raw(
        "dataSubscriptions", {"eventId": event_id, "configuration": config, "signals": signals}
    )


def _is_api(path: str) -> bool:
    return path.startswith(("/v1/", "/oauth/"))


def _apply(fault: Any) -> Response | None:
    if fault is None:
        return None
    if fault.latency:
        time.sleep(float(fault.latency))
    if fault.status is None:
        return None
    headers = {}
    if fault.retry_after is not None:
        headers["Retry-After"] = str(
            math.ceil(float(fault.retry_after))
        )  # whole seconds, as RFC 9110 says
    return error_response(int(fault.status), fault.body or "injected fault", headers)


def _require_email(attributes: dict[str, Any]) -> None:
    if not _EMAIL.match(str(attributes.get("email") or "")):
        raise ApiError(422, "email is invalid")


def _check_string_map(attributes: dict[str, Any], name: str) -> None:
    value = attributes.get(name)
    if value is None:
        return
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ApiError(422, f"{name} must be an object of string values")


def _public_routes(app: Flask, store: Store, config: SandboxConfig) -> None:
    """The invitee's magic-link click, the ticket registration page and the OAuth platform."""

    @app.get("/m/<token>")
    def click(token: str) -> Response:
        """GET /m/<token>."""
        link = store.find_magic_link_by_token(token)
        store.accept_magic_link(link["id"])
        return Response("<p>You are registered. See you at the event.</p>", mimetype="text/html")

    @app.get("/events/<slug>/registration")
    def registration_page(slug: str) -> Response:
        """GET /events/<slug>/registration."""
        return Response(f"<p>Registration for {slug}</p>", mimetype="text/html")

    @app.post("/events/<slug>/registration")
    def register_through_page(slug: str) -> Response:
        """POST /events/<slug>/registration?code=...&utm_source=...: the registration form sent
        from the ticket's registration URL (form or JSON fields ``email``, ``firstName``,
        ``lastName``, ``headline``). The URL's UTM parameters and the browser's ``Referer`` are
        recorded on the registration; answers with the registration as JSON:API."""
        event_ids = {
            e["id"] for e in store.find("events", lambda e: e["attributes"]["slug"] == slug)
        }
        code = request.args.get("code", "")
        tickets = store.find(
            "tickets",
            lambda t: (
                t["attributes"]["eventId"] in event_ids
                and t["attributes"]["registrationUrl"].rsplit("=", 1)[-1] == code
            ),
        )
        if not tickets:
            raise ApiError(404, f"no ticket with code {code!r} on event {slug!r}")
        ticket_ = tickets[0]
        form = request.get_json(silent=True) or request.form
        attributes: dict[str, Any] = {
            name: str(form[name])
            for name in ("email", "firstName", "lastName", "headline")
            if form.get(name)
        }
        _require_email(attributes)
        for name, param in TRACKING_ATTRIBUTES.items():
            value = request.args.get(param) if param else request.headers.get("Referer")
            if value:
                attributes[name] = value
        attributes["ticketId"] = ticket_["id"]
        created = store.create_registration(ticket_["attributes"]["eventId"], attributes)
        return document("registrations", created, 201)

    @app.get("/oauth/authorize")
    def authorize() -> Response:
        """GET /oauth/authorize."""
        args = request.args
        if args.get("client_id") != config.oauth_client_id or args.get("response_type") != "code":
            return json_response(
                {"error": "invalid_client", "error_description": "unknown client or response_type"},
                401,
            )
        code = store.put_raw(
            "oauthCodes",
            {
                "code": new_id(),
                "redirectUri": args.get("redirect_uri", ""),
                "resource": args.get("resource", ""),
            },
        )
        query = urlencode({"code": code["attributes"]["code"], "state": args.get("state", "")})
        return redirect(f"{args.get('redirect_uri', '')}?{query}")  # type: ignore[return-value]

    @app.post("/oauth/token")
    def token() -> Response:
        """POST /oauth/token."""
        args = request.args if request.args else request.form
        if (
            args.get("client_id") != config.oauth_client_id
            or args.get("client_secret") != config.oauth_client_secret
        ):
            return json_response(
                {"error": "invalid_client", "error_description": "Client authentication failed"},
                401,
            )
        grant = args.get("grant_type")
        if grant == "authorization_code":
            codes = store.find("oauthCodes", lambda c: c["attributes"]["code"] == args.get("code"))
            if not codes:
                return _invalid_grant()
            store.delete("oauthCodes", codes[0]["id"])
        elif grant == "refresh_token":
            old = store.find(
                "oauthTokens",
                lambda t: t["attributes"]["refreshToken"] == args.get("refresh_token"),
            )
            if not old:
                return _invalid_grant()
            store.delete("oauthTokens", old[0]["id"])
        else:
            return json_response(
                {"error": "unsupported_grant_type", "error_description": f"{grant!r}"}, 400
            )
        return json_response(issue_token(store, config))


def _invalid_grant() -> Response:
    return json_response(
        {
            "error": "invalid_grant",
            "error_description": "The provided authorization grant is invalid, expired, revoked, or was issued to another client.",
        },
        400,
    )


def issue_token(store: Store, config: SandboxConfig) -> dict[str, Any]:
    """Issue an OAuth access/refresh token pair for every organisation (Doorkeeper-style body)."""
    expires = now() + dt.timedelta(seconds=config.token_ttl)
    org_ids = [o["id"] for o in store.find("organizations")]
    access, refresh = new_id() + new_id(), new_id() + new_id()
    store.put_raw(
        "oauthTokens",
        {
            "accessToken": access,
            "refreshToken": refresh,
            "expiresAt": iso(expires),
            "organizationIds": org_ids,
        },
    )
    return {
        "access_token": access,
        "refresh_token": refresh,
        "token_type": "Bearer",
        "expires_in": int(config.token_ttl),
        "expires_at": int(expires.timestamp()),
        "scope": "api",
    }
