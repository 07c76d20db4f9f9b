"""The sandbox's HTTP surface: HubSpot's API routes and the admin API, one WSGI app.

The API (``Authorization: Bearer <private app token or OAuth access token>``; every answer
carries ``X-HubSpot-RateLimit-*`` headers, the daily ones only for private apps)::

    GET    /account-info/v3/details                      {"portalId", "timeZone", ...}
    GET    /crm/v3/properties/{object}                   {"results": [property ...]}
    GET    /crm/v3/schemas                               the custom objects
    POST   /crm/v3/objects/{object}/batch/create         {"inputs": [{"properties", "objectWriteTraceId"}]}
    POST   /crm/v3/objects/{object}/batch/update         {"inputs": [{"id", "properties", ...}]}
    POST   /crm/v3/objects/{object}/batch/upsert         {"inputs": [{"idProperty", "id", "properties", ...}]}
    POST   /crm/v3/objects/{object}/batch/read           {"inputs": [{"id"}], "properties"}
    POST   /crm/v3/objects/{object}/search               {"filterGroups", "sorts", "properties", "limit", "after"}
    GET    /crm/v3/objects/{object}/{id}                 one record
    DELETE /crm/v3/objects/{object}/{id}                 archive it (204)
    POST   /oauth/v1/token                               form: grant_type, client_id, client_secret ...

Batch answers list their ``results`` in an order of their own (shuffled), as HubSpot's may.

The admin API (no token; tests and demos only)::

    GET    /_admin/objects/{object}      every record
    GET    /_admin/counters              calls per endpoint, faults injected; DELETE resets
    POST   /_admin/faults                add a fault (see ``faults.Fault``); GET lists; DELETE clears
    POST   /_admin/webhooks              {"url", "duplicate", "reorder"}: the target URL and
                                         delivery faults; GET /_admin/deliveries lists deliveries
    POST   /_admin/oauth/code            {"redirect_uri"}: an authorization code (the consent step)
    POST   /_admin/oauth/expire          expire every access token
    POST   /_admin/oauth/revoke          revoke every refresh token
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from eventsync.latency import Latency
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .deliveries import Deliverer
from .faults import Faults, RateLimiter
from .store import ApiError, Store, iso
from .tokens import Tokens

API = Map(
    [
        Rule("/account-info/v3/details", methods=["GET"], endpoint="account"),
        Rule("/crm/v3/properties/<obj>", methods=["GET"], endpoint="properties"),
        Rule("/crm/v3/schemas", methods=["GET"], endpoint="schemas"),
        Rule(
            "/crm/v3/objects/<obj>/batch/<any(create,update,upsert,read):action>",
            methods=["POST"],
            endpoint="batch",
        ),
        Rule("/crm/v3/objects/<obj>/search", methods=["POST"], endpoint="search"),
        Rule("/crm/v3/objects/<obj>/<record_id>", methods=["GET", "DELETE"], endpoint="object"),
        Rule("/oauth/v1/token", methods=["POST"], endpoint="token"),
    ],
    strict_slashes=False,
)


def _json(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Response:
    data = b"" if body is None else json.dumps(body).encode()
    return Response(
        data,
        status=status,
        headers=dict(headers or {}),
        content_type="application/json;charset=utf-8",
    )


class SandboxApp:
    """The WSGI application of one sandbox."""

    def __init__(
        self,
        *,
        store: Store,
        faults: Faults,
        limiter: RateLimiter,
        tokens: Tokens,
        deliverer: Deliverer,
        access_token: str,
        account: Mapping[str, Any],
        seed: int | None,
        shuffle: bool,
        latency: Latency | None = None,
    ) -> None:
        self.store, self.faults, self.limiter, self.tokens = store, faults, limiter, tokens
        self.deliverer, self.access_token, self.account = deliverer, access_token, dict(account)
        self.shuffle, self.latency = shuffle, latency
        self._rng = random.Random(seed)
        self._rng_lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        admin = request.path.startswith("/_admin/")
        response = self.admin(request) if admin else self.api(request)
        return response(environ, start_response)

    # --- the API -------------------------------------------------------------------------

    def api(self, request: Request) -> Response:
        """Authenticate, rate-limit, inject faults, then route one API call."""
        adapter = API.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
        except HTTPException as exc:
            return _json(
                exc.code or 404,
                ApiError(
                    exc.code or 404, "OBJECT_NOT_FOUND", f"no route {request.method} {request.path}"
                ).body(),
            )
        if endpoint == "token":
            self._wait(request.method, "token", 1)
            return self._faulted("token", lambda: self.tokens.grant(request.form))
        private, problem = self._authenticate(request)
        if problem is not None:
            return problem
        headers, refused = self.limiter.take(daily_headers=private)
        if refused is not None:
            refused["correlationId"] = f"rate-{time.monotonic_ns()}"
            return _json(429, refused, headers)
        name = str(args["action"]) if endpoint == "batch" else endpoint
        body = request.get_json(silent=True) if request.method == "POST" else None
        if request.method == "POST" and not isinstance(body, dict):
            return _json(
                400,
                ApiError(
                    400,
                    "VALIDATION_ERROR",
                    "Invalid input JSON on line 1: the body must be a JSON object",
                ).body(),
                headers,
            )
        inputs = (body or {}).get("inputs")
        self._wait(
            request.method,
            f"batch/{name}" if endpoint == "batch" else endpoint,
            len(inputs) if isinstance(inputs, list) else 1,
        )
        return self._faulted(
            name, lambda: self._route(endpoint, args, request, body or {}), headers
        )

    def _wait(self, method: str, route: str, items: int) -> None:
        # The remote network and server time, before any work, as a real API's would be.
        if self.latency is not None:
            self.latency.wait(f"{method} {route}", items)

    def _faulted(
        self,
        name: str,
        handle: Callable[[], tuple[int, Any]],
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        latency, fault = self.faults.draw(name)
        if latency:
            time.sleep(latency)
        headers = dict(headers or {})
        if fault is not None and fault.when == "before":
            return _json(fault.status, fault.body(), {**headers, **self._retry_after(fault)})
        try:
            status, answer = handle()
        except ApiError as exc:
            return _json(exc.status, exc.body(), headers)
        if fault is not None:  # "after": done, but the answer is lost
            return _json(fault.status, fault.body(), {**headers, **self._retry_after(fault)})
        return _json(status, answer, headers)

    @staticmethod
    def _retry_after(fault: Any) -> dict[str, str]:
        return {"Retry-After": f"{fault.retry_after:g}"} if fault.status == 429 else {}

    def _authenticate(self, request: Request) -> tuple[bool, Response | None]:
        given = request.headers.get("Authorization", "")
        if not given.startswith("Bearer ") or not given[7:]:
            message = "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview"
            return False, _json(401, ApiError(401, "INVALID_AUTHENTICATION", message).body())
        token = given[7:]
        if token == self.access_token:
            return True, None
        live, message = self.tokens.check(token)
        if live:
            return False, None
        category = "EXPIRED_AUTHENTICATION" if "expired" in message else "INVALID_AUTHENTICATION"
        if token.startswith("pat-"):
            message = "Authentication credentials not found. The private app access token is invalid or was rotated."
            category = "INVALID_AUTHENTICATION"
        return False, _json(401, ApiError(401, category, message).body())

    def _route(
        self, endpoint: str, args: Mapping[str, Any], request: Request, body: Mapping[str, Any]
    ) -> tuple[int, Any]:
        store = self.store
        if endpoint == "account":
            return 200, self.account
        if endpoint == "properties":
            obj = store.object(str(args["obj"]))
            return 200, {"results": [dict(p) for p in obj.props.values()]}
        if endpoint == "schemas":
            custom = [t for t in store.types.values() if t.type_id.startswith("2-")]
            return 200, {
                "results": [
                    {
                        "name": t.name,
                        "objectTypeId": t.type_id,
                        "labels": {"singular": t.label, "plural": t.label},
                        "properties": list(t.props.values()),
                    }
                    for t in custom
                ]
            }
        if endpoint == "search":
            return 200, store.search(str(args["obj"]), body)
        if endpoint == "object":
            return self._one(str(args["obj"]), str(args["record_id"]), request)
        return self._batch(str(args["obj"]), str(args["action"]), body)

    def _one(self, obj: str, record_id: str, request: Request) -> tuple[int, Any]:
        if request.method == "DELETE":
            self.store.archive(obj, record_id)
            return 204, None
        wanted = [p for p in request.args.get("properties", "").split(",") if p]
        rows, missing = self.store.read(obj, [record_id], wanted or None)
        if missing:
            raise ApiError(
                404, "OBJECT_NOT_FOUND", "Object not found.  objectId are usually numeric."
            )
        return 200, rows[0]

    def _batch(self, obj: str, action: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        inputs = body.get("inputs")
        if not isinstance(inputs, list) or not all(isinstance(i, dict) for i in inputs):
            raise ApiError(
                400, "VALIDATION_ERROR", "Invalid input JSON: 'inputs' must be a list of objects"
            )
        started = _now()
        missing: list[str] = []
        if action == "read":
            if len(inputs) > 100:
                raise ApiError(
                    400, "VALIDATION_ERROR", f"Batch input limit is 100; got {len(inputs)}"
                )
            results, missing = self.store.read(
                obj,
                [str(i.get("id")) for i in inputs],
                body.get("properties") or None,
                body.get("idProperty"),
            )
        elif action == "create":
            results = self.store.create(obj, inputs)
        elif action == "update":
            results, missing = self.store.update(obj, inputs)
        else:
            results = self.store.upsert(obj, inputs)
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": self._ordered(results),
            "startedAt": started,
            "completedAt": _now(),
        }
        if missing:
            answer["numErrors"] = 1
            answer["errors"] = [
                {
                    "status": "error",
                    "category": "OBJECT_NOT_FOUND",
                    "message": f"Could not get some {self.store.object(obj).singular()} objects, they may be deleted or not exist. Check that ids are valid.",
                    "context": {"ids": missing},
                }
            ]
        status = 207 if missing else (201 if action == "create" else 200)
        return status, answer

    def _ordered(self, rows: list[Any]) -> list[Any]:
        if not self.shuffle:
            return rows
        rows = list(rows)
        with self._rng_lock:
            self._rng.shuffle(rows)
        return rows

    # --- the admin API -------------------------------------------------------------------

    def admin(self, request: Request) -> Response:
        """Answer one admin call."""
        method, path = request.method, request.path
        body = request.get_json(silent=True) or {}
        try:
            return _json(200, self._admin(method, path, body))
        except (ValueError, KeyError, TypeError) as exc:
            return _json(400, {"error": str(exc)})
        except ApiError as exc:
            return _json(exc.status, exc.body())

    def _admin(self, method: str, path: str, body: Mapping[str, Any]) -> Any:
        if path == "/_admin/faults":
            if method == "POST":
                faults: list[Mapping[str, Any]] = list(body.get("faults", [body]))
                return {"faults": [self.faults.add(f).id for f in faults]}
            if method == "DELETE":
                self.faults.clear()
            return {"faults": self.faults.listed()}
        if path == "/_admin/counters":
            if method == "DELETE":
                self.faults.reset_counters()
            return self.faults.counters()
        if path == "/_admin/webhooks" and method == "POST":
            if "url" in body:
                self.deliverer.url = body["url"]
            self.deliverer.duplicate = float(body.get("duplicate", self.deliverer.duplicate))
            self.deliverer.reorder = bool(body.get("reorder", self.deliverer.reorder))
            return {
                "url": self.deliverer.url,
                "duplicate": self.deliverer.duplicate,
                "reorder": self.deliverer.reorder,
            }
        if path == "/_admin/deliveries":
            self.deliverer.wait_idle()
            return {"deliveries": list(self.deliverer.log)}
        if path == "/_admin/oauth/code" and method == "POST":
            return {"code": self.tokens.code(str(body["redirect_uri"]))}
        if path == "/_admin/oauth/expire" and method == "POST":
            return {"expired": self.tokens.expire_all()}
        if path == "/_admin/oauth/revoke" and method == "POST":
            self.tokens.revoke_refresh()
            return {"revoked": True}
        if path == "/_admin/oauth/refreshes":
            return {"refreshes": self.tokens.refreshes}
        match = re.fullmatch(r"/_admin/objects/([\w-]+)", path)
        if match and method == "GET":
            with self.store.lock:
                obj = self.store.object(match.group(1))
                return {
                    "results": [
                        self.store.row(obj, r, list(obj.props)) for r in obj.records.values()
                    ]
                }
        raise ApiError(404, "NOT_FOUND", f"no admin route {method} {path}")


def _now() -> str:
    return iso(int(time.time() * 1000))
