"""The console's Flask app: sign-in required everywhere, CSRF on every form, secure cookies.

``create_app`` builds the app for one config file; ``mounted`` puts it under ``/console`` of
another WSGI app (``eventsync run``'s server, or the small root ``eventsync console`` serves).
Every route but the sign-in page and the static files redirects to sign-in until the admin has
signed in (``_require_sign_in`` runs before every request, so a new route cannot escape it).
"""

from __future__ import annotations

import datetime as dt
import secrets
from pathlib import Path
from typing import Any

from flask import Flask, Response, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFProtect
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.wrappers import Response as WerkzeugResponse

from ..errors import ConfigurationError
from .accounts import account
from .fields import FILTER_OPS, UPDATE_POLICIES, transforms_text
from .state import ConsoleState
from .throttle import SignInThrottle

__all__ = ["create_app", "mounted", "loopback", "PREFIX", "PUBLIC_ENDPOINTS"]

#: Where the console is mounted.
PREFIX = "/console"
#: The only endpoints served without a signed-in admin.
PUBLIC_ENDPOINTS = frozenset({"auth.signin", "static"})
#: How long a sign-in lasts.
SESSION_HOURS = 8


def create_app(
    config_path: str | Path, *, engine: Any = None, secure_cookies: bool = True
) -> Flask:
    """The console app editing ``config_path``.

    :param engine: the running engine when mounted by ``eventsync run`` (the dashboard reads
        it); None opens the state store per request.
    :param secure_cookies: send the session cookie with ``Secure`` (only over HTTPS); False
        only when the console listens on a loopback address (docs/console.md).
    """
    app = Flask(__name__)
    admin = account(config_path)
    # Without an admin nobody can sign in; a throwaway key signs the sign-in page's session.
    app.secret_key = admin.secret_key if admin else secrets.token_hex(32)
    app.config.update(
        SESSION_COOKIE_NAME="eventsync_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure_cookies,
        PERMANENT_SESSION_LIFETIME=dt.timedelta(hours=SESSION_HOURS),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        WTF_CSRF_SSL_STRICT=secure_cookies,
        MAX_CONTENT_LENGTH=1024 * 1024,
    )
    app.extensions["eventsync_console"] = ConsoleState(config_path, engine)
    app.extensions["eventsync_console_throttle"] = SignInThrottle()
    # Sign-in is checked first: an unauthenticated POST is sent to sign-in, not told of CSRF.
    app.before_request(_require_sign_in)
    CSRFProtect(app)
    app.jinja_env.globals.update(
        policies=UPDATE_POLICIES, filter_ops=FILTER_OPS, transforms_text=transforms_text
    )

    from . import auth, dashboard, guide, orgs, systems

    for blueprint in (auth.bp, orgs.bp, systems.bp, guide.bp, dashboard.bp):
        app.register_blueprint(blueprint)
    app.after_request(_headers)
    app.add_url_rule("/", "home", _home)
    app.register_error_handler(ConfigurationError, _unreadable)
    return app


def _unreadable(exc: ConfigurationError) -> tuple[str, int]:
    """A config file the console cannot read (invalid TOML): say what to fix, no traceback."""
    return render_template(
        "message.html",
        title="The configuration file cannot be read",
        message="; ".join(exc.problems),
    ), 500


def _require_sign_in() -> WerkzeugResponse | None:
    if request.endpoint in PUBLIC_ENDPOINTS:
        return None
    if not session.get("admin"):
        wanted = request.full_path if request.method == "GET" else ""
        return redirect(url_for("auth.signin", next=wanted.rstrip("?") or None))
    return None


def _headers(response: Response) -> Response:
    # Pages show settings: never cached, never framed; the referrer (the OAuth callback's URL
    # holds the code) goes to this site only, where Flask-WTF's HTTPS check wants it.
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
    )
    return response


def _home() -> WerkzeugResponse:
    return redirect(url_for("orgs.index"))


def mounted(console: Flask, root: Any = None) -> DispatcherMiddleware:
    """A WSGI app serving ``console`` under ``/console`` and ``root`` elsewhere (default: a
    redirect of ``/`` to the console and 404 for the rest)."""
    if root is None:
        root = _root_app()
    return DispatcherMiddleware(root, {PREFIX: console})


def _root_app() -> Flask:
    root = Flask("eventsync_console_root", static_folder=None)

    @root.get("/")
    def index() -> WerkzeugResponse:
        return redirect(PREFIX + "/")

    return root


def loopback(listen: str) -> bool:
    """True when ``HOST:PORT`` listens on a loopback address only (127.0.0.0/8, ::1, localhost),
    where the console may send its cookie without ``Secure`` (plain HTTP, local use)."""
    import ipaddress

    host = listen.rpartition(":")[0].strip("[]") or "127.0.0.1"
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
