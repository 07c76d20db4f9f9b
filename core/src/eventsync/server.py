"""The HTTP front of ``eventsync run``: notification endpoints, health and Prometheus metrics.

Routes:
  ``POST /hooks/<org>/<system>``           a Hopin delivery or a Salesforce Outbound Message for
  ``POST /hooks/<org>/<system>/<suffix>``  one org; ``suffix`` (e.g. a per-org secret) is handed
                                           to the plugin as ``HttpRequest.suffix``
  ``GET  /livez``                          200 while the process serves requests (liveness)
  ``GET  /readyz``                         200 when every organisation is ready: credentials
                                           accepted, writes succeeding, no flow stopped, no poller
                                           failing, lag under ``[engine] ready_lag``; else 503
                                           naming each reason (readiness)
  ``GET  /healthz``                        200 when the engine runs, no poller is failing, no org
                                           is paused and no flow stopped (docs/errors.md), else 503
  ``GET  /metrics``                        Prometheus text (docs/operating.md): records by outcome
                                           and error class, call latencies, outbox depth, lag,
                                           dead letters, API usage and limit, notifications
  ``/console/...``                         the setup console (docs/console.md), for a config
                                           read from a file; sign-in required

Every error is a short plain-text answer, never an HTML page: a wrong method is a 405 with an
``Allow`` header, a body over ``MAX_BODY`` a 413, and any exception (a bug, a failing store, a
parser's ``RecursionError``) a 500 whose traceback goes to the log only. Notifications are
counted by organisation, system and result (``Reception.result``), rejects and 500s included;
a request naming an organisation or system that is not configured is a 404 counted in one
unlabelled counter, so a scan of made-up URLs creates no series.
docs/openapi.yaml describes every route, request body and answer (OpenAPI 3.1).

Flask builds the app; waitress (a production WSGI server) serves it. Notifications are answered
in front of Flask (``intake_http``): a webhook burst is thousands of them. The metrics use a
registry of their own (never prometheus_client's global one): the engine's counters
(``eventsync.metrics``) and gauges read from the store at scrape time.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flask import Flask, Response, jsonify, request
from prometheus_client import generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from werkzeug.exceptions import HTTPException

from .engine import Engine
from .intake_http import MAX_BODY, UNKNOWN, NotificationRoute
from .models import HttpRequest

__all__ = ["make_app", "serve", "MAX_BODY", "UNKNOWN"]

log = logging.getLogger("eventsync.server")

_PLAIN = "text/plain; charset=utf-8"


def _plain(status: int, text: str) -> Response:
    return Response(text.rstrip("\n") + "\n", status=status, content_type=_PLAIN)


class _EngineCollector(Collector):
    """Gauges read from the store and the connections at scrape time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Any]:
        pending = GaugeMetricFamily(
            "eventsync_outbox_pending", "Outbox rows waiting", labels=["org", "flow"]
        )
        leased = GaugeMetricFamily(
            "eventsync_outbox_leased", "Outbox rows being worked on", labels=["org", "flow"]
        )
        lag = GaugeMetricFamily(
            "eventsync_lag_seconds", "Age of the oldest unfinished change", labels=["org", "flow"]
        )
        dead = GaugeMetricFamily(
            "eventsync_dead_letters", "Dead letters waiting", labels=["org", "flow"]
        )
        depth = GaugeMetricFamily(
            "eventsync_outbox_depth", "Outbox rows, waiting or in flight", labels=["org", "flow"]
        )
        oldest = GaugeMetricFamily(
            "eventsync_outbox_oldest_age_seconds",
            "Age of the oldest outbox row (0 when empty)",
            labels=["org", "flow"],
        )
        known = self.engine.metrics.known
        for status in self.engine.status():
            if not known(status.org, status.flow):
                continue  # rows of a flow no longer configured: no label from the store
            labels = [status.org, status.flow]
            pending.add_metric(labels, status.pending)
            leased.add_metric(labels, status.leased)
            lag.add_metric(labels, status.lag_seconds or 0.0)
            dead.add_metric(labels, status.dead_letters)
            depth.add_metric(labels, status.pending + status.leased)
            oldest.add_metric(labels, status.lag_seconds or 0.0)
        usage = GaugeMetricFamily(
            "eventsync_api_usage_ratio",
            "Share of the daily API allowance used",
            labels=["org", "system"],
        )
        used = GaugeMetricFamily(
            "eventsync_api_calls_used", "API calls used of the allowance", labels=["org", "system"]
        )
        allowed = GaugeMetricFamily(
            "eventsync_api_calls_limit", "The API call allowance", labels=["org", "system"]
        )
        held = GaugeMetricFamily(
            "eventsync_api_budget_paused",
            "1 while the budget guard holds back a kind of work (real time is never held)",
            labels=["org", "system", "spender"],
        )
        for budget in self.engine.budgets():
            labels = [budget.org, budget.system]
            usage.add_metric(labels, budget.share)
            used.add_metric(labels, budget.used)
            allowed.add_metric(labels, budget.limit)
            for spender in ("backfill", "poll"):
                held.add_metric([*labels, spender], 0 if budget.allows(spender) else 1)
        failing = GaugeMetricFamily(
            "eventsync_poller_failing", "1 while a poller's last run failed", labels=["org", "flow"]
        )
        for org, flow in list(self.engine.poll_errors):
            failing.add_metric([org, flow], 1)
        ready = GaugeMetricFamily(
            "eventsync_org_ready", "1 when the organisation is ready (see /readyz)", labels=["org"]
        )
        for org, reasons in self.engine.readiness().items():
            ready.add_metric([org], 0 if reasons else 1)
        yield from (
            pending,
            leased,
            lag,
            dead,
            depth,
            oldest,
            usage,
            used,
            allowed,
            held,
            failing,
            ready,
        )


def make_app(engine: Engine, *, listen: str | None = None) -> Flask:
    """The Flask app serving ``engine``; ``listen`` (default ``[engine] listen``) is the
    address it is served on: off loopback the console's cookie is ``Secure``."""
    app = Flask("eventsync", static_folder=None)  # no /static/<path> route: nothing to serve
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    # An empty path segment (``/hooks/acme//x``, or an encoded slash in a name) is a 404: by
    # default werkzeug would answer it with an HTML 308 redirect to the path without it.
    app.url_map.merge_slashes = False
    registry = engine.metrics.registry()
    registry.register(_EngineCollector(engine))
    route = NotificationRoute(engine, engine.metrics)

    def count_path(result: str, status: int) -> None:
        """Count a notification answered before its route ran (405, 413, 404)."""
        parts = request.path.split("/")
        if len(parts) < 3 or parts[1] != "hooks":
            return
        route.count(parts[2], parts[3] if len(parts) > 3 else None, result, status)

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        response = _plain(status, f"{status} {exc.name}")
        # werkzeug's headers are kept (Allow on a 405); its HTML body and content type are not.
        for name, value in exc.get_headers():
            if name.lower() != "content-type":
                response.headers[name] = value
        count_path("unknown" if status == 404 else "rejected", status)
        return response

    @app.errorhandler(Exception)
    def internal_error(exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.path, exc_info=exc)
        count_path("error", 500)
        return _plain(500, "internal error (see the eventsync log)")

    @app.post("/hooks/<org>/<system>")
    @app.post("/hooks/<org>/<system>/<path:suffix>")
    def notification(org: str, system: str, suffix: str = "") -> Response:
        # Reached only by what the route in front of Flask left (NotificationRoute.in_front_of):
        # e.g. a body sent chunked, or one over MAX_BODY, which get_data answers with a 413.
        http = HttpRequest(
            method=request.method,
            path=request.path,
            headers=dict(request.headers),
            body=request.get_data(cache=False),
            query=request.args.to_dict(),
            suffix=suffix,
        )
        response = route.take(org, system, http)
        reply = Response(response.body, status=response.status, content_type=response.content_type)
        for name, value in response.headers.items():
            reply.headers[name] = value
        return reply

    @app.get("/healthz")
    def healthz() -> Response:
        failing = {f"{o}/{f}": e for (o, f), e in engine.poll_errors.items()}
        held = engine.holds()
        paused = {h.org: h.reason for h in held if h.kind == "paused"}
        stopped = {f"{h.org}/{h.flow}": h.reason for h in held if h.kind == "stopped"}
        ok = engine.executor_running and not failing and not held
        body = jsonify(
            ok=ok,
            running=engine.executor_running,
            failing_pollers=failing,
            paused_orgs=paused,
            stopped_flows=stopped,
            orgs=sorted(engine.config.orgs),
        )
        body.status_code = 200 if ok else 503
        return body

    @app.get("/livez")
    def livez() -> Response:
        return jsonify(alive=True, running=engine.executor_running)

    @app.get("/readyz")
    def readyz() -> Response:
        reasons = engine.readiness()
        if not engine.executor_running:
            reasons = {org: ["the engine is not running", *why] for org, why in reasons.items()}
        ready = engine.executor_running and not any(reasons.values())
        body = jsonify(
            ready=ready,
            orgs={org: {"ready": not why, "reasons": why} for org, why in sorted(reasons.items())},
        )
        body.status_code = 200 if ready else 503
        return body

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(
            generate_latest(registry), content_type="text/plain; version=0.0.4; charset=utf-8"
        )

    if engine.config.source and Path(engine.config.source).is_file():
        from .console import create_app, loopback, mounted

        console = create_app(
            engine.config.source,
            engine=engine,
            secure_cookies=not loopback(listen or engine.config.engine.listen),
        )
        app.wsgi_app = mounted(console, app.wsgi_app)  # type: ignore[method-assign]
    app.wsgi_app = route.in_front_of(app.wsgi_app)  # type: ignore[method-assign,assignment]
    return app


class Server:
    """A waitress server running ``make_app(engine)`` in a background thread."""

    def __init__(
        self, engine: Engine, host: str = "127.0.0.1", port: int = 8080, threads: int = 8
    ) -> None:
        from waitress.server import create_server

        self._server = create_server(
            make_app(engine, listen=f"{host}:{port}"),
            host=host,
            port=port,
            threads=threads,
            ident="eventsync",
            clear_untrusted_proxy_headers=True,
        )
        self.port = int(self._server.effective_port)
        self.host = host
        self._thread = threading.Thread(target=self._server.run, name="eventsync-http", daemon=True)

    @property
    def url(self) -> str:
        """The base URL, e.g. ``http://127.0.0.1:8080``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Server:
        """Start serving; returns self."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: close the listening socket and every open connection."""
        if not self._thread.is_alive():
            self._server.close()
            return
        server: Any = self._server

        def close_all() -> None:
            # Run by the server's own loop: closing its sockets from this thread would race with
            # its select() (EBADF), and an open keep-alive connection would keep it looping.
            for dispatcher in list(server._map.values()):  # noqa: SLF001 - waitress's socket map
                dispatcher.close()

        # The loop may end between the check above and now; its trigger is closed then (EBADF).
        with contextlib.suppress(OSError):
            server.trigger.pull_trigger(close_all)
        self._thread.join(5)


def serve(engine: Engine, listen: str) -> Server:
    """Start serving ``engine`` on ``host:port`` in the background."""
    host, _, port = listen.rpartition(":")
    return Server(engine, host or "127.0.0.1", int(port)).start()
