"""The notification route, ``POST /hooks/<org>/<system>[/<suffix>]``, as a bare WSGI handler.

Every delivery of a webhook burst comes through here, so the route runs in front of Flask: a
well-formed notification (a ``Content-Length`` within ``MAX_BODY``, no empty path segment) is
answered without Flask's request context, URL map and response objects, which cost about as
much CPU as taking the notification in. Everything else (another method, a body too big or sent
chunked, an odd path) goes on to the Flask app, whose route gives the same answer through the
same ``NotificationRoute.take`` and whose error handlers answer the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl

import attrs

from .engine import Engine
from .metrics import EngineMetrics
from .models import HttpRequest, HttpResponse

__all__ = ["NotificationRoute", "Front", "MAX_BODY", "UNKNOWN", "PREFIX"]

log = logging.getLogger("eventsync.server")

#: Largest notification body accepted (Salesforce sends at most 100 notifications a message).
MAX_BODY = 5 * 1024 * 1024
#: The metric label of an organisation or system name that is not configured.
UNKNOWN = "(unknown)"
#: The path the route serves.
PREFIX = "/hooks/"
_PLAIN = "text/plain; charset=utf-8"
_INTERNAL_ERROR = HttpResponse(500, b"internal error (see the eventsync log)\n", _PLAIN)
# CGI names of the headers a WSGI environ keeps without the HTTP_ prefix.
_UNPREFIXED = {"CONTENT_TYPE": "Content-Type", "CONTENT_LENGTH": "Content-Length"}

WsgiApp = Callable[..., Iterable[bytes]]


class NotificationRoute:
    """Takes notifications in for ``engine`` and counts them (``metrics``)."""

    def __init__(self, engine: Engine, metrics: EngineMetrics) -> None:
        self.engine = engine
        self.metrics = metrics

    def count(self, org: str | None, system: str | None, result: str, status: int) -> None:
        """Count a notification under its names when they are configured, else unlabelled."""
        if org is not None and system is not None and self.metrics.known(org, system=system):
            self.metrics.notifications.labels(org, system, result, str(status)).inc()
        else:
            self.metrics.unrouted.inc()

    def take(self, org: str, system: str, request: HttpRequest) -> HttpResponse:
        """The answer to ``request`` for ``org``'s ``system`` (``Engine.receive``), counted; an
        exception (a bug, a failing store) is logged and answered with a plain 500."""
        known = self.metrics.known(org, system=system)
        try:
            answer = self.engine.receive(org, system, request)
        except Exception:  # noqa: BLE001 - a bug or a failing store must not be an HTML page
            org_label, system_label = (org, system) if known else (UNKNOWN, UNKNOWN)
            log.exception("the %s notification for %s failed", system_label, org_label)
            self.count(org, system, "error", 500)
            return _INTERNAL_ERROR
        self.count(org, system, answer.result, answer.response.status)
        if answer.entities and known:
            self.metrics.marked.labels(org, system).inc(answer.entities)
        return answer.response

    def in_front_of(self, app: WsgiApp) -> Front:
        """A WSGI app answering well-formed notifications itself and handing the rest to
        ``app``."""
        return Front(self, app)

    def direct(self, environ: Mapping[str, Any]) -> HttpResponse | None:
        """The answer to a well-formed notification, or None to leave the request to Flask."""
        if environ.get("REQUEST_METHOD") != "POST":
            return None
        # WSGI hands the path over as latin-1 of its bytes; names are UTF-8 (as in werkzeug).
        raw = environ.get("PATH_INFO", "")
        if not raw.startswith(PREFIX):
            return None
        try:
            path = raw.encode("latin-1").decode("utf-8")
            length = int(environ.get("CONTENT_LENGTH") or "")
        except ValueError:  # not UTF-8, or no length (chunked): Flask's route handles it
            return None
        parts = path[len(PREFIX) :].split("/")
        if len(parts) < 2 or "" in parts or not 0 <= length <= MAX_BODY:
            return None
        org, system, suffix = parts[0], parts[1], "/".join(parts[2:])
        request = HttpRequest(
            method="POST",
            path=path,
            headers=_headers(environ),
            body=environ["wsgi.input"].read(length) if length else b"",
            query=_first_values(environ.get("QUERY_STRING", "")),
            suffix=suffix,
        )
        return self.take(org, system, request)


@attrs.frozen
class Front:
    """The WSGI app of ``NotificationRoute.in_front_of``: ``route`` answers well-formed
    notifications, ``app`` (Flask's) the rest."""

    route: NotificationRoute
    app: WsgiApp

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        taken = self.route.direct(environ)
        if taken is None:
            return self.app(environ, start_response)
        status = taken.status
        headers = [("Content-Type", taken.content_type)]
        headers += [(k, v) for k, v in taken.headers.items() if k.lower() != "content-type"]
        headers.append(("Content-Length", str(len(taken.body))))
        start_response(f"{status} {_phrase(status)}", headers)
        return [taken.body]


def _headers(environ: Mapping[str, Any]) -> dict[str, str]:
    """The request's headers from a WSGI environ, named as they are sent (``X-Hopin-Sig``)."""
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").title()] = value
        elif key in _UNPREFIXED and value:
            headers[_UNPREFIXED[key]] = value
    return headers


def _first_values(query: str) -> dict[str, str]:
    """A query string's parameters, the first value of each (as werkzeug's ``to_dict``)."""
    values: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        values.setdefault(key, value)
    return values


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"
