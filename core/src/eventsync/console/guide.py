"""The guide's flow screens: each flow's settings (object and field pickers from the discovered
schema, a mapping editor with "add new mapping"), Skip, Test (that flow's checks and a preview of
a few records) and Done (saved, confirmed). A flow the plan does not include is shown, not edited."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ..checks import check_org
from ..errors import ConfigurationError, EventsyncError
from .catalog import flow_title
from .document import ConfigDocument
from .editing import save_part, stale
from .fields import form_fields, read_form
from .forms import EditForm
from .pickers import pickers
from .state import state

bp = Blueprint("guide", __name__)

#: Records a Test previews.
PREVIEW_RECORDS = 5


def _defaults(org_table: dict[str, Any], flow: str) -> dict[str, Any]:
    hooks = state().hooks()
    found: dict[str, Any] = {}
    for role in ("event_platform", "crm"):
        profile = hooks.profile(str(org_table.get(role, "")))
        if profile is not None:
            found.update(profile.flow_defaults.get(flow, {}))
    return found


def _entitled(doc: ConfigDocument, plan: str, flow: str) -> bool:
    from ..config import DEFAULT_ENTITLEMENTS

    entitlements = doc.get("entitlements") or DEFAULT_ENTITLEMENTS
    allowed = entitlements.get(plan, ())
    return "*" in allowed or flow in allowed


def _test(doc: ConfigDocument, org: str, flow: str) -> dict[str, Any]:
    """The flow's findings from ``eventsync check`` and a preview of a few records."""
    try:
        config = doc.config()
    except ConfigurationError as exc:
        return {"problems": list(exc.problems)}
    hooks = state().hooks()
    result = check_org(config, org, hooks, env=state().env())
    scope = f"$.orgs.{org}.flows.{flow}"
    # This flow's findings, the connections' and the plugins' preflight (pardot_guard's ...).
    findings = [
        f
        for f in result.findings
        if f.where.startswith((scope, f"$.orgs.{org}.systems")) or f.source != "eventsync"
    ]
    out: dict[str, Any] = {"findings": findings, "ok": result.ok}
    if not result.ok:
        return out
    from ..engine import Engine

    try:
        with Engine(config, hooks=hooks, pollers=False, subscribe=False) as engine:
            out["preview"] = engine.preview(org, flow, limit=PREVIEW_RECORDS)
    except (EventsyncError, OSError) as exc:
        out["preview_error"] = str(exc)
    return out


@bp.route("/orgs/<org>/flows/<flow>", methods=["GET", "POST"])
def flow(org: str, flow: str) -> str | Response:
    """One flow's screen."""
    doc = state().document()
    org_table = doc.get("orgs", org)
    flows = state().hooks().flows()
    if org_table is None or flow not in flows:
        abort(404)
    entitled = _entitled(doc, str(org_table.get("plan", "")), flow)
    settings_class = flows[flow].settings_class
    table = doc.get("orgs", org, "flows", flow) or {}
    defaults = _defaults(org_table, flow)
    form = EditForm()
    action = request.form.get("action", "")
    shown = {**defaults, **table}
    fields = form_fields(settings_class, shown, skip=("enabled",))
    refused: tuple[str, ...] = ()
    elsewhere: tuple[str, ...] = ()
    tested: dict[str, Any] | None = None
    extra_rows = 1
    scope = f"$.orgs.{org}.flows.{flow}"
    if entitled and form.validate_on_submit():
        values, _ = read_form(fields, request.form, table)
        if stale(doc, form.fingerprint.data):
            refused = ("the file changed since you opened this page; reload",)
        elif action == "skip":
            doc.update(("orgs", org, "flows", flow), {"enabled": False})
            outcome = save_part(doc, scope, form.fingerprint.data)
            if outcome.saved:
                flash(f"{flow_title(flow)} skipped: the flow is off", "ok")
                return redirect(url_for("orgs.overview", org=org))
            refused, elsewhere = outcome.refused, outcome.elsewhere
        else:
            doc.update(("orgs", org, "flows", flow), {**values, "enabled": None})
            if action == "add":
                extra_rows = 2
            elif action == "test":
                tested = _test(doc, org, flow)
            elif action == "done":
                outcome = save_part(doc, scope, form.fingerprint.data)
                if outcome.saved:
                    return render_template(
                        "done.html",
                        org=org,
                        flow=flow,
                        title=flow_title(flow),
                        elsewhere=outcome.elsewhere,
                    )
                refused, elsewhere = outcome.refused, outcome.elsewhere
        shown = {**defaults, **{k: v for k, v in values.items() if v is not None}}
        fields = form_fields(settings_class, shown, skip=("enabled",))
    suggestions: dict[str, list[str]] = {}
    note = ""
    try:
        config = ConfigDocument(doc.path, doc.text).config()
    except ConfigurationError:
        config = None
    if config is not None and org in config.orgs:
        suggestions, note = pickers(state(), config, org, flows[flow], shown, defaults)
        fields = form_fields(settings_class, shown, skip=("enabled",), suggestions=suggestions)
    else:
        note = "the file has problems (see the overview): the pickers need a valid file"
    return render_template(
        "flow.html",
        org=org,
        flow=flow,
        title=flow_title(flow),
        entitled=entitled,
        plan=org_table.get("plan", ""),
        form=form,
        # After Test or Add the file is unchanged: the page keeps the version it was made from.
        fingerprint=form.fingerprint.data if request.method == "POST" else doc.fingerprint,
        fields=fields,
        suggestions=suggestions,
        note=note,
        refused=refused,
        elsewhere=elsewhere,
        tested=tested,
        extra_rows=extra_rows,
        skipped=table.get("enabled") is False,
    )
