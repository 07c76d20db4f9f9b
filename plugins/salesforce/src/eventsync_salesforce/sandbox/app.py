"""The HTTP surface of the sandbox: REST, OAuth, Bulk 2.0 and the admin API, as a Flask app.

Every ``/services/data`` request passes, in order: fault injection, the session check (401
``INVALID_SESSION_ID`` as a JSON array), the daily allowance (403 ``REQUEST_LIMIT_EXCEEDED``)
and the counters; every REST answer carries ``Sforce-Limit-Info``.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from flask import Flask, Response, g, request

from . import ids, query, soql
from .admin import register_admin
from .composite import register_composite
from .errors import SfError
from .locks import PARENT_FIELDS
from .oauth import OAuthError
from .org import Org
from .store import WriteContext
from .webpages import register_webpages

#: The WSGI environ key marking a Composite subrequest dispatched inside the sandbox.
SUBREQUEST = "eventsync.sandbox.subrequest"

_DATA = re.compile(r"^/services/data/v(?P<version>\d+\.\d)(?P<rest>/.*)?$")


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON answer in Salesforce's content type."""
    return Response(
        json.dumps(body),
        status=status,
        headers=headers or {},
        content_type="application/json;charset=UTF-8",
    )


def error_response(error: SfError) -> Response:
    """The REST error body of an SfError."""
    return json_response(error.rest_body(), error.status)


def categorise(path: str) -> str:
    """The endpoint category of a request path (fault injection and counters)."""
    if path.startswith("/services/oauth2/"):
        return "token"
    match = _DATA.match(path)
    if not match:
        return "other"
    rest = (match.group("rest") or "/").strip("/")
    head = rest.split("/", 1)[0]
    if rest == "":
        return "resources"
    if head == "limits":
        return "limits"
    if head == "sobjects":
        parts = rest.split("/")
        if len(parts) == 1:
            return "describe_global"
        if (
            len(parts) == 3
            and parts[2] == "describe"
            or len(parts) == 2
            and request.method == "GET"
        ):
            return "describe"
        return "sobject"
    if head in ("query", "queryAll"):
        return "query"
    if rest.startswith("composite/sobjects"):
        return "collections"
    if head == "composite":
        return "composite"
    if head == "jobs":
        return "bulk"
    return head


def _request_items(endpoint: str) -> int:
    """How many records a request carries (a latency profile charges per record)."""
    if endpoint not in ("collections", "composite") or not request.is_json:
        return len([i for i in request.args.get("ids", "").split(",") if i]) or 1
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return 1
    if endpoint == "collections":
        return len(body.get("records") or []) or 1
    subrequests = body.get("compositeRequest") or []
    records = sum(
        len(sub.get("body", {}).get("records") or []) or 1
        for sub in subrequests
        if isinstance(sub, dict) and isinstance(sub.get("body", {}), dict)
    )
    return max(records, 1)


def create_app(org: Org) -> Flask:
    """The Flask app serving ``org``."""
    app = Flask("eventsync_salesforce.sandbox")
    app.url_map.strict_slashes = False

    @app.before_request
    def _enter() -> None:
        # Registered first: every API request is in flight from here to its teardown, however
        # ``_gate`` answers it (Composite subrequests are part of their Composite's).
        if not request.path.startswith("/_admin") and not request.environ.get(SUBREQUEST):
            g.in_flight = categorise(request.path)
            org.counters.enter(g.in_flight)

    @app.teardown_request
    def _leave(_exc: BaseException | None) -> None:
        if request.environ.get(SUBREQUEST):  # may share its Composite's ``g``
            return
        endpoint = g.pop("in_flight", None)
        if endpoint is not None:
            org.counters.leave(endpoint)

    @app.before_request
    def _gate() -> Response | None:
        path = request.path
        if path.startswith("/_admin"):
            return None
        endpoint = categorise(path)
        g.endpoint = endpoint
        # A Composite subrequest: its Composite call was counted, waited and gated already;
        # it still meets its own faults, so one subrequest can fail inside a Composite.
        sub = bool(request.environ.get(SUBREQUEST))
        counted = f"composite:{endpoint}" if sub else endpoint
        if org.latency is not None and not sub:
            org.latency.wait(endpoint, _request_items(endpoint))
        fault = org.faults.pick(endpoint, request.method)
        if fault is not None and fault.when == "after":
            g.after_fault = fault  # handled below, once the request took effect
            fault = None
        if fault is not None:
            if fault.latency:
                time.sleep(fault.latency)
            if fault.per_record and endpoint == "collections":
                g.per_record_fault = fault
            elif fault.status:
                org.counters.count(counted, api=False)
                body = fault.body()
                if isinstance(body, str):
                    return Response(body, status=fault.status, content_type="text/plain")
                return json_response(body, fault.status, _limit_header())
        if not path.startswith("/services/data/v"):
            org.counters.count(counted, api=False)
            return None
        token = request.headers.get("Authorization", "")
        token = token[7:] if token.lower().startswith("bearer ") else ""
        user_id = org.sessions.user_for(token) if token else None
        if user_id is None:
            org.counters.count(counted, api=False)
            return json_response(
                [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], 401
            )
        g.user_id = user_id
        if sub:
            org.counters.count(counted, api=False)
            return None
        if org.counters.exhausted():
            org.counters.count(counted, api=False)
            return json_response(
                [
                    {
                        "message": "TotalRequests Limit exceeded.",
                        "errorCode": "REQUEST_LIMIT_EXCEEDED",
                    }
                ],
                403,
                _limit_header(),
            )
        org.counters.count(endpoint, api=True)
        return None

    @app.after_request
    def _lose_answer(response: Response) -> Response:
        fault = getattr(g, "after_fault", None)
        if fault is None:
            return response
        if fault.latency:
            time.sleep(fault.latency)  # a client with a shorter timeout never sees an answer
        if not fault.status:
            return response
        body = fault.body()
        if isinstance(body, str):
            return Response(body, status=fault.status, content_type="text/plain")
        return json_response(body, fault.status, _limit_header())

    def _limit_header() -> dict[str, str]:
        return {"Sforce-Limit-Info": f"api-usage={org.counters.used}/{org.counters.daily_limit}"}

    @app.after_request
    def _limits(response: Response) -> Response:
        if request.path.startswith("/services/data/"):
            response.headers.update(_limit_header())
        return response

    @app.errorhandler(SfError)
    def _sf_error(error: SfError) -> Response:
        return error_response(error)

    @app.errorhandler(soql.SoqlError)
    def _soql_error(error: soql.SoqlError) -> Response:
        return json_response([{"message": error.message, "errorCode": error.code}], 400)

    @app.errorhandler(404)
    def _not_found(_error: Any) -> Response:
        return json_response(
            [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}], 404
        )

    @app.errorhandler(405)
    def _bad_method(_error: Any) -> Response:
        return json_response(
            [
                {
                    "errorCode": "METHOD_NOT_ALLOWED",
                    "message": f"HTTP Method '{request.method}' not allowed. Allowed are GET,HEAD",
                }
            ],
            405,
        )

    def ctx() -> WriteContext:
        return WriteContext(g.user_id)

    def body_json() -> Any:
        try:
            return json.loads(request.get_data() or b"null")
        except ValueError as exc:
            raise SfError("JSON_PARSER_ERROR", f"Unexpected character: {exc}", [], 400) from None

    # --- OAuth ------------------------------------------------------------------------

    @app.post("/services/oauth2/token")
    def token() -> Response:
        try:
            return json_response(
                org.tokens.handle(request.form, request.headers.get("Authorization"))
            )
        except OAuthError as exc:
            return json_response(
                {"error": exc.error, "error_description": exc.description}, exc.status
            )

    register_webpages(app, org)

    # --- resources --------------------------------------------------------------------

    @app.get("/services/data")
    def versions() -> Response:
        return json_response(
            [
                {"label": label, "url": f"/services/data/v{version}", "version": version}
                for label, version in (
                    ("Winter '24", "59.0"),
                    ("Spring '24", "60.0"),
                    ("Summer '24", "61.0"),
                    ("Winter '25", "62.0"),
                )
            ]
        )

    base = "/services/data/v<version>"

    @app.get(f"{base}/")
    def resources(version: str) -> Response:
        names = ("sobjects", "query", "queryAll", "composite", "limits", "jobs")
        return json_response({name: f"/services/data/v{version}/{name}" for name in names})

    @app.get(f"{base}/limits")
    def limits(version: str) -> Response:
        used, limit = org.counters.used, org.counters.daily_limit
        return json_response(
            {
                "DailyApiRequests": {"Max": limit, "Remaining": max(limit - used, 0)},
                "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": 10000},
                "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            }
        )

    @app.get(f"{base}/sobjects")
    def describe_global(version: str) -> Response:
        return json_response(
            {
                "encoding": "UTF-8",
                "maxBatchSize": 200,
                "sobjects": [obj.global_entry(version) for obj in org.store.objects.values()],
            }
        )

    def _children(name: str) -> list[tuple[str, Any]]:
        return [
            (obj.name, field)
            for obj in org.store.objects.values()
            for field in obj.fields
            if field.type == "reference" and name in field.reference_to
        ]

    @app.get(f"{base}/sobjects/<name>/describe")
    def describe(version: str, name: str) -> Response:
        obj = org.store.object(name)
        return json_response(obj.describe(version, _children(obj.name)))

    @app.get(f"{base}/sobjects/<name>")
    def sobject_info(version: str, name: str) -> Response:
        obj = org.store.object(name)
        return json_response({"objectDescribe": obj.global_entry(version), "recentItems": []})

    # --- single records ---------------------------------------------------------------

    @app.post(f"{base}/sobjects/<name>")
    def create(version: str, name: str) -> Response:
        values = body_json()
        if not isinstance(values, dict):
            raise SfError("JSON_PARSER_ERROR", "The request body must be a JSON object")
        with org.store.transaction(ctx()) as tx:
            record_id = tx.create(name, values)
        return json_response({"id": record_id, "success": True, "errors": []}, 201)

    def _record(version: str, name: str, record: dict[str, Any]) -> dict[str, Any]:
        obj = org.store.object(name)
        wanted = request.args.get("fields")
        names = [f.strip() for f in wanted.split(",")] if wanted else [f.name for f in obj.fields]
        row: dict[str, Any] = {"attributes": query.attributes(obj, record["Id"], version)}
        for field_name in names:
            field = obj.field(field_name)
            if field is None:
                raise SfError(
                    "INVALID_FIELD",
                    f"No such column '{field_name}' on entity '{obj.name}'.",
                    [],
                    400,
                )
            row[field.name] = record.get(field.name)
        return row

    @app.route(f"{base}/sobjects/<name>/<record_id>", methods=["GET", "PATCH", "DELETE"])
    def record(version: str, name: str, record_id: str) -> Response:
        obj = org.store.object(name)
        if request.method == "GET":
            return json_response(_record(version, obj.name, org.store.existing(obj, record_id)))
        if request.method == "DELETE":
            with org.store.transaction(ctx()) as tx:
                tx.delete(obj.name, record_id)
            return Response(status=204)
        values = body_json()
        with org.store.transaction(ctx()) as tx:
            tx.update(obj.name, record_id, values or {})
        return Response(status=204)

    @app.route(f"{base}/sobjects/<name>/<field>/<path:value>", methods=["GET", "PATCH", "POST"])
    def by_external_id(version: str, name: str, field: str, value: str) -> Response:
        obj = org.store.object(name)
        if request.method == "GET":
            matches = org.store.match(obj, field, value)
            if not matches:
                raise SfError("NOT_FOUND", "The requested resource does not exist", [], 404)
            if len(matches) > 1:
                return _multiple(version, obj.name, matches)
            return json_response(_record(version, obj.name, org.store.existing(obj, matches[0])))
        values = body_json() or {}
        try:
            with org.store.transaction(ctx()) as tx:
                record_id, created = tx.upsert(obj.name, field, value, values)
        except SfError as exc:
            if exc.status == 300:
                return _multiple(version, obj.name, exc.matches)  # type: ignore[attr-defined]
            if exc.status == 404:
                raise SfError(
                    "NOT_FOUND", "The requested resource does not exist", [], 404
                ) from None
            raise
        body = {"id": record_id, "success": True, "errors": [], "created": created}
        return json_response(body, 201 if created else 200)

    def _multiple(version: str, name: str, matches: list[str]) -> Response:
        return json_response(
            [f"/services/data/v{version}/sobjects/{name}/{m}" for m in matches], 300
        )

    # --- query ------------------------------------------------------------------------

    def _batch_size() -> int:
        header = request.headers.get("Sforce-Query-Options", "")
        match = re.search(r"batchSize=(\d+)", header)
        size = org.batch_size
        if match:
            size = min(size, max(int(match.group(1)), 1))
        return size

    def _page(version: str, endpoint: str, locator: str, cursor: Any, size: int) -> Response:
        rows = cursor.rows[cursor.position : cursor.position + size]
        cursor.position += len(rows)
        done = cursor.position >= len(cursor.rows)
        body: dict[str, Any] = {"totalSize": cursor.total, "done": done}
        if not done:
            body["nextRecordsUrl"] = (
                f"/services/data/v{version}/{endpoint}/{locator}-{cursor.position}"
            )
        else:
            with org.cursor_lock:
                org.cursors.pop(locator, None)
        body["records"] = rows
        return json_response(body)

    @app.get(f"{base}/query")
    @app.get(f"{base}/queryAll")
    def run_query(version: str) -> Response:
        endpoint = "queryAll" if request.path.rstrip("/").endswith("queryAll") else "query"
        text = request.args.get("q")
        if not text:
            raise SfError("MALFORMED_QUERY", "A query string has to be specified", [], 400)
        rows, total = query.run(org.store, text, endpoint == "queryAll", version)
        if not rows:
            return json_response({"totalSize": total, "done": True, "records": []})
        locator = org.new_cursor(rows, total)
        with org.cursor_lock:
            cursor = org.cursors[locator]
        return _page(version, endpoint, locator, cursor, _batch_size())

    @app.get(f"{base}/query/<locator>")
    @app.get(f"{base}/queryAll/<locator>")
    def query_more(version: str, locator: str) -> Response:
        endpoint = "queryAll" if "/queryAll/" in request.path else "query"
        key, _, position = locator.partition("-")
        with org.cursor_lock:
            cursor = org.cursors.get(key)
        if cursor is None or not position.isdigit() or int(position) != cursor.position:
            raise SfError("INVALID_QUERY_LOCATOR", "invalid query locator", [], 400)
        return _page(version, endpoint, key, cursor, _batch_size())

    # --- sObject Collections ----------------------------------------------------------

    def _collection_body() -> tuple[list[dict[str, Any]], bool]:
        body = body_json()
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise SfError("JSON_PARSER_ERROR", "The request body must contain records", [], 400)
        records = body["records"]
        if len(records) > 200:
            raise SfError(
                "EXCEEDED_ID_LIMIT",
                "record limit reached. cannot submit more than 200 records into this call",
                [],
                400,
            )
        for item in records:
            if (
                not isinstance(item, dict)
                or not isinstance(item.get("attributes"), dict)
                or "type" not in item["attributes"]
            ):
                raise SfError("INVALID_TYPE", "Must send a concrete entity type.", [], 400)
            obj = org.store.object(item["attributes"]["type"])
            for key in item:
                if key not in ("attributes", "id", "Id") and obj.field(key) is None:
                    raise SfError(
                        "INVALID_FIELD",
                        f"No such column '{key}' on sobject of type {obj.name}",
                        [],
                        400,
                    )
        return records, bool(body.get("allOrNone", False))

    def _parent_of(item: Any) -> str | None:
        """The parent a write of ``item`` locks (a CampaignMember's Campaign), if any."""
        if isinstance(item, dict):
            name = str(item.get("attributes", {}).get("type", ""))
            record_id = item.get("id") or item.get("Id")
        else:
            name, record_id = "", item
        obj = None
        if record_id and ids.normalise(str(record_id)):
            try:
                obj = org.store.object_of(str(record_id))
            except SfError:
                obj = None
        field = PARENT_FIELDS.get(obj.name if obj is not None else name)
        if field is None:
            return None
        if isinstance(item, dict) and item.get(field):
            return str(item[field])
        found = org.store.find(obj, str(record_id)) if obj is not None and record_id else None
        return str(found.get(field)) if found and found.get(field) else None

    def _run_collection(items: list[Any], action: Any, all_or_none: bool) -> Response:
        if not org.locks.enabled:
            return _run_locked(items, action, all_or_none, set())
        parents = [_parent_of(item) for item in items]
        with org.locks.holding(p for p in parents if p) as refused:
            locked_out = {n for n, parent in enumerate(parents) if parent in refused}
            return _run_locked(items, action, all_or_none, locked_out)

    def _run_locked(
        items: list[Any], action: Any, all_or_none: bool, locked_out: set[int]
    ) -> Response:
        fault = getattr(g, "per_record_fault", None)
        results: list[dict[str, Any]] = []
        with org.store.transaction(ctx()) as tx:
            failed = False
            for n, item in enumerate(items):
                try:
                    if fault is not None or n in locked_out:
                        raise SfError(
                            fault.error_code
                            if fault and fault.error_code
                            else "UNABLE_TO_LOCK_ROW",
                            fault.message
                            if fault and fault.message
                            else "unable to obtain exclusive access to this record or 1 records",
                            [],
                        )
                    with tx.savepoint():
                        results.append(action(tx, item))
                except SfError as exc:
                    failed = True
                    results.append({"success": False, "errors": [exc.collection_error()]})
            if all_or_none and failed:
                tx.rollback_to()
                rolled = {
                    "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                    "message": "Record rolled back because not all records were valid "
                    "and the request was using AllOrNone header",
                    "fields": [],
                }
                results = [
                    r
                    if not r["success"]
                    else {"id": r.get("id"), "success": False, "errors": [rolled]}
                    for r in results
                ]
        return json_response(results)

    def _fields(item: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in item.items() if k not in ("attributes", "id", "Id")}

    @app.route(f"{base}/composite/sobjects", methods=["POST", "PATCH", "DELETE", "GET"])
    def collections(version: str) -> Response:
        if request.method == "DELETE":
            wanted = [i for i in request.args.get("ids", "").split(",") if i]
            all_or_none = request.args.get("allOrNone", "false").lower() == "true"
            if len(wanted) > 200:
                raise SfError("EXCEEDED_ID_LIMIT", "too many ids", [], 400)

            def remove(tx: Any, record_id: str) -> dict[str, Any]:
                if ids.normalise(record_id) is None:
                    raise SfError("MALFORMED_ID", f"malformed id {record_id}", [])
                tx.delete(None, record_id)
                return {"id": record_id, "success": True, "errors": []}

            return _run_collection(wanted, remove, all_or_none)
        if request.method == "GET":
            raise SfError("METHOD_NOT_ALLOWED", "use /composite/sobjects/{SObject}", [], 405)
        records, all_or_none = _collection_body()
        if request.method == "POST":
            for item in records:
                if item.get("id") or item.get("Id"):
                    raise SfError("INVALID_FIELD", "Can't specify an Id in a create call", [], 400)

            def insert(tx: Any, item: dict[str, Any]) -> dict[str, Any]:
                record_id = tx.create(item["attributes"]["type"], _fields(item))
                return {"id": record_id, "success": True, "errors": []}

            return _run_collection(records, insert, all_or_none)

        def update(tx: Any, item: dict[str, Any]) -> dict[str, Any]:
            record_id = item.get("id") or item.get("Id")
            if not record_id:
                raise SfError("MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            tx.update(item["attributes"]["type"], record_id, _fields(item))
            return {"id": record_id, "success": True, "errors": []}

        return _run_collection(records, update, all_or_none)

    @app.route(f"{base}/composite/sobjects/<name>/<field>", methods=["PATCH"])
    def collections_upsert(version: str, name: str, field: str) -> Response:
        obj = org.store.object(name)
        target = obj.field(field)
        if target is None or not (target.external_id or target.id_lookup):
            raise SfError(
                "INVALID_FIELD",
                f"Field name provided, {field} is not an External ID "
                f"or indexed field for {obj.name}",
                [],
                400,
            )
        records, all_or_none = _collection_body()

        def upsert(tx: Any, item: dict[str, Any]) -> dict[str, Any]:
            if item["attributes"]["type"].lower() != obj.name.lower():
                raise SfError("INVALID_TYPE", "Must send a concrete entity type.", [])
            value = next((v for k, v in item.items() if k.lower() == target.name.lower()), None)
            record_id, created = tx.upsert(obj.name, target.name, value, _fields(item))
            return {"id": record_id, "success": True, "errors": [], "created": created}

        return _run_collection(records, upsert, all_or_none)

    @app.get(f"{base}/composite/sobjects/<name>")
    def collections_retrieve(version: str, name: str) -> Response:
        obj = org.store.object(name)
        wanted = [i for i in request.args.get("ids", "").split(",") if i]
        rows: list[Any] = []
        for record_id in wanted:
            found = org.store.find(obj, record_id)
            rows.append(
                _record(version, obj.name, found) if found and not found.get("IsDeleted") else None
            )
        return json_response(rows)

    # --- Bulk API 2.0 ingest ----------------------------------------------------------

    @app.post(f"{base}/jobs/ingest")
    def bulk_create(version: str) -> Response:
        return json_response(org.bulk.create(body_json() or {}, g.user_id))

    @app.route(f"{base}/jobs/ingest/<job_id>", methods=["GET", "PATCH", "DELETE"])
    def bulk_job(version: str, job_id: str) -> Response:
        if request.method == "GET":
            from .bulk import public

            return json_response(public(org.bulk.get(job_id)))
        if request.method == "DELETE":
            org.bulk.delete(job_id)
            return Response(status=204)
        body = body_json() or {}
        return json_response(org.bulk.set_state(job_id, str(body.get("state")), g.user_id))

    @app.put(f"{base}/jobs/ingest/<job_id>/batches")
    def bulk_upload(version: str, job_id: str) -> Response:
        org.bulk.upload(job_id, request.get_data(as_text=True))
        return Response(status=201)

    @app.get(f"{base}/jobs/ingest/<job_id>/<kind>")
    def bulk_results(version: str, job_id: str, kind: str) -> Response:
        return Response(org.bulk.results(job_id, kind), content_type="text/csv")

    register_composite(app, org, SUBREQUEST)
    register_admin(app, org)
    return app
