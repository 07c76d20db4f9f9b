"""Sign-in and sign-out of the console's admin."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from .accounts import account
from .forms import ActionForm, SignInForm
from .state import state
from .throttle import SignInThrottle

bp = Blueprint("auth", __name__)


def _safe_next(target: str | None) -> str:
    """Only a path on this site (never another host) is followed after signing in."""
    if not target:
        return url_for("orgs.index")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/"):
        return url_for("orgs.index")
    return request.script_root + target if not target.startswith(request.script_root) else target


@bp.route("/signin", methods=["GET", "POST"])
def signin() -> str | Response:
    """The sign-in page; without an admin account it says how to create one."""
    admin = account(state().config_path)
    form = SignInForm()
    throttle: SignInThrottle = current_app.extensions["eventsync_console_throttle"]
    if admin is not None and form.validate_on_submit():
        if (wait := throttle.wait()) > 0:
            flash(
                f"too many failed sign-ins: try again in {max(1, round(wait / 60))} minute(s)",
                "error",
            )
        elif admin.verify(form.username.data or "", form.password.data or ""):
            throttle.succeeded()
            session.clear()  # a fresh session: no fixation of one made before signing in
            session.permanent = True
            session["admin"] = admin.username
            return redirect(_safe_next(request.args.get("next")))
        else:
            throttle.failed()
            flash("wrong username or password", "error")
    # A Secure cookie is never sent back over plain HTTP: say so instead of looping.
    insecure = current_app.config["SESSION_COOKIE_SECURE"] and not request.is_secure
    return render_template(
        "signin.html",
        form=form,
        admin=admin,
        insecure=insecure,
        config_path=str(state().config_path),
    )


@bp.post("/signout")
def signout() -> Response:
    """End the admin's session."""
    if ActionForm().validate_on_submit():
        session.clear()
    return redirect(url_for("auth.signin"))
