"""Import-direction benchmark: CampaignMembers created in Salesforce -> magic links written back.

Both sandboxes run in this process; the engine runs as `eventsync run --no-pollers` in a child
process. CampaignMembers of a Campaign carrying the Hopin ticket's integration code are created
at a steady rate through the Salesforce sandbox's admin API (as a user would: automation fires),
each announced by an Outbound Message; the benchmark watches for the magic link on each
CampaignMember every 50 ms.

Printed per latency profile (none, then the sandboxes' realistic one), measured in one run:
creation-to-link-written latency p50 / p95 / p99, how many were written within 60 s, Salesforce
API calls, Hopin API calls (per invitation), the runner's peak RSS.

    .venv/bin/python bench/magic_links.py [--members 500] [--seconds 10] [--latency both|none|realistic]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _latency
import psutil
import requests
from _watch import Watcher
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import free_port, sandbox_config_files, start_sandboxes, write_private
from eventsync.waiting import wait_until
from eventsync_salesforce.sandbox.wiring import LINK_FIELD, TICKET_CODE_FIELD
from realtime import percentile

EVENTSYNC = str(Path(sys.executable).with_name("eventsync"))


def run(members: int, seconds: float, profile: str) -> dict:
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
            engine={"batch_linger": 0.5, "workers": 2},
        )
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
        watcher = Watcher(
            admin,
            f"{sf['admin_url']}/records/CampaignMember",
            tls,
            lambda row: row["Id"] if row.get(LINK_FIELD) else None,
            proc,
        )
        written = watcher.seen
        started = time.monotonic()
        for i, lead in enumerate(leads):
            if (delay := started + i * seconds / members - time.monotonic()) > 0:
                time.sleep(delay)
            [member] = seed("CampaignMember", [{"CampaignId": campaign, "LeadId": lead}])
            created[member] = time.monotonic()
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
            "written": len(latencies),
            "p50": percentile(latencies, 50),
            "p95": percentile(latencies, 95),
            "p99": percentile(latencies, 99),
            "sf_calls": sf_calls,
            "hopin_calls": hopin_calls,
            "peak_rss_mb": watcher.peak_rss / 2**20,
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
    _latency.add_argument(parser)
    args = parser.parse_args()
    results = [run(args.members, args.seconds, p) for p in _latency.chosen(args)]
    print(f"{args.members} CampaignMembers over {args.seconds:.0f} s -> magic links written back")
    print(
        f"{'latency':<10} {'written':>8} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
        f"{'SF calls':>9} {'Hopin calls':>12} {'per invite':>11} {'peak RSS MB':>12}"
    )
    for r in results:
        print(
            f"{r['latency']:<10} {r['written']:>8} {r['p50'] * 1000:>7.0f} "
            f"{r['p95'] * 1000:>7.0f} {r['p99'] * 1000:>7.0f} {r['sf_calls']:>9} "
            f"{r['hopin_calls']:>12} {r['hopin_calls'] / max(r['members'], 1):>11.1f} "
            f"{r['peak_rss_mb']:>12.0f}"
        )


if __name__ == "__main__":
    main()
