"""``eventsync backfill``: sync every existing source record of a flow."""

from __future__ import annotations

import time
from typing import Any

import attrs
import click

from ..errors import ConfigurationError
from .common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    config_option,
    config_problems,
    console_for,
    emit_json,
    engine_for,
    log_options,
    start_logging,
)
from .preview_cmd import show_preview


@click.command("backfill")
@click.argument("flow")
@config_option("Config file.")
@click.option(
    "--org",
    "orgs",
    multiple=True,
    help="Only this organisation (repeatable; default: all with the flow).",
)
@click.option(
    "--restart",
    is_flag=True,
    help="Start over instead of resuming where the last backfill stopped.",
)
@click.option(
    "--mark-only",
    is_flag=True,
    help="Only queue the entities; a running `eventsync run` syncs them.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Write nothing: show what the backfill would do to each record (as `eventsync preview`).",
)
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
@log_options
def backfill_command(
    flow: str,
    config_path: str,
    orgs: tuple[str, ...],
    restart: bool,
    mark_only: bool,
    dry_run: bool,
    as_json: bool,
    log_level: str | None,
    log_format: str | None,
) -> None:
    """Sync every existing source record of FLOW (resumable, within the API budget).

    Exit code 0 when the backfill finished, 1 when it paused (budget) or records dead-lettered,
    130 when interrupted with Ctrl-C (run it again to resume).
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    engine = engine_for(config_path, as_json, pollers=False, subscribe=False)
    start_logging(engine, log_level, log_format)
    names = list(orgs) or [o.name for o in engine.config.orgs.values() if flow in o.flows.enabled()]
    if not names:
        click.echo(f"error: no organisation has the flow {flow!r} configured", err=True)
        engine.close()
        raise SystemExit(EXIT_USAGE)
    if dry_run:
        _dry_run(engine, flow, names, as_json)
    results: dict[str, Any] = {}
    dead_before = engine.store.dead_letter_count(flow=flow)
    if not mark_only:
        engine.start()
    try:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console_for(err=True),
            disable=as_json,
        ) as progress:
            for org in names:
                queued = progress.add_task(f"{org}: queued", total=None)
                result = engine.backfill(
                    org, flow, restart=restart, progress=lambda n, t=queued: progress.advance(t, n)
                )
                progress.update(queued, total=result.marked, completed=result.marked)
                if not mark_only:
                    synced = progress.add_task(f"{org}: synced", total=result.marked)
                    while True:
                        status = engine.store.flow_status(org, flow)
                        left = status.pending + status.leased
                        progress.update(synced, completed=max(0, result.marked - left))
                        if left == 0:
                            break
                        time.sleep(0.2)
                results[org] = attrs.asdict(result)
    except ConfigurationError as exc:
        config_problems(exc, as_json)
        raise SystemExit(EXIT_USAGE) from None
    except KeyboardInterrupt:
        # Ctrl-C is a person's choice, not a pause or a failure: say so, and how to go on.
        click.echo(
            f"interrupted: what was queued stays queued; `eventsync backfill {flow}` resumes "
            f"where this one stopped (--restart starts over)",
            err=True,
        )
        raise SystemExit(EXIT_INTERRUPTED) from None
    finally:
        engine.close()
    # Records that land clear their old dead letters: the count can fall, never below none new.
    dead = max(0, engine.store.dead_letter_count(flow=flow) - dead_before) if not mark_only else 0
    finished = all(r["finished"] for r in results.values())
    if as_json:
        emit_json({"flow": flow, "orgs": results, "new_dead_letters": dead})
    else:
        for org, r in results.items():
            state = "finished" if r["finished"] else r["reason"]
            click.echo(f"{org}: {r['marked']} record(s) queued; {state}")
        if dead:
            click.echo(f"{dead} record(s) dead-lettered; see `eventsync status --dead-letters`")
    raise SystemExit(EXIT_OK if finished and not dead else EXIT_PROBLEMS)


def _dry_run(engine: Any, flow: str, names: list[str], as_json: bool) -> None:
    """Preview every source record of ``flow`` for each org, then exit (0: all seen)."""
    try:
        previews = [engine.preview(org, flow) for org in names]
    except ConfigurationError as exc:
        config_problems(exc, as_json)
        raise SystemExit(EXIT_USAGE) from None
    finally:
        engine.close()
    if as_json:
        emit_json({"flow": flow, "dry_run": True, "orgs": {p.org: p.as_dict() for p in previews}})
    else:
        for result in previews:
            show_preview(result, False)
    raise SystemExit(EXIT_OK if all(p.complete for p in previews) else EXIT_PROBLEMS)
