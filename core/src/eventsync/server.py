"""The HTTP front of ``eventsync run``: notification endpoints, health and Prometheus metrics.

Routes:
  ``POST /hooks/<org>/<system>``  a Hopin delivery or a Salesforce Outbound Message for one org
  ``GET  /healthz``               200 when the engine runs, no poller is failing, no org is
                                  paused and no flow stopped (docs/errors.md), else 503
  ``GET  /metrics``               Prometheus text: queue depth, lag, dead letters, API usage,
                                  notifications accepted and rejected

Flask builds the app; waitress (a production WSGI server) serves it. The metrics use a
registry of their own (never prometheus_client's global one) and read the store at scrape time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from flask import Flask, Response, jsonify, request
from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from .engine import Engine
from .models import HttpRequest

__all__ = ["make_app", "serve", "MAX_BODY"]

#: Largest notification body accepted (Salesforce sends at most 100 notifications a message).
MAX_BODY = 5 * 1024 * 1024


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
        for status in self.engine.status():
            labels = [status.org, status.flow]
            pending.add_metric(labels, status.pending)
            leased.add_metric(labels, status.leased)
            lag.add_metric(labels, status.lag_seconds or 0.0)
            dead.add_metric(labels, status.dead_letters)
        usage = GaugeMetricFamily(
            "eventsync_api_usage_ratio",
            "Share of the daily API allowance used",
            labels=["org", "system"],
        )
        for (org, system), conn in list(self.engine._connections.items()):  # noqa: SLF001 - own engine
            seen = self.engine.context(org).hooks.api_usage(conn)
            if seen is not None:
                usage.add_metric([org, system], seen.share)
        failing = GaugeMetricFamily(
            "eventsync_poller_failing", "1 while a poller's last run failed", labels=["org", "flow"]
        )
        for org, flow in list(self.engine.poll_errors):
            failing.add_metric([org, flow], 1)
        yield from (pending, leased, lag, dead, usage, failing)


def make_app(engine: Engine) -> Flask:
    """The Flask app serving ``engine``."""
    app = Flask("eventsync")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    registry = CollectorRegistry()
    registry.register(_EngineCollector(engine))
    received = Counter(
        "eventsync_notifications_total",
        "Notifications by outcome",
        ["org", "system", "status"],
        registry=registry,
    )

    @app.post("/hooks/<org>/<system>")
    def notification(org: str, system: str) -> Response:
        http = HttpRequest(
            method=request.method,
            path=request.path,
            headers=dict(request.headers),
            body=request.get_data(cache=False),
            query=request.args.to_dict(),
        )
        answer = engine.handle_request(org, system, http)
        received.labels(org, system, str(answer.status)).inc()
        response = Response(answer.body, status=answer.status, content_type=answer.content_type)
        for name, value in answer.headers.items():
            response.headers[name] = value
        return response

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

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(
            generate_latest(registry), content_type="text/plain; version=0.0.4; charset=utf-8"
        )

    return app


class Server:
    """A waitress server running ``make_app(engine)`` in a background thread."""

    def __init__(
        self, engine: Engine, host: str = "127.0.0.1", port: int = 8080, threads: int = 8
    ) -> None:
        from waitress.server import create_server

        self._server = create_server(
            make_app(engine),
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
        """Stop serving and close the listening socket."""
        self._server.close()
        self._thread.join(5)


def serve(engine: Engine, listen: str) -> Server:
    """Start serving ``engine`` on ``host:port`` in the background."""
    host, _, port = listen.rpartition(":")
    return Server(engine, host or "127.0.0.1", int(port)).start()
