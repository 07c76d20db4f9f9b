"""``eventsync retry``: move dead letters back to the outbox."""

from __future__ import annotations

from typing import Any

import click

from .common import EXIT_USAGE, config_option, emit_json, engine_for


@click.command("retry")
@config_option("Config file.")
@click.option("--org", help="Only this organisation.")
@click.option("--flow", help="Only this flow.")
@click.option("--id", "ids", type=int, multiple=True, help="Only this dead letter (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def retry_command(
    config_path: str, org: str | None, flow: str | None, ids: tuple[int, ...], as_json: bool
) -> None:
    """Move dead letters back to the outbox so they are tried again.

    Exit code 2 when --org, --flow or --id names nothing that exists (nothing is moved then).
    """
    engine = engine_for(config_path, as_json, must_exist=True, pollers=False)
    try:
        problems = _retry_selection_problems(engine, org, flow, ids)
        if problems:
            for problem in problems:
                click.echo(f"error: {problem}", err=True)
            raise SystemExit(EXIT_USAGE)
        count = engine.store.retry_dead_letters(list(ids) or None, org=org, flow=flow)
    finally:
        engine.close()
    if as_json:
        emit_json({"retried": count})
    else:
        click.echo(
            f"{count} dead letter(s) moved back to the outbox; `eventsync run` will sync them"
        )


def _retry_selection_problems(
    engine: Any, org: str | None, flow: str | None, ids: tuple[int, ...]
) -> list[str]:
    """What in a ``retry`` selection names nothing: an unknown org, a flow no org configures,
    dead-letter ids that do not exist (within the org/flow given)."""
    problems = []
    orgs = engine.config.orgs
    if org is not None and org not in orgs:
        problems.append(f"--org {org}: no such organisation (known: {', '.join(orgs) or 'none'})")
    flows = sorted({f for o in orgs.values() for f in o.flows})
    if flow is not None and flow not in flows:
        problems.append(f"--flow {flow}: no organisation configures it (flows: {', '.join(flows)})")
    if ids and not problems:
        known = {d.id for d in engine.store.dead_letters(org, flow, limit=1_000_000)}
        missing = [str(i) for i in ids if i not in known]
        if missing:
            problems.append(
                f"--id {', '.join(missing)}: no such dead letter"
                + (
                    f" of {org or ''}{'/' if org and flow else ''}{flow or ''}"
                    if org or flow
                    else ""
                )
                + " (list them with `eventsync status --dead-letters`)"
            )
    return problems
