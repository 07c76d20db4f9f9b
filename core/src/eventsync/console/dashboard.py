"""The dashboard: per organisation and flow, lag, pending, last success; recent activity; dead
letters with Retry; findings (``eventsync check``, plugins' preflight included, and those the
running engine logged); and one record's trace. It calls what the CLI calls (``Engine.status``,
``StateStore.retry_dead_letters``, ``check_org``, ``build_trace``), never a copy of it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from ..checks import check_org
from ..cli.retry_cmd import _retry_selection_problems
from ..errors import ConfigurationError, EventsyncError
from ..trace import build_trace
from .forms import ActionForm, TraceForm
from .state import state

bp = Blueprint("dashboard", __name__)

#: Lines of recent activity shown.
RECENT = 30


def _config() -> Any:
    return state().document().config()


@bp.get("/orgs/<org>/dashboard")
def show(org: str) -> str | Response:
    """The dashboard of ``org``."""
    try:
        config = _config()
    except ConfigurationError as exc:
        return render_template("problems.html", org=org, problems=exc.problems)
    if org not in config.orgs:
        abort(404)
    trace_form = TraceForm(request.args)
    trace_form.flow.choices = sorted(config.orgs[org].flows.enabled())
    trace = None
    try:
        with state().engine(config) as engine:
            statuses = [s for s in engine.status() if s.org == org]
            recent = engine.store.sync_log(org, limit=RECENT)
            dead = engine.store.dead_letters(org, limit=200)
            logged = engine.store.sync_log(org, outcome="finding", limit=50)
            held = [h for h in engine.holds() if h.org == org]
            if trace_form.entity.data:
                trace = build_trace(
                    engine.store,
                    org,
                    trace_form.flow.data or "",
                    trace_form.entity.data.strip(),
                    values=bool(trace_form.values.data),
                )
    except (EventsyncError, OSError) as exc:
        return render_template("problems.html", org=org, problems=[str(exc)])
    return render_template(
        "dashboard.html",
        org=org,
        statuses=statuses,
        recent=recent,
        dead=dead,
        logged=logged,
        held=held,
        findings=None,
        trace_form=trace_form,
        trace=trace,
        action=ActionForm(),
    )


@bp.post("/orgs/<org>/dead-letters/<int:dead_id>/retry")
def retry(org: str, dead_id: int) -> Response:
    """Move one dead letter back to the outbox (``eventsync retry --id``)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    config = _config()
    with state().engine(config) as engine:
        problems = _retry_selection_problems(engine, org, None, (dead_id,))
        if problems:
            flash("; ".join(problems), "error")
        else:
            count = engine.store.retry_dead_letters([dead_id], org=org)
            flash(f"{count} dead letter moved back to the outbox", "ok")
    return redirect(url_for("dashboard.show", org=org))


@bp.post("/orgs/<org>/check")
def check(org: str) -> str | Response:
    """Run ``eventsync check`` for ``org`` and show its findings."""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        config = _config()
    except ConfigurationError as exc:
        return render_template("problems.html", org=org, problems=exc.problems)
    result = check_org(config, org, state().hooks(), env=state().env())
    return render_template("findings.html", org=org, findings=result.findings, ok=result.ok)
