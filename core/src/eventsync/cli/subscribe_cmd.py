"""``eventsync subscribe``: make the systems' notification subscriptions now, and end stale ones."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table
from rich.text import Text

from ..engine import SubscriptionOutcome
from ..errors import AuthenticationError, RetryableError
from ..models import Subscription
from .common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    config_option,
    console_for,
    emit_json,
    engine_for,
)


def _subscription(s: Subscription) -> dict[str, Any]:
    return {
        "id": s.id,
        "target": s.target,
        "expires_at": s.expires_at.isoformat() if s.expires_at else None,
    }


def _row(outcome: SubscriptionOutcome) -> dict[str, Any]:
    report = outcome.report
    return {
        "org": outcome.org,
        "system": outcome.system,
        "subscribes": report is not None,
        "active": [_subscription(s) for s in report.active] if report else [],
        "created": list(report.created) if report else [],
        "removed": [_subscription(s) for s in report.removed] if report else [],
        "error": outcome.error or None,
    }


def _exit_code(outcomes: list[SubscriptionOutcome]) -> int:
    failed = [o for o in outcomes if o.error]
    if not failed:
        return EXIT_OK
    unavailable = (AuthenticationError, RetryableError)
    if all(isinstance(o.exc, unavailable) for o in failed):
        return EXIT_UNAVAILABLE
    return EXIT_PROBLEMS


@click.command("subscribe")
@config_option("Config file.")
@click.option("--org", "orgs", multiple=True, help="Only this organisation (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def subscribe_command(config_path: str, orgs: tuple[str, ...], as_json: bool) -> None:
    """Create or renew the notification subscriptions the config asks for (e.g. Hopin's
    dataSubscription to webhook_url), and end those eventsync made that it no longer asks for.

    `eventsync run` does the same at start and keeps them renewed; `eventsync check` changes
    nothing remote. Exit code 0 when every system is subscribed, 1 when one refused, 2 for an
    unknown --org or an invalid config, 3 when a system cannot be reached or refuses the
    credentials.
    """
    engine = engine_for(config_path, as_json, pollers=False)
    try:
        unknown = [o for o in orgs if o not in engine.config.orgs]
        if unknown:
            known = ", ".join(engine.config.orgs) or "none"
            click.echo(
                f"error: --org {', '.join(unknown)}: no such organisation (known: {known})",
                err=True,
            )
            raise SystemExit(EXIT_USAGE)
        outcomes = engine.subscribe(list(orgs) or None)
    finally:
        engine.close()
    rows = [_row(o) for o in outcomes]
    code = _exit_code(outcomes)
    if as_json:
        emit_json({"ok": code == EXIT_OK, "systems": rows})
        raise SystemExit(code)
    table = Table(title="eventsync subscribe")
    for col in ("org", "system", "subscription", "target", "expires (UTC)", "done"):
        table.add_column(col, overflow="fold")
    for row in rows:
        if row["error"]:
            table.add_row(row["org"], row["system"], "-", "-", "-", Text(row["error"], "red"))
            continue
        if not row["subscribes"] or not (row["active"] or row["removed"]):
            note = "nothing to subscribe" if row["subscribes"] else "not subscribed by API"
            table.add_row(row["org"], row["system"], "-", "-", "-", note)
        for sub in row["active"]:
            done = "created/renewed" if sub["id"] in row["created"] else "kept"
            table.add_row(
                row["org"], row["system"], sub["id"], sub["target"], sub["expires_at"] or "-", done
            )
        for sub in row["removed"]:
            table.add_row(row["org"], row["system"], sub["id"], sub["target"], "-", "ended (stale)")
    console_for().print(table)
    raise SystemExit(code)
