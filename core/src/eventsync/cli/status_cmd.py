"""``eventsync status``: lag, pending work, dead letters and holds per flow."""

from __future__ import annotations

import attrs
import click
from rich.table import Table
from rich.text import Text

from .common import EXIT_OK, EXIT_PROBLEMS, age, config_option, console_for, emit_json, engine_for


@click.command("status")
@config_option("Config file.")
@click.option(
    "--dead-letters",
    "show_dead",
    is_flag=True,
    help="Also list dead letters with their remote error.",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def status_command(config_path: str, show_dead: bool, as_json: bool) -> None:
    """Per flow: lag, pending, last success, dead letters and denials; each retrying record's
    last error; paused organisations and stopped flows (docs/errors.md).

    Exit code 0 when there are no dead letters and nothing is paused or stopped, 1 otherwise.
    """
    engine = engine_for(config_path, as_json, must_exist=True, pollers=False)
    try:
        statuses = engine.status()
        held = engine.holds()
        denials = {
            (e.org, e.flow, e.entity): e
            for e in reversed(engine.store.sync_log(outcome="denied", limit=1000))
        }
        dead = engine.store.dead_letters(limit=1000) if show_dead or as_json else []
        findings = engine.store.sync_log(outcome="finding", limit=50)
        retrying = engine.store.retrying(limit=200)
        budgets = engine.budgets()  # the deployment's latest usage readings
    finally:
        engine.close()
    rows = [
        {**attrs.asdict(s), "denied": sum(1 for k in denials if k[:2] == (s.org, s.flow))}
        for s in statuses
    ]
    total_dead = sum(r["dead_letters"] for r in rows)
    if as_json:
        emit_json(
            {
                "flows": rows,
                "dead_letters": [attrs.asdict(d) for d in dead],
                "holds": [attrs.asdict(h) for h in held],
                "denials": [
                    {
                        "org": e.org,
                        "flow": e.flow,
                        "entity": e.entity,
                        "reason": e.message,
                        "at": e.at,
                    }
                    for e in denials.values()
                ],
                "retrying": [attrs.asdict(r) for r in retrying],
                "budgets": [
                    {**attrs.asdict(b), "share": b.share, "state": b.state} for b in budgets
                ],
                "findings": [
                    {
                        "org": e.org,
                        "flow": e.flow,
                        "entity": e.entity,
                        "message": e.message,
                        "at": e.at,
                    }
                    for e in findings
                ],
            }
        )
    else:
        console = console_for()
        table = Table(title="eventsync status")
        for col in (
            "org",
            "flow",
            "pending",
            "in flight",
            "retrying",
            "lag",
            "last success",
            "dead letters",
            "denied",
        ):
            table.add_column(
                col, justify="right" if col not in ("org", "flow", "last success") else "left"
            )
        for r in rows:
            last = (
                r["last_success_at"].strftime("%Y-%m-%d %H:%M:%S") if r["last_success_at"] else "-"
            )
            table.add_row(
                r["org"],
                r["flow"],
                str(r["pending"]),
                str(r["leased"]),
                str(r["retrying"]),
                age(r["lag_seconds"]),
                last,
                str(r["dead_letters"]),
                str(r["denied"]),
            )
        console.print(table)
        if held:
            ht = Table(title="held work (see docs/errors.md)")
            for col in ("state", "org", "flow", "last seen (UTC)", "reason", "what to do"):
                ht.add_column(col, overflow="fold")
            for h in held:
                todo = _HOLD_TODO[h.kind]
                seen = h.at.strftime("%Y-%m-%d %H:%M:%S")
                flow = h.flow if h.kind == "stopped" else "(all)"
                ht.add_row(h.kind.upper(), h.org, flow, seen, h.reason, todo)
            console.print(ht)
        if denials:
            den = Table(title="denied records (admitted again once the source changes)")
            for col in ("org", "flow", "entity", "reason"):
                den.add_column(col, overflow="fold")
            for e in denials.values():
                den.add_row(e.org, e.flow, e.entity, e.message)
            console.print(den)
        if retrying:
            rt = Table(title="retrying records (their last error; eventsync trace shows more)")
            for col in ("org", "flow", "entity", "attempts", "next try (UTC)", "last error"):
                rt.add_column(col, overflow="fold")
            for r in retrying:
                error = f"{r.code}: {r.error}" if r.code else (r.error or "")
                due = r.due_at.strftime("%Y-%m-%d %H:%M:%S")
                rt.add_row(r.org, r.flow, r.entity, str(r.attempts), due, Text(error))
            console.print(rt)
        if budgets:
            bt = Table(title="API budgets (the latest usage any process of the deployment saw)")
            for col in ("org", "system", "used", "limit", "share", "state"):
                bt.add_column(col, justify="right" if col in ("used", "limit", "share") else "left")
            for b in budgets:
                share = f"{b.share:.0%}"
                bt.add_row(b.org, b.system, str(b.used), str(b.limit), share, b.state)
            console.print(bt)
        if findings:
            ft = Table(title="findings from the running engine (newest first)")
            for col in ("org", "flow", "entity", "finding"):
                ft.add_column(col, overflow="fold")
            for e in findings:
                ft.add_row(e.org, e.flow, e.entity, e.message)
            console.print(ft)
        if dead:
            dl = Table(title="dead letters (retry with: eventsync retry)")
            for col in ("id", "org", "flow", "entity", "attempts", "code", "remote error"):
                dl.add_column(col, overflow="fold")
            for d in dead:
                dl.add_row(str(d.id), d.org, d.flow, d.entity, str(d.attempts), d.code, d.message)
            console.print(dl)
    raise SystemExit(EXIT_OK if total_dead == 0 and not held else EXIT_PROBLEMS)


_HOLD_TODO = {
    "paused": "fix the credentials; work resumes by itself",
    "stopped": "fix the configuration, then restart",
}
