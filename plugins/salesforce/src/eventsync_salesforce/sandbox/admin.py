"""The sandbox admin API under ``/_admin`` (documented in the plugin's README).

Every call needs the header ``X-Admin-Token`` with the token from ``handle.info()``.
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING, Any

import attrs
from flask import Flask, Response, request

from . import config as config_mod
from . import metadata, outbound, webflow
from .errors import SfError
from .store import WriteContext

if TYPE_CHECKING:
    from .org import Org


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def register_admin(app: Flask, org: Org) -> None:
    """Add the ``/_admin`` routes to ``app``."""

    @app.before_request
    def _admin_auth() -> Response | None:
        if not request.path.startswith("/_admin"):
            return None
        given = request.headers.get("X-Admin-Token", "")
        if not hmac.compare_digest(given, org.options.get("_admin_token", "")):
            return _json({"error": "missing or wrong X-Admin-Token"}, 401)
        return None

    def body() -> dict[str, Any]:
        data = request.get_json(silent=True)
        return data if isinstance(data, dict) else {}

    def as_user(data: dict[str, Any]) -> str:
        username = data.get("as_user") or "integration@sandbox.example"
        try:
            return org.user_id(username)
        except KeyError:
            raise SfError("NOT_FOUND", f"no such user: {username}", [], 404) from None

    @app.get("/_admin/counters")
    def counters() -> Response:
        return _json(org.counters.snapshot())

    @app.post("/_admin/counters/reset")
    def counters_reset() -> Response:
        data = body()
        org.counters.reset(used=data.get("api_usage", 0), daily_limit=data.get("daily_limit"))
        return _json(org.counters.snapshot())

    @app.get("/_admin/locks")
    def locks() -> Response:
        return _json(org.locks.snapshot())

    @app.route("/_admin/faults", methods=["GET", "POST", "DELETE"])
    def faults() -> Response:
        if request.method == "POST":
            try:
                fault = org.faults.add(body())
            except (TypeError, ValueError) as exc:
                return _json({"error": str(exc)}, 400)
            return _json(attrs.asdict(fault), 201)
        if request.method == "DELETE":
            org.faults.clear()
        return _json(org.faults.list())

    @app.post("/_admin/sessions/expire")
    def expire() -> Response:
        return _json({"expired": org.sessions.expire(body().get("token"))})

    def _write(data: dict[str, Any], context: WriteContext) -> Response:
        name = str(data.get("object", ""))
        results = []
        with org.store.transaction(context) as tx:
            for values in data.get("records", []):
                try:
                    with tx.savepoint():
                        results.append(
                            {"id": tx.create(name, values), "success": True, "errors": []}
                        )
                except SfError as exc:
                    results.append({"success": False, "errors": [exc.collection_error()]})
        return _json(results)

    @app.post("/_admin/seed")
    def seed() -> Response:
        data = body()
        return _write(data, WriteContext(as_user(data)))

    @app.post("/_admin/import")
    def import_wizard() -> Response:
        data = body()
        context = WriteContext(
            as_user(data), bool(data.get("trigger_workflow", False)), "import_wizard"
        )
        return _write(data, context)

    @app.post("/_admin/undelete")
    def undelete() -> Response:
        # Apex/SOAP undelete(ids): REST has no such call, so it is an admin action only.
        data = body()
        record_ids = data.get("ids")
        if not isinstance(record_ids, list) or not all(isinstance(i, str) for i in record_ids):
            return _json({"error": 'give "ids": a list of record ids to restore'}, 400)
        results = []
        with org.store.transaction(WriteContext(as_user(data))) as tx:
            for record_id in record_ids:
                try:
                    with tx.savepoint():
                        restored = tx.undelete(record_id)
                    results.append({"id": restored, "success": True, "errors": []})
                except SfError as exc:
                    results.append(
                        {"id": record_id, "success": False, "errors": [exc.collection_error()]}
                    )
        return _json(results)

    @app.get("/_admin/records/<name>")
    def records(name: str) -> Response:
        # ?skip=N: all but the first N in creation order, so a watcher polling for new
        # records reads only those, not every record again (and holds the lock that long).
        skip = request.args.get("skip", "0")
        if not skip.isdigit():
            return _json({"error": "skip must be a whole number of records"}, 400)
        obj = org.store.object(name)
        with org.store.lock:
            return _json(list(org.store.records[obj.name].values())[int(skip) :])

    @app.post("/_admin/schema/remove_field")
    def remove_field() -> Response:
        data = body()
        org.store.remove_field(str(data.get("object")), str(data.get("field")))
        return _json({"removed": data.get("field")})

    @app.post("/_admin/schema/add_field")
    def add_field() -> Response:
        data = body()
        obj = org.store.object(str(data.get("object")))
        spec = config_mod._CONVERTER.structure(data.get("field", {}), config_mod.FieldSpec)
        field = metadata.custom_field(spec.as_dict())
        org.store.add_object(attrs.evolve(obj, fields=obj.fields + (field,)))
        return _json({"added": field.name})

    @app.get("/_admin/outbound")
    def outbound_status() -> Response:
        return _json(
            {
                "rules": [outbound.as_mapping(r) for r in org.outbound.rules],
                "duplicate": org.outbound.duplicate,
                "reorder": org.outbound.reorder,
                "messages": org.outbound.status(),
            }
        )

    @app.post("/_admin/outbound/rules")
    def outbound_rule() -> Response:
        try:
            spec = config_mod._CONVERTER.structure(body(), config_mod.OutboundSpec)
        except Exception as exc:  # noqa: BLE001 - report any structuring problem as a 400
            return _json({"error": str(exc)}, 400)
        return _json(outbound.as_mapping(org.add_outbound_rule(spec)), 201)

    @app.post("/_admin/outbound/mode")
    def outbound_mode() -> Response:
        data = body()
        org.outbound.duplicate = bool(data.get("duplicate", org.outbound.duplicate))
        org.outbound.reorder = bool(data.get("reorder", org.outbound.reorder))
        return _json({"duplicate": org.outbound.duplicate, "reorder": org.outbound.reorder})

    @app.route("/_admin/oauth/apps", methods=["GET", "POST"])
    def oauth_apps() -> Response:
        if request.method == "POST":
            try:
                registered = org.webflow.register(webflow.app_from_mapping(body()))
            except (TypeError, ValueError) as exc:
                return _json({"error": str(exc)}, 400)
            return _json(registered.as_dict(), 201)
        return _json([registered.as_dict() for registered in org.webflow.apps()])

    @app.post("/_admin/oauth/codes/expire")
    def oauth_codes_expire() -> Response:
        return _json({"expired": org.webflow.expire_codes()})

    @app.post("/_admin/save")
    def save() -> Response:
        path = org.options.get("state_file")
        if not path:
            return _json({"error": "no state_file option"}, 400)
        org.store.save(path)
        return _json({"saved": str(path)})
