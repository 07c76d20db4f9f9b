"""Import-direction benchmark: CampaignMembers created in Salesforce -> magic links written back.

Both sandboxes run in this process; the engine runs as `eventsync run --no-pollers` in a child
process. CampaignMembers of a Campaign carrying the Hopin ticket's integration code are created
at a steady rate through the Salesforce sandbox's admin API (as a user would: automation fires),
each announced by an Outbound Message; the benchmark watches for the magic link on each
CampaignMember every 50 ms.

Printed per latency profile (none, then the sandboxes' realistic one), measured in one run:
how long the creation took (members due by the schedule are created together, so a slow
admin call cannot lower the rate), creation-to-link-written latency p50 / p95 / p99, how many
were written within 60 s, Salesforce API calls, Hopin API calls (per invitation), the
runner's peak RSS; then where the time went, stage by stage, from the engine's sync log.

    .venv/bin/python bench/magic_links.py [--members 500] [--seconds 10] [--workers 2] [--hopin-parallel N]
        [--latency both|none|realistic]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

import _latency
import psutil
import requests
import tomli_w
from _stages import STAGES, stages
from _watch import Watcher
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import free_port, sandbox_config_files, start_sandboxes, write_private
from eventsync.waiting import wait_until
from eventsync_salesforce.sandbox.wiring import LINK_FIELD, TICKET_CODE_FIELD
from realtime import percentile

EVENTSYNC = str(Path(sys.executable).with_name("eventsync"))
STATE = "eventsync-sandbox.sqlite"  # the runner's state file (sandbox_config_files' default)


def run(
    members: int, seconds: float, profile: str, hopin_parallel: int | None, workers: int
) -> dict:
    hooks = Hooks(make_plugin_manager(environ={}))
    port = free_port()
    pair = start_sandboxes(
        hooks,
        crm="salesforce",
        platform="hopin",
        org="bench",
        endpoint=f"http://127.0.0.1:{port}",
        latency=_latency.option(profile),
    )
    workdir = Path(tempfile.mkdtemp(prefix="eventsync-bench-links-"))
    runner = None
    try:
        info = pair.info()
        flows = pair.flows()
        toml_text, secrets = sandbox_config_files(
            info,
            hooks=hooks,
            secrets_file="secrets.env",
            flows={k: flows[k] for k in ("import_registrations", "magic_links")},
            engine={"batch_linger": 0.5, "workers": workers},
        )
        if hopin_parallel is not None:
            config = tomllib.loads(toml_text)
            config["orgs"]["bench"]["systems"]["hopin"]["max_parallel"] = hopin_parallel
            toml_text = tomli_w.dumps(config)
        (workdir / "eventsync.toml").write_text(toml_text)
        write_private(workdir / "secrets.env", secrets)
        runner = subprocess.Popen(
            [EVENTSYNC, "run", "--no-pollers"],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        proc = psutil.Process(runner.pid)
        health = f"http://127.0.0.1:{port}/healthz"

        def healthy() -> bool:
            try:
                return requests.get(health, timeout=1).status_code == 200
            except requests.RequestException:
                return False

        wait_until("the runner to be healthy", healthy, timeout=60)
        sf, hp = info["salesforce"], info["hopin"]
        admin = requests.Session()
        admin.headers["X-Admin-Token"] = sf["admin_token"]
        tls = {"verify": sf["ca_bundle"], "timeout": 30}

        def seed(obj: str, records: list[dict]) -> list[str]:
            answer = admin.post(
                f"{sf['admin_url']}/seed", json={"object": obj, "records": records}, **tls
            )
            answer.raise_for_status()
            return [r["id"] for r in answer.json()]

        [campaign] = seed(
            "Campaign", [{"Name": "Bench event", TICKET_CODE_FIELD: hp["ticket_integration_code"]}]
        )
        leads = seed(
            "Lead",
            [
                {"LastName": f"Guest {i}", "Company": "Bench", "Email": f"guest{i}@example.com"}
                for i in range(members)
            ],
        )
        admin.post(f"{sf['admin_url']}/counters/reset", json={}, **tls).raise_for_status()
        requests.delete(f"{hp['admin_url']}/counters", timeout=30)
        created: dict[str, float] = {}
        created_at: dict[str, float] = {}  # the same moments on the wall clock, for the stages
        watcher = Watcher(
            admin,
            f"{sf['admin_url']}/records/CampaignMember",
            tls,
            lambda row: row["Id"] if row.get(LINK_FIELD) else None,
            proc,
        )
        written = watcher.seen
        started = time.monotonic()
        done = 0
        while done < members:
            # Every member due by now in one call: a slow call must not lower the rate.
            due = min(members, int((time.monotonic() - started) * members / seconds) + 1)
            batch = [{"CampaignId": campaign, "LeadId": lead} for lead in leads[done:due]]
            ids = seed("CampaignMember", batch)
            now = time.monotonic()
            created.update(dict.fromkeys(ids, now))
            created_at.update(dict.fromkeys(ids, time.time()))
            done = due
            if (delay := started + done * seconds / members - time.monotonic()) > 0:
                time.sleep(delay)
        creation = time.monotonic() - started
        deadline = time.monotonic() + 60
        while len(written) < members and time.monotonic() < deadline:
            time.sleep(0.1)
        watcher.stop()
        latencies = [written[m] - created[m] for m in created if m in written]
        sf_calls = admin.get(f"{sf['admin_url']}/counters", **tls).json()["api_usage"]
        hopin_calls = requests.get(f"{hp['admin_url']}/counters", timeout=30).json()["total"]
        return {
            "latency": profile,
            "members": members,
            "creation_s": creation,
            "written": len(latencies),
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "p99": percentile(latencies, 99),
            "sf_calls": sf_calls,
            "hopin_calls": hopin_calls,
            "peak_rss_mb": watcher.peak_rss / 2**20,
            "stages": stages(workdir / STATE, "bench", created_at),
        }
    finally:
        if runner is not None:
            runner.terminate()
            runner.wait(30)
        pair.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--members", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2, help="the engine's worker threads")
    parser.add_argument(
        "--hopin-parallel",
        type=int,
        default=None,
        help="the Hopin max_parallel option (default: the plugin's)",
    )
    _latency.add_argument(parser)
    args = parser.parse_args()
    results = [
        run(args.members, args.seconds, p, args.hopin_parallel, args.workers)
        for p in _latency.chosen(args)
    ]
    parallel = args.hopin_parallel or "default"
    print(
        f"{args.members} CampaignMembers over {args.seconds:.0f} s -> magic links written back "
        f"({args.workers} workers, Hopin max_parallel {parallel})"
    )
    print(
        f"{'latency':<10} {'created s':>9} {'written':>8} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'p99 ms':>7} {'SF calls':>9} {'Hopin calls':>12} {'per invite':>11} {'peak RSS MB':>12}"
    )
    for r in results:
        print(
            f"{r['latency']:<10} {r['creation_s']:>9.1f} {r['written']:>8} "
            f"{r['p50'] * 1000:>7.0f} {r['p95'] * 1000:>7.0f} {r['p99'] * 1000:>7.0f} "
            f"{r['sf_calls']:>9} {r['hopin_calls']:>12} "
            f"{r['hopin_calls'] / max(r['members'], 1):>11.2f} {r['peak_rss_mb']:>12.0f}"
        )
    print("stages from the sync log, p50 / p95 ms (created: the CampaignMember's create answered;")
    print("mark: the Outbound Message's; invited: the magic link created; marked: the write-back's")
    print("mark; written: the CampaignMember updated)")
    print(f"{'latency':<10} " + " ".join(f"{name:>17}" for name, _, _ in STAGES))
    for r in results:
        cells = (f"{p50 * 1000:.0f} / {p95 * 1000:.0f}" for p50, p95 in r["stages"].values())
        print(f"{r['latency']:<10} " + " ".join(f"{cell:>17}" for cell in cells))


if __name__ == "__main__":
    main()
