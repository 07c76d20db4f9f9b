"""Connect a system (its settings form, checked on save through the plugin's ``authenticate``,
and the interactive OAuth sign-in where its plugin has one), and concern plugins' options."""

from __future__ import annotations

import os
import secrets as tokens
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from ..errors import ConfigurationError, EventsyncError
from ..models import SystemSettings
from .catalog import plugin_of_system
from .document import ConfigDocument
from .editing import save_part, stale
from .fields import FormField, form_fields, read_form
from .forms import EditForm
from .state import secret_variable, state

bp = Blueprint("systems", __name__)

#: The session key of a sign-in under way: its state, org and system (the PKCE verifier is
#: kept in the console process, ``ConsoleState.keep_verifier``).
PENDING = "oauth_pending"


def _profile(org: str, system: str) -> Any:
    doc = state().document()
    table = doc.get("orgs", org)
    if table is None or system not in (table.get("crm"), table.get("event_platform")):
        abort(404)
    profile = state().hooks().profile(system)
    if profile is None:
        abort(404)
    return doc, profile


def _has_oauth(system: str) -> bool:
    hooks = state().hooks()
    owner = plugin_of_system(hooks).get(system)
    return any(impl.plugin_name == owner for impl in hooks.pm.hook.oauth_start.get_hookimpls())


def _secret_flags(table: dict[str, Any]) -> dict[str, bool]:
    """Per secret setting of ``table``: does its variable have a value (store or environment)."""
    stored = state().secrets().names()
    return {
        name: isinstance(var, str) and (var in stored or var in os.environ)
        for name, var in table.items()
        if name.endswith("_env")
    }


def _apply(
    doc: ConfigDocument, keys: tuple[str, ...], values: dict[str, Any], typed: dict[str, str]
) -> dict[str, str]:
    """Write the settings of the table at ``keys`` (``orgs, ORG, systems|plugin_options,
    NAME``) and a ``<name>_env`` for each typed secret into ``doc``; returns the secrets to
    store (variable -> value), under the variable the file names already, else a new one."""
    state().secrets(doc)  # gives a file without a secrets store one, before a secret is saved
    table = doc.get(*keys) or {}
    new_secrets = {}
    for name, value in typed.items():
        variable = table.get(name) or secret_variable(keys[1], keys[3], name)
        values[name] = variable
        new_secrets[variable] = value
    doc.update(keys, values)
    return new_secrets


def _connection_problem(doc: ConfigDocument, org: str, system: str, env: dict[str, str]) -> str:
    """Why the plugin's ``authenticate`` refuses the edited settings, or ''."""
    options = doc.get("orgs", org, "systems", system) or {}
    hooks = state().hooks()
    try:
        hooks.authenticate(SystemSettings(system=system, org=org, options=options, env=env))
    except ConfigurationError as exc:
        return "; ".join(exc.problems)
    except (EventsyncError, OSError) as exc:
        return str(exc)
    return ""


@bp.route("/orgs/<org>/systems/<system>", methods=["GET", "POST"])
def connect(org: str, system: str) -> str | Response:
    """A system's settings; Save checks them with the system, Connect starts OAuth."""
    doc, profile = _profile(org, system)
    form = EditForm()
    table = doc.get("orgs", org, "systems", system) or {}
    fields: list[FormField] = (
        form_fields(profile.settings, table, _secret_flags(table)) if profile.settings else []
    )
    refused: tuple[str, ...] = ()
    elsewhere: tuple[str, ...] = ()
    if form.validate_on_submit():
        values, typed = read_form(fields, request.form, table)
        if stale(doc, form.fingerprint.data):
            refused = ("the file changed since you opened this page; reload",)
        elif request.form.get("action") == "oauth":
            return _oauth_start(doc, org, system, values, typed, form.fingerprint.data or "")
        else:
            new_secrets = _apply(doc, ("orgs", org, "systems", system), values, typed)
            scope = f"$.orgs.{org}.systems.{system}"
            problems = [p for p in doc.problems() if p.startswith(scope)]
            problem = (
                ""
                if problems
                else _connection_problem(doc, org, system, {**state().env(), **new_secrets})
            )
            if problem:
                refused = (f"{profile.label or system} refused the settings: {problem}",)
            else:
                outcome = save_part(
                    doc,
                    scope,
                    form.fingerprint.data,
                    secrets=state().secrets(doc),
                    new_secrets=new_secrets,
                )
                if outcome.saved:
                    state().forget_schemas(org)
                    flash(f"{profile.label or system} connected and saved", "ok")
                    return redirect(url_for("orgs.overview", org=org))
                refused, elsewhere = outcome.refused, outcome.elsewhere
    return render_template(
        "system.html",
        org=org,
        system=system,
        label=profile.label or system,
        form=form,
        fingerprint=doc.fingerprint,
        fields=fields,
        oauth=_has_oauth(system),
        refused=refused,
        elsewhere=elsewhere,
    )


def _redirect_uri() -> str:
    return url_for("systems.oauth_callback", _external=True)


def _oauth_start(
    doc: ConfigDocument,
    org: str,
    system: str,
    values: dict[str, Any],
    typed: dict[str, str],
    page_fingerprint: str,
) -> Response:
    new_secrets = _apply(doc, ("orgs", org, "systems", system), values, typed)
    # The settings typed so far are kept (the secrets too) before leaving for the sign-in page;
    # they may be incomplete until the grant's settings are added at the callback.
    outcome = save_part(
        doc,
        None,
        page_fingerprint,
        secrets=state().secrets(doc),
        new_secrets=new_secrets,
    )
    if not outcome.saved:
        flash("; ".join(outcome.refused), "error")
        return redirect(url_for("systems.connect", org=org, system=system))
    options = doc.get("orgs", org, "systems", system) or {}
    sign_in_state = tokens.token_urlsafe(32)
    try:
        start = state().hooks().oauth_start(system, options, _redirect_uri(), sign_in_state)
    except ConfigurationError as exc:
        flash("; ".join(exc.problems), "error")
        return redirect(url_for("systems.connect", org=org, system=system))
    if start is None:
        flash(f"{system} has no interactive sign-in: fill in its settings and Save", "error")
        return redirect(url_for("systems.connect", org=org, system=system))
    # The verifier stays in this process, never in a URL or a cookie; the session carries the
    # state, which ties the callback to this browser.
    state().keep_verifier(sign_in_state, start.verifier)
    session[PENDING] = {"state": sign_in_state, "org": org, "system": system}
    return redirect(start.url)


@bp.get("/oauth/callback")
def oauth_callback() -> str | Response | tuple[str, int]:
    """Where the system sends the admin back: check ``state``, exchange the code, save."""
    pending = session.pop(PENDING, None)
    if not pending or not tokens.compare_digest(
        str(request.args.get("state", "")), str(pending.get("state", ""))
    ):
        return render_template(
            "message.html",
            title="Sign-in refused",
            message="This sign-in was not started from this browser's session (its state "
            "does not match). Start it again with Connect.",
        ), 400
    org, system = pending["org"], pending["system"]
    verifier = state().take_verifier(str(pending["state"]))
    if "error" in request.args:
        flash(
            f"the sign-in was refused: {request.args.get('error')} "
            f"{request.args.get('error_description', '')}".strip(),
            "error",
        )
        return redirect(url_for("systems.connect", org=org, system=system))
    if verifier is None:
        flash(
            "this sign-in expired or was started by another console process; start it again "
            "with Connect",
            "error",
        )
        return redirect(url_for("systems.connect", org=org, system=system))
    doc = state().document()
    options = doc.get("orgs", org, "systems", system) or {}
    env = state().env()
    known = {
        name.removesuffix("_env"): env[var]
        for name, var in options.items()
        if name.endswith("_env") and isinstance(var, str) and var in env
    }
    try:
        grant = (
            state()
            .hooks()
            .oauth_finish(
                system,
                options,
                _redirect_uri(),
                str(request.args.get("code", "")),
                verifier,
                known,
            )
        )
    except (EventsyncError, OSError) as exc:
        flash(f"the sign-in failed: {exc}", "error")
        return redirect(url_for("systems.connect", org=org, system=system))
    if grant is None:
        abort(404)
    typed = {f"{name}_env": value for name, value in grant.secrets.items()}
    new_secrets = _apply(doc, ("orgs", org, "systems", system), dict(grant.settings), typed)
    outcome = save_part(
        doc,
        f"$.orgs.{org}.systems.{system}",
        doc.fingerprint,
        secrets=state().secrets(doc),
        new_secrets=new_secrets,
    )
    if not outcome.saved:
        flash("; ".join(outcome.refused), "error")
        return redirect(url_for("systems.connect", org=org, system=system))
    state().forget_schemas(org)
    flash(f"connected as {grant.account or 'the signed-in user'}", "ok")
    return redirect(url_for("orgs.overview", org=org))


@bp.route("/orgs/<org>/plugins/<plugin>", methods=["GET", "POST"])
def plugin(org: str, plugin: str) -> str | Response:
    """A concern plugin's options, rendered from its declared schema."""
    doc = state().document()
    schema = state().hooks().options_schemas().get(plugin)
    if doc.get("orgs", org) is None or schema is None:
        abort(404)
    table = doc.get("orgs", org, "plugin_options", plugin) or {}
    form = EditForm()
    fields = form_fields(schema, table, _secret_flags(table))
    refused: tuple[str, ...] = ()
    elsewhere: tuple[str, ...] = ()
    if form.validate_on_submit():
        values, typed = read_form(fields, request.form, table)
        new_secrets = _apply(doc, ("orgs", org, "plugin_options", plugin), values, typed)
        outcome = save_part(
            doc,
            f"$.orgs.{org}.plugin_options.{plugin}",
            form.fingerprint.data,
            secrets=state().secrets(doc),
            new_secrets=new_secrets,
        )
        if outcome.saved:
            flash(f"{plugin} options saved", "ok")
            return redirect(url_for("orgs.overview", org=org))
        refused, elsewhere = outcome.refused, outcome.elsewhere
    return render_template(
        "plugin.html",
        org=org,
        plugin=plugin,
        form=form,
        fingerprint=doc.fingerprint,
        fields=fields,
        refused=refused,
        elsewhere=elsewhere,
    )
