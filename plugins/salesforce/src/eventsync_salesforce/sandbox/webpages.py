"""The pages of the web server flow: authorize, login, consent, and the identity service.

The pages are plain HTML forms rendered by Flask's Jinja, which escapes every value. They work
in any browser without JavaScript, and ``requests`` can follow them in tests. See
``webflow`` for the rules they apply.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from flask import Flask, Response, render_template_string, request
from markupsafe import Markup

from .webflow import SCOPE_LABELS, AuthorizeError, PageError, Pending

if TYPE_CHECKING:
    from .org import Org

LOGIN_FAILED = (
    "Please check your username and password. If you still can't log in, contact your "
    "Salesforce administrator."
)

_LAYOUT = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ title }} | Salesforce sandbox</title>
<style>
body { font-family: sans-serif; background: #f3f6f9; margin: 0; }
main { max-width: 24rem; margin: 4rem auto; background: #fff; padding: 2rem;
       border: 1px solid #d8dde6; border-radius: .25rem; }
h1 { font-size: 1.25rem; } label { display: block; margin-top: 1rem; }
input[type=text], input[type=password] { width: 100%; padding: .5rem; box-sizing: border-box; }
button { margin-top: 1.5rem; padding: .6rem 1.2rem; }
.error { color: #c23934; } .note { color: #54698d; font-size: .85rem; }
</style></head><body><main>{{ body }}</main></body></html>"""

_LOGIN = """<h1>Log in to the Salesforce sandbox</h1>
<p class="note">{{ app }} wants to connect.</p>
{% if error %}<p class="error" role="alert">{{ error }}</p>{% endif %}
<form method="post" action="/services/oauth2/authorize/login">
<input type="hidden" name="request_id" value="{{ request_id }}">
<input type="hidden" name="csrf" value="{{ csrf }}">
<label for="username">Username</label>
<input type="text" id="username" name="username" value="{{ username }}" autocomplete="username">
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password">
<button type="submit" id="Login" name="Login">Log In</button>
</form>"""

_CONSENT = """<h1>Allow Access?</h1>
<p><strong>{{ app }}</strong> is asking to:</p>
<ul>{% for scope in scopes %}<li>{{ scope }}</li>{% endfor %}</ul>
<p class="note">Signed in as {{ username }}.</p>
<form method="post" action="/services/oauth2/authorize/consent">
<input type="hidden" name="request_id" value="{{ request_id }}">
<input type="hidden" name="csrf" value="{{ csrf }}">
<button type="submit" name="decision" value="allow" id="oaapprove">Allow</button>
<button type="submit" name="decision" value="deny" id="oadeny">Deny</button>
</form>"""

_ERROR = """<h1>OAuth Error</h1>
<p class="error" role="alert">error={{ error }}</p>
<p>{{ description }}</p>"""


def _page(title: str, template: str, status: int = 200, **values: object) -> Response:
    # The rendered body is escaped HTML already: Markup keeps the layout from escaping it again.
    body = Markup(render_template_string(template, **values))
    html = render_template_string(_LAYOUT, title=title, body=body)
    response = Response(html, status=status, content_type="text/html;charset=UTF-8")
    # Login pages are never framed (clickjacking) nor cached.
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"
    return response


def _error_page(exc: PageError) -> Response:
    return _page("Error", _ERROR, 400, error=exc.error, description=exc.description)


def _to_callback(redirect_uri: str, params: dict[str, str | None]) -> Response:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    joiner = "&" if "?" in redirect_uri else "?"
    return Response(status=302, headers={"Location": f"{redirect_uri}{joiner}{query}"})


def _login_page(request_id: str, pending: Pending, error: str = "", username: str = "") -> Response:
    return _page(
        "Login",
        _LOGIN,
        app=pending.request.app.name,
        request_id=request_id,
        csrf=pending.csrf,
        error=error,
        username=username,
    )


def register_webpages(app: Flask, org: Org) -> None:
    """Add the authorize, login, consent and identity routes to ``app``."""
    flow = org.webflow

    @app.get("/services/oauth2/authorize")
    def authorize() -> Response:
        try:
            accepted = flow.check_client(request.args)
        except AuthorizeError as exc:
            return _refusal(exc)
        request_id, pending = flow.begin(accepted)
        return _login_page(request_id, pending)

    def _refusal(exc: AuthorizeError) -> Response:
        # check_client passed the client and callback checks before raising this.
        return _to_callback(
            request.args.get("redirect_uri", ""),
            {
                "error": exc.error,
                "error_description": exc.description,
                "state": request.args.get("state"),
            },
        )

    def _posted() -> tuple[str, Pending]:
        """The pending request a form post names (PageError without its CSRF token)."""
        request_id = request.form.get("request_id", "")
        return request_id, flow.pending(request_id, request.form.get("csrf", ""))

    @app.errorhandler(PageError)
    def _page_error(exc: PageError) -> Response:
        return _error_page(exc)

    @app.post("/services/oauth2/authorize/login")
    def login() -> Response:
        request_id, pending = _posted()
        username = request.form.get("username", "")
        if not flow.login(pending, username, request.form.get("password", "")):
            return _login_page(request_id, pending, LOGIN_FAILED, username)
        scopes = list(dict.fromkeys(SCOPE_LABELS.get(s, s) for s in pending.request.scopes))
        assert pending.user is not None
        return _page(
            "Allow Access",
            _CONSENT,
            app=pending.request.app.name,
            scopes=scopes,
            username=pending.user.username,
            request_id=request_id,
            csrf=pending.csrf,
        )

    @app.post("/services/oauth2/authorize/consent")
    def consent() -> Response:
        request_id, pending = _posted()
        if pending.user is None:
            raise PageError("invalid_request", "log in before you allow access")
        allow = request.form.get("decision") == "allow"
        code = flow.decide(request_id, pending, allow)
        state = pending.request.state
        if code is None:
            params = {
                "error": "access_denied",
                "error_description": "end-user denied authorization",
                "state": state,
            }
        else:
            params = {"code": code, "state": state}
        return _to_callback(pending.request.redirect_uri, params)

    @app.get("/id/<org_id>/<user_id>")
    def identity(org_id: str, user_id: str) -> Response:
        header = request.headers.get("Authorization", "")
        token = header[7:] if header.lower().startswith("bearer ") else ""
        if not token or org.sessions.user_for(token) != user_id or org_id != org.org_id:
            return Response("Bad_OAuth_Token", status=403, content_type="text/plain")
        login = next(x for x in org.logins.values() if x.user_id == user_id)
        return Response(
            json.dumps(org.identity(login)), content_type="application/json;charset=UTF-8"
        )
