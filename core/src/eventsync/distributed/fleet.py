"""A fleet of sandbox organisations in one deployment, for the scale-out tests and benchmarks.

Each organisation gets a CRM and an event-platform sandbox of its own (so one org's outage,
made with its sandbox's fault API, touches no other), and one configuration file names them all.
Sandboxes of one system name their secrets' environment variables alike; the fleet gives each
org's variables a suffix of its own so that one secrets file holds them all.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from ..plugins import Hooks
from ..sandbox_env import SandboxPair, org_config_data, start_sandboxes

__all__ = ["start_fleet", "fleet_config_files", "stop_fleet", "scratch_database", "lease_holders"]


@contextmanager
def scratch_database(server_url: str, prefix: str = "scratch") -> Iterator[str]:
    """A new PostgreSQL database on the server of ``server_url`` (its URL), dropped afterwards
    with whatever is still connected to it: the role processes of a test or benchmark are
    configured by URL, so each run gets a database rather than a schema of its own."""
    import sqlalchemy as sa

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        url = sa.engine.make_url(server_url).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def lease_holders(database: str) -> set[str]:
    """Who holds live outbox leases (``leased_by``: ``worker-THREAD@HOST:PID``)."""
    import sqlalchemy as sa

    engine = sa.create_engine(database)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT DISTINCT leased_by FROM outbox WHERE lease_until > now()"
            ).scalars()
            return {str(row) for row in rows if row}
    finally:
        engine.dispose()


def start_fleet(
    hooks: Hooks,
    count: int,
    *,
    crm: str | None = None,
    platform: str | None = None,
    prefix: str = "org",
    latency: str | None = None,
    endpoint: str | None = None,
) -> list[SandboxPair]:
    """Start ``count`` sandbox pairs of ``crm`` and ``platform`` (default: as
    ``start_sandboxes`` chooses) for the orgs ``{prefix}00``, ``{prefix}01`` ... (notifying
    ``endpoint`` when given; pollers otherwise). Stops what it started when one fails."""
    pairs: list[SandboxPair] = []
    try:
        for n in range(count):
            pairs.append(
                start_sandboxes(
                    hooks,
                    crm=crm,
                    platform=platform,
                    org=f"{prefix}{n:02}",
                    endpoint=endpoint,
                    triggers=endpoint is not None,
                    latency=latency,
                    latency_seed=n,
                )
            )
    except BaseException:
        stop_fleet(pairs)
        raise
    return pairs


def stop_fleet(pairs: Sequence[SandboxPair]) -> None:
    """Stop every sandbox of the fleet."""
    for pair in pairs:
        pair.stop()


def fleet_config_files(
    pairs: Sequence[SandboxPair],
    *,
    engine: Mapping[str, Any],
    flows: Sequence[str] = ("export_registrations",),
    poll_interval: float = 2.0,
    queues: Mapping[str, str] | None = None,
) -> tuple[str, str]:
    """The TOML configuration naming every org of the fleet (``flows`` of each, ``queues`` by
    org) and the dotenv secrets file its ``[engine] secrets_file`` must name."""
    import tomli_w

    orgs: dict[str, Any] = {}
    secrets: dict[str, str] = {}
    for n, pair in enumerate(pairs):
        info = pair.info()
        systems: dict[str, dict[str, Any]] = {}
        for system in (info["crm"], info["event_platform"]):
            options = dict(info[system]["settings"])
            for key, name in list(options.items()):
                if key.endswith("_env") and isinstance(name, str):
                    options[key] = f"{name}_{n:02}"
                    if name in info[system]["secrets"]:
                        secrets[options[key]] = info[system]["secrets"][name]
            systems[system] = options
        chosen = {k: v for k, v in pair.flows(poll_interval).items() if k in flows}
        data = org_config_data(
            systems, crm=info["crm"], platform=info["event_platform"], flows=chosen
        )
        if queues and pair.org in queues:
            data["queue"] = queues[pair.org]
        orgs[pair.org] = data
    text = tomli_w.dumps({"engine": dict(engine), "orgs": orgs})
    return text, "".join(f"{name}={value}\n" for name, value in sorted(secrets.items()))
