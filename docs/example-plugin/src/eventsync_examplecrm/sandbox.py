"""A local, in-memory ExampleCRM: the API the plugin talks to, over a real socket on 127.0.0.1.

The API (every call needs ``Authorization: Bearer <api key>``; every answer carries the daily
rate-limit headers ``X-Example-RateLimit-Daily`` and ``X-Example-RateLimit-Daily-Remaining``)::

    GET  /v1/account                         {"accountId", "name"}
    GET  /v1/schema                          {"objects": [{"name", "label", "properties"}]}
    POST /v1/objects/{object}/batch/read     {"ids", "properties"}
    POST /v1/objects/{object}/batch/create   {"inputs": [{"properties", "objectWriteTraceId"}]}
    POST /v1/objects/{object}/batch/update   {"inputs": [{"id", "properties", "objectWriteTraceId"}]}
    POST /v1/objects/{object}/search         {"filters", "sorts", "properties", "limit", "after"}

Batches hold at most 50 records and search pages at most 100. Writes answer ``results`` and
per-record ``errors`` (HTTP 207 when there are some), each naming the input's
``objectWriteTraceId``. Every record written by one call gets the same ``updatedAt``
(milliseconds, strictly later than any earlier call's), so a batch makes timestamp ties.
A search is ordered by its ``sorts`` (ascending; default ``id``) and pages with an opaque
``after`` cursor that resumes after the last record returned.

The admin API (no key; tests and demos only)::

    GET    /_admin/objects/{object}   every record of the object
    GET    /_admin/counters           API calls per endpoint
    POST   /_admin/faults             {"shuffle": true}: batch answers come back in reverse
                                      order (HubSpot's come back in any order);
                                      {"lose_answers": n}: the next n writes are made, then
                                      answered with 502, as if the answer was lost;
                                      {"fail": n, "status": 503}: the next n API calls fail
                                      before doing anything (429 answers ``Retry-After: 0``)
    DELETE /_admin/faults             back to normal
    POST   /_admin/webhooks           {"url": ...}: deliver signed change events there
    GET    /_admin/deliveries         every delivery made, with its HTTP status
"""

from __future__ import annotations

import base64
import datetime as dt
import itertools
import json
import queue
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import requests
from eventsync.models import SystemSettings

from .settings import MAX_BATCH, MAX_PAGE, SYSTEM
from .webhooks import signed_request

API_KEY_ENV = "EXAMPLECRM_API_KEY"
WEBHOOK_SECRET_ENV = "EXAMPLECRM_WEBHOOK_SECRET"
OPTIONS = ("port", "api_key", "account_id", "webhook_secret", "daily_limit")


def _property(type_: str, label: str, **more: Any) -> dict[str, Any]:
    return {"type": type_, "label": label, **more}


#: object -> (label, properties). Names are lower-case and case-sensitive.
SCHEMA: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {
    "contact": (
        "Contact",
        {
            "email": _property("email", "Email", required=True, unique=True),
            "firstname": _property("string", "First name"),
            "lastname": _property("string", "Last name"),
            "company": _property("string", "Company"),
        },
    ),
    "invitation": (
        "Invitation",
        {
            "email": _property("email", "Email", required=True),
            "firstname": _property("string", "First name"),
            "lastname": _property("string", "Last name"),
            "ticket_code": _property("string", "Ticket code"),
            "magic_link": _property("url", "Magic link"),
            "link_status": _property(
                "enumeration", "Link status", options=["Invited", "Registered"]
            ),
            "attendance_status": _property(
                "enumeration", "Attendance", options=["Attended", "No-show"]
            ),
            "attended_seconds": _property("number", "Seconds attended"),
        },
    ),
}
SORTABLE = ("id", "updatedAt", "createdAt")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ApiError(Exception):
    """A refusal of a whole call: HTTP status, category and message."""

    def __init__(self, status: int, category: str, message: str) -> None:
        super().__init__(message)
        self.status, self.category, self.message = status, category, message


def _iso(ms: int) -> str:
    stamp = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class Store:
    """The records of every object, their ids and the write clock (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in SCHEMA}
        self._ids = itertools.count(1001)
        self._last_ms = 0

    def _stamp(self) -> str:
        # One stamp per write call, strictly later than the previous one.
        self._last_ms = max(int(time.time() * 1000), self._last_ms + 1)
        return _iso(self._last_ms)

    def objects(self, name: str) -> dict[str, dict[str, Any]]:
        """The records of ``name``; ApiError 404 for an unknown object."""
        if name not in self.records:
            raise ApiError(404, "OBJECT_NOT_FOUND", f"unknown object {name!r}")
        return self.records[name]

    def create(self, obj: str, inputs: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
        """Create records; returns (results, per-record errors)."""
        with self.lock:
            records, stamp = self.objects(obj), self._stamp()
            results, errors = [], []
            for given in inputs:
                trace = given.get("objectWriteTraceId")
                properties = dict(given.get("properties") or {})
                problem = _problem(obj, records, properties, None, creating=True)
                if problem:
                    errors.append(_error(*problem, trace=trace))
                    continue
                record_id = str(next(self._ids))
                record = {
                    "id": record_id,
                    "properties": {**dict.fromkeys(SCHEMA[obj][1]), **_normal(obj, properties)},
                    "createdAt": stamp,
                    "updatedAt": stamp,
                }
                records[record_id] = record
                results.append({**_row(record, None), "objectWriteTraceId": trace})
            return results, errors

    def update(self, obj: str, inputs: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
        """Update records by id; returns (results, per-record errors)."""
        with self.lock:
            records, stamp = self.objects(obj), self._stamp()
            results, errors = [], []
            for given in inputs:
                trace, record_id = given.get("objectWriteTraceId"), str(given.get("id"))
                properties = dict(given.get("properties") or {})
                record = records.get(record_id)
                if record is None:
                    errors.append(
                        _error("OBJECT_NOT_FOUND", f"no {obj} with id {record_id}", [], trace=trace)
                    )
                    continue
                problem = _problem(obj, records, properties, record_id, creating=False)
                if problem:
                    errors.append(_error(*problem, trace=trace))
                    continue
                record["properties"].update(_normal(obj, properties))
                record["updatedAt"] = stamp
                results.append({**_row(record, None), "objectWriteTraceId": trace})
            return results, errors

    def archive(self, obj: str, ids: list[str]) -> None:
        """Archive (delete) records by id; unknown ids are ignored, as the real API does."""
        with self.lock:
            records = self.objects(obj)
            for record_id in ids:
                records.pop(record_id, None)

    def read(self, obj: str, ids: list[str], properties: list[str] | None) -> list[Any]:
        """The records with these ids (unknown ids are left out)."""
        with self.lock:
            records = self.objects(obj)
            return [_row(records[str(i)], properties) for i in ids if str(i) in records]

    def search(self, obj: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """One page of a search (filters ANDed, keyset paging on the sort key)."""
        limit = int(body.get("limit") or 10)
        if not 1 <= limit <= MAX_PAGE:
            raise ApiError(400, "VALIDATION_ERROR", f"limit must be between 1 and {MAX_PAGE}")
        sort_key = _sort_key(body.get("sorts") or [])
        matches = [_matcher(obj, f) for f in body.get("filters") or []]
        with self.lock:
            found = [r for r in self.objects(obj).values() if all(match(r) for match in matches)]
            found.sort(key=sort_key)
            after = body.get("after")
            if after:
                last = json.loads(base64.urlsafe_b64decode(after))
                found = [r for r in found if list(sort_key(r)) > last]
            page = found[:limit]
            answer: dict[str, Any] = {
                "total": len(found),
                "results": [_row(r, body.get("properties") or None) for r in page],
            }
            if len(found) > limit:
                cursor = json.dumps(list(sort_key(page[-1]))).encode()
                answer["paging"] = {"next": {"after": base64.urlsafe_b64encode(cursor).decode()}}
            return answer


def _row(record: dict[str, Any], properties: list[str] | None) -> dict[str, Any]:
    props = record["properties"]
    shown = props if not properties else {p: props[p] for p in properties if p in props}
    return {
        "id": record["id"],
        "properties": dict(shown),
        "createdAt": record["createdAt"],
        "updatedAt": record["updatedAt"],
    }


def _error(category: str, message: str, fields: list[str], *, trace: Any) -> dict[str, Any]:
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": {"objectWriteTraceId": [trace], "properties": fields},
    }


def _normal(obj: str, properties: Mapping[str, Any]) -> dict[str, Any]:
    defs = SCHEMA[obj][1]
    return {
        k: v.lower() if defs[k]["type"] == "email" and isinstance(v, str) else v
        for k, v in properties.items()
    }


def _problem(
    obj: str,
    records: Mapping[str, dict[str, Any]],
    properties: Mapping[str, Any],
    record_id: str | None,
    *,
    creating: bool,
) -> tuple[str, str, list[str]] | None:
    """Why a record is refused (category, message, properties), or None."""
    defs = SCHEMA[obj][1]
    for name, value in properties.items():
        spec = defs.get(name)
        if spec is None:
            return "VALIDATION_ERROR", f"Property {name!r} does not exist on {obj}", [name]
        if value in (None, ""):
            if spec.get("required"):
                return "VALIDATION_ERROR", f"Property {name!r} is required", [name]
            continue
        kind = spec["type"]
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return "VALIDATION_ERROR", f"{value!r} is not a number ({name})", [name]
        elif not isinstance(value, str):
            return "VALIDATION_ERROR", f"{value!r} is not text ({name})", [name]
        elif kind == "email" and not EMAIL.match(value):
            return "VALIDATION_ERROR", f"{value!r} is not a valid email address", [name]
        elif kind == "enumeration" and value not in spec["options"]:
            allowed = ", ".join(spec["options"])
            return "INVALID_OPTION", f"{value!r} is not an option of {name} ({allowed})", [name]
        if spec.get("unique"):
            for other in records.values():
                if other["id"] != record_id and other["properties"].get(name) == value.lower():
                    return (
                        "CONFLICT",
                        f"A {obj} with {name} {value!r} already exists. Existing ID: {other['id']}",
                        [name],
                    )
    if creating:
        missing = [n for n, spec in defs.items() if spec.get("required") and not properties.get(n)]
        if missing:
            return "VALIDATION_ERROR", f"Property {missing[0]!r} is required", missing
    return None


def _value(record: dict[str, Any], name: str) -> Any:
    if name in SORTABLE:
        return int(record["id"]) if name == "id" else record[name]
    return record["properties"].get(name)


def _sort_key(sorts: list[Mapping[str, Any]]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    names = []
    for sort in sorts:
        name = sort.get("propertyName")
        if name not in SORTABLE:
            raise ApiError(400, "VALIDATION_ERROR", f"cannot sort by {name!r} ({SORTABLE})")
        if sort.get("direction", "ASCENDING") != "ASCENDING":
            raise ApiError(400, "VALIDATION_ERROR", "only ASCENDING sorts are supported")
        names.append(name)
    names.append("id")  # the id breaks every tie, so the order (and paging) is total
    return lambda record: tuple(_value(record, n) for n in names)


def _matcher(obj: str, spec: Mapping[str, Any]) -> Callable[[dict[str, Any]], bool]:
    name, op = str(spec.get("propertyName")), spec.get("operator")
    email = SCHEMA.get(obj, ("", {}))[1].get(name, {}).get("type") == "email"

    def norm(value: Any) -> Any:
        if name == "id":
            return str(value)
        return value.lower() if email and isinstance(value, str) else value  # emails: any case

    if op == "HAS_PROPERTY":
        return lambda r: _value(r, name) not in (None, "")
    if op == "NOT_HAS_PROPERTY":
        return lambda r: _value(r, name) in (None, "")
    if op == "IN":
        wanted = {norm(v) for v in spec.get("values") or []}
        return lambda r: norm(_value(r, name)) in wanted
    value = norm(spec.get("value"))
    compare: dict[str, Callable[[Any], bool]] = {
        "EQ": lambda v: v == value,
        "NEQ": lambda v: v != value,
        "LT": lambda v: v is not None and v < value,
        "LTE": lambda v: v is not None and v <= value,
        "GT": lambda v: v is not None and v > value,
        "GTE": lambda v: v is not None and v >= value,
    }
    if op not in compare:
        raise ApiError(400, "VALIDATION_ERROR", f"unknown operator {op!r}")
    test = compare[op]
    return lambda r: test(norm(_value(r, name)))


class Deliverer:
    """Posts signed change events to the subscribed URLs from a background thread."""

    def __init__(self, account_id: str, secret: str) -> None:
        self.account_id, self.secret = account_id, secret
        self.urls: list[str] = []
        self.log: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._stop = threading.Event()
        self._events = itertools.count(1)
        self._thread = threading.Thread(target=self._run, name="examplecrm-webhooks", daemon=True)
        self._thread.start()

    def announce(self, obj: str, rows: list[dict[str, Any]], change: str) -> None:
        """Queue one delivery naming the records just written (when anyone listens)."""
        if not self.urls or not rows:
            return
        events = [
            {
                "eventId": f"evt-{next(self._events)}",
                "object": obj,
                "objectId": row["id"],
                "change": change,
                "occurredAt": row["updatedAt"],
            }
            for row in rows
        ]
        self._queue.put({"accountId": self.account_id, "events": events})

    def _run(self) -> None:
        while (payload := self._queue.get()) is not None:
            for url in list(self.urls):
                signed = signed_request(self.secret, urlsplit(url).path, payload)
                # A connection per delivery: none is held open to keep the receiver from stopping.
                headers = {**signed.headers, "Connection": "close"}
                for attempt in range(5):  # a few quick retries, as a real CRM would
                    try:
                        status = requests.post(
                            url, data=signed.body, headers=headers, timeout=10
                        ).status_code
                    except requests.RequestException:
                        status = 0
                    self.log.append({"url": url, "status": status, "payload": payload})
                    if 200 <= status < 300 or self._stop.wait(0.1 * (attempt + 1)):
                        break

    def stop(self) -> None:
        """Stop delivering."""
        self._stop.set()
        self._queue.put(None)
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection per client session
    disable_nagle_algorithm = True  # headers and body go out at once, no delayed-ACK stall
    server: _Server

    def log_message(self, *args: Any) -> None:
        """Quiet: tests make thousands of calls."""

    def _send(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()  # a 204 has no body
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        return json.loads(self.rfile.read(length) or b"null") if length else None

    def do_GET(self) -> None:
        """Serve a GET request."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """Serve a POST request."""
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        """Serve a DELETE request."""
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        sandbox = self.server.sandbox
        body = self._body()
        path = urlsplit(self.path).path
        if path.startswith("/_admin/"):
            try:
                self._send(200, sandbox.admin(method, path, body))
            except ApiError as exc:
                self._send(exc.status, {"category": exc.category, "message": exc.message})
            return
        status, answer, headers = sandbox.api(method, path, body, self.headers.get("Authorization"))
        self._send(status, answer, headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    sandbox: ExampleSandbox


class ExampleSandbox:
    """A running ExampleCRM sandbox (this plugin's SandboxHandle).

    Options: ``port`` (default: any free one), ``api_key``, ``account_id``,
    ``webhook_secret`` (default: made up) and ``daily_limit`` (API calls per day, 250000).
    """

    system = SYSTEM

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        options = dict(options or {})
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise ValueError(f"unknown examplecrm sandbox options {unknown} (known: {OPTIONS})")
        self.api_key = str(options.get("api_key") or f"ex-{secrets.token_urlsafe(16)}")
        self.account_id = str(options.get("account_id") or "4711")
        self.webhook_secret = str(options.get("webhook_secret") or secrets.token_urlsafe(24))
        self.daily_limit = int(options.get("daily_limit", 250_000))
        self.store = Store()
        self.calls: Counter[str] = Counter()
        self.faults: dict[str, Any] = {}
        self.deliverer = Deliverer(self.account_id, self.webhook_secret)
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", int(options.get("port", 0))), _Handler)
        self._server.sandbox = self
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self.admin_url = f"{self.url}/_admin"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # so stop() returns promptly
            name="examplecrm-sandbox",
            daemon=True,
        )
        self._thread.start()

    # --- the SandboxHandle ---------------------------------------------------------------

    def settings(self, org: str) -> SystemSettings:
        """Working settings; the secrets live in the settings' own ``env``, not os.environ."""
        return SystemSettings(
            SYSTEM,
            org,
            {
                "url": self.url,
                "api_key_env": API_KEY_ENV,
                "account_id": self.account_id,
                "webhook_secret_env": WEBHOOK_SECRET_ENV,
            },
            env={API_KEY_ENV: self.api_key, WEBHOOK_SECRET_ENV: self.webhook_secret},
        )

    def info(self) -> dict[str, Any]:
        """URLs and credentials, JSON-ready."""
        return {
            "system": SYSTEM,
            "url": self.url,
            "admin_url": self.admin_url,
            "api_key": self.api_key,
            "account_id": self.account_id,
            "webhook_secret": self.webhook_secret,
            "max_batch": MAX_BATCH,
        }

    def stop(self) -> None:
        """Stop serving and delivering; release the port."""
        self.deliverer.stop()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # --- the API -------------------------------------------------------------------------

    def api(
        self, method: str, path: str, body: Any, authorization: str | None
    ) -> tuple[int, Any, dict[str, str]]:
        """Answer one API call: (status, JSON body, headers)."""
        with self._lock:
            self.calls[_endpoint(method, path)] += 1
            used = sum(self.calls.values())
            failing = self.faults.get("fail", 0)
            if failing:
                self.faults["fail"] = failing - 1
        headers = {
            "X-Example-RateLimit-Daily": str(self.daily_limit),
            "X-Example-RateLimit-Daily-Remaining": str(max(self.daily_limit - used, 0)),
        }
        if authorization != f"Bearer {self.api_key}":
            message = "The API key provided is invalid."
            return 401, {"category": "INVALID_AUTHENTICATION", "message": message}, headers
        if failing:
            status = int(self.faults.get("status", 503))
            if status == 429:
                headers["Retry-After"] = "0"
            return status, {"category": "RATE_LIMITS" if status == 429 else "UNAVAILABLE"}, headers
        try:
            status, answer = self._route(method, path, body or {})
        except ApiError as exc:
            return exc.status, {"category": exc.category, "message": exc.message}, headers
        return status, answer, headers

    def _route(self, method: str, path: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        if (method, path) == ("GET", "/v1/account"):
            return 200, {"accountId": self.account_id, "name": "Example account"}
        if (method, path) == ("GET", "/v1/schema"):
            return 200, {"objects": [_described(name) for name in SCHEMA]}
        match = re.fullmatch(
            r"/v1/objects/(\w+)/(batch/read|batch/create|batch/update|batch/archive|search)", path
        )
        if method != "POST" or match is None:
            raise ApiError(404, "NOT_FOUND", f"no route {method} {path}")
        obj, action = match.groups()
        if action == "search":
            return 200, self.store.search(obj, body)
        batch = list(body.get("ids" if action == "batch/read" else "inputs") or [])
        if len(batch) > MAX_BATCH:
            raise ApiError(
                400, "VALIDATION_ERROR", f"Batch input limit exceeded: at most {MAX_BATCH} per call"
            )
        if action == "batch/archive":
            self.store.archive(obj, [str(given.get("id")) for given in batch])
            return 204, None
        if action == "batch/read":
            return 200, {
                "results": self._ordered(self.store.read(obj, batch, body.get("properties")))
            }
        write = self.store.create if action == "batch/create" else self.store.update
        results, errors = write(obj, batch)
        self.deliverer.announce(obj, results, "created" if action == "batch/create" else "updated")
        with self._lock:
            lost = self.faults.get("lose_answers", 0)
            if lost:
                self.faults["lose_answers"] = lost - 1
        if lost:  # written, but the answer never arrives
            raise ApiError(502, "BAD_GATEWAY", "the upstream answer was lost")
        answer = {"status": "COMPLETE", "results": self._ordered(results)}
        if errors:
            answer["errors"] = self._ordered(errors)
        return (207 if errors else 200), answer

    def _ordered(self, rows: list[Any]) -> list[Any]:
        # Under the shuffle fault, answers come back in reverse order (never by position).
        return rows[::-1] if self.faults.get("shuffle") else rows

    # --- the admin API -------------------------------------------------------------------

    def admin(self, method: str, path: str, body: Any) -> Any:
        """Answer one admin call."""
        if (method, path) == ("POST", "/_admin/faults"):
            with self._lock:
                self.faults.update(body or {})
                return dict(self.faults)
        if (method, path) == ("DELETE", "/_admin/faults"):
            with self._lock:
                self.faults.clear()
                return {}
        if (method, path) == ("GET", "/_admin/counters"):
            with self._lock:
                return {"total": sum(self.calls.values()), "calls": dict(self.calls)}
        if (method, path) == ("POST", "/_admin/webhooks"):
            self.deliverer.urls.append(str((body or {})["url"]))
            return {"urls": self.deliverer.urls}
        if (method, path) == ("GET", "/_admin/deliveries"):
            return {"deliveries": list(self.deliverer.log)}
        match = re.fullmatch(r"/_admin/objects/(\w+)", path)
        if method == "GET" and match:
            with self.store.lock:
                records = self.store.objects(match.group(1))
                return {"results": [_row(r, None) for r in records.values()]}
        raise ApiError(404, "NOT_FOUND", f"no admin route {method} {path}")


def _endpoint(method: str, path: str) -> str:
    """The counter name of a call: ``search``, ``batch/read`` ..., or the path."""
    match = re.fullmatch(r"/v1/objects/\w+/(.+)", path)
    return match.group(1) if match else f"{method} {path}"


def _described(name: str) -> dict[str, Any]:
    label, properties = SCHEMA[name]
    return {
        "name": name,
        "label": label,
        "properties": [{"name": prop, **spec} for prop, spec in properties.items()]
        + [
            {"name": "createdAt", "type": "datetime", "label": "Created", "readOnly": True},
            {"name": "updatedAt", "type": "datetime", "label": "Last modified", "readOnly": True},
        ],
    }
