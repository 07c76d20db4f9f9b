"""A host application that runs eventsync inside its own process (see docs/embedding.md).

The host owns the web server (here Flask under waitress) and its routes; eventsync only gets
each inbound request and returns the response to send. Run it with:

    python docs/examples/embedded_host.py --config eventsync.toml --port 8000
"""

from __future__ import annotations

import argparse
import signal
import threading

from eventsync.engine import Engine
from eventsync.models import HttpRequest
from flask import Flask, Response, request
from waitress.server import create_server


def create_app(engine: Engine) -> Flask:
    """The host's own web app, with two routes that hand notifications to eventsync."""
    app = Flask("host")

    @app.post("/integrations/<org>/<system>")
    @app.post("/integrations/<org>/<system>/<path:suffix>")
    def notification(org: str, system: str, suffix: str = "") -> Response:
        # Translate the framework's request into eventsync's, and eventsync's answer back. The
        # suffix carries a per-org secret of the URL (the Outbound Message token).
        answer = engine.handle_request(
            org,
            system,
            HttpRequest(
                method=request.method,
                path=request.path,
                headers=dict(request.headers),
                body=request.get_data(),
                query=request.args.to_dict(),
                suffix=suffix,
            ),
        )
        return Response(
            answer.body,
            status=answer.status,
            content_type=answer.content_type,
            headers=dict(answer.headers),
        )

    @app.post("/admin/resync/<org>/<flow>/<entity>")
    def resync(org: str, flow: str, entity: str) -> Response:
        # The host's own admin screen can ask for one record to be synced again.
        engine.sync_entity(org, flow, entity)
        return Response("queued\n", status=202)

    @app.get("/admin/status")
    def status() -> dict:
        return {
            "flows": [
                {"org": s.org, "flow": s.flow, "pending": s.pending, "dead_letters": s.dead_letters}
                for s in engine.status()
            ]
        }

    return app


def main() -> None:
    """Start the engine and the host's server; stop both cleanly on SIGINT/SIGTERM."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="eventsync.toml")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()

    engine = Engine.from_file(args.config)  # or Engine(Config(...)) built in code
    server = create_server(create_app(engine), host="127.0.0.1", port=args.port)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())

    engine.start()  # worker threads and pollers
    threading.Thread(target=server.run, daemon=True).start()
    print(f"host listening on http://127.0.0.1:{args.port}", flush=True)
    stopping.wait()
    server.close()
    clean = engine.stop()  # in-flight batches finish or are released
    engine.close()
    raise SystemExit(0 if clean else 1)


if __name__ == "__main__":
    main()
