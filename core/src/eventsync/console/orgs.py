"""Choose or create an organisation, and its overview: the guide's steps and their state."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from werkzeug.wrappers import Response

from ..config import DEFAULT_ENTITLEMENTS
from .catalog import plugin_of_system, steps
from .editing import save_part
from .forms import NewOrgForm
from .state import state

bp = Blueprint("orgs", __name__)


def _choices(form: NewOrgForm, doc_entitlements: object) -> None:
    hooks = state().hooks()
    profiles = hooks.profiles()
    plans = list(doc_entitlements) if isinstance(doc_entitlements, dict) else []
    form.plan.choices = plans or list(DEFAULT_ENTITLEMENTS)
    form.crm.choices = sorted(s for s, p in profiles.items() if p.role == "crm")
    form.event_platform.choices = sorted(
        s for s, p in profiles.items() if p.role == "event_platform"
    )


@bp.route("/orgs", methods=["GET", "POST"])
def index() -> str | Response:
    """The organisations of the file, and a form to create one."""
    doc = state().document()
    form = NewOrgForm()
    _choices(form, doc.get("entitlements"))
    orgs = doc.get("orgs") or {}
    refused: tuple[str, ...] = ()
    if form.validate_on_submit():
        name = form.name.data or ""
        if name in orgs:
            form.name.errors = [f"an organisation {name!r} already exists"]
        else:
            systems = [form.crm.data, form.event_platform.data]
            owners = plugin_of_system(state().hooks())
            doc.update(
                ("orgs", name),
                {
                    "plan": form.plan.data,
                    "plugins": sorted({owners.get(s, s) for s in systems}),
                    "crm": form.crm.data,
                    "event_platform": form.event_platform.data,
                },
            )
            outcome = save_part(doc, f"$.orgs.{name}.plan", form.fingerprint.data)
            if outcome.saved:
                flash(f"organisation {name} created", "ok")
                return redirect(url_for("orgs.overview", org=name))
            refused = outcome.refused
    form.fingerprint.data = doc.fingerprint
    return render_template("orgs.html", form=form, orgs=orgs, refused=refused)


@bp.get("/orgs/<org>")
def overview(org: str) -> str:
    """The guide's screens for ``org``, in order, with what is done."""
    doc = state().document()
    table = doc.get("orgs", org)
    if table is None:
        abort(404)
    hooks = state().hooks()
    flows = list(hooks.flows())
    plan = str(table.get("plan", ""))
    entitlements = doc.get("entitlements") or DEFAULT_ENTITLEMENTS
    allowed = entitlements.get(plan, ())
    entitled = {f: "*" in allowed or f in allowed for f in flows}
    found = steps(table, hooks.profiles(), hooks.options_schemas(), flows, entitled)
    return render_template(
        "overview.html", org=org, plan=plan, steps=found, problems=doc.problems()
    )
