"""Backfill benchmark: export every Hopin registration to Salesforce Leads.

Both sandboxes run in this process (the Hopin one seeded with the registrations); the engine
runs as `eventsync backfill export_registrations` in a child process, whose resident memory is
sampled every 50 ms. Runs several sizes in one go so memory can be compared across sizes.

Printed per latency profile (none, then the sandboxes' realistic one) and size: records per
second (wall time of the command), Salesforce and Hopin API calls per 1,000 records (from the
sandboxes' counters), peak RSS of the engine process, and the engine process's CPU seconds per
1,000 records (user + system, as last sampled): on a shared machine the wall time follows the
load, the CPU cost far less.

    .venv/bin/python bench/backfill.py [--sizes 10000,100000] [--match external-id|email]
        [--latency both|none|realistic] [--workers 6]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import _latency
import psutil
import requests
from _flows import EMAIL, EXTERNAL_ID
from eventsync.plugins import Hooks, make_plugin_manager
from eventsync.sandbox_env import sandbox_config_files, start_sandboxes, write_private

EVENTSYNC = str(Path(sys.executable).with_name("eventsync"))
FLOWS = {"external-id": EXTERNAL_ID, "email": EMAIL}


def run_size(size: int, match: str, profile: str, workers: int) -> dict:
    hooks = Hooks(make_plugin_manager(environ={}))
    pair = start_sandboxes(
        hooks,
        crm="salesforce",
        platform="hopin",
        org="bench",
        endpoint=None,
        triggers=False,
        registrations=size,
        options={"hopin": {"max_page_size": 100}, "salesforce": {"daily_api_limit": 10_000_000}},
        latency=_latency.option(profile),
    )
    workdir = Path(tempfile.mkdtemp(prefix="eventsync-backfill-"))
    try:
        info = pair.info()
        toml_text, secrets = sandbox_config_files(
            info,
            hooks=hooks,
            secrets_file="secrets.env",
            flows={"export_registrations": FLOWS[match]},
            # Batches of 1,000: the most one Salesforce push packs (five Collections a Composite).
            engine={"workers": workers, "batch_linger": 0.0, "batch_size": 1000},
        )
        (workdir / "eventsync.toml").write_text(toml_text)
        write_private(workdir / "secrets.env", secrets)  # it holds every sandbox credential
        sf, hp = info["salesforce"], info["hopin"]
        tls = {
            "verify": sf["ca_bundle"],
            "timeout": 30,
            "headers": {"X-Admin-Token": sf["admin_token"]},
        }
        requests.post(f"{sf['admin_url']}/counters/reset", json={}, **tls).raise_for_status()
        requests.delete(f"{hp['admin_url']}/counters", timeout=30)

        started = time.monotonic()
        proc = subprocess.Popen(
            [EVENTSYNC, "backfill", "export_registrations", "--json"],
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        peak = 0
        cpu = 0.0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak, cpu
            process = psutil.Process(proc.pid)
            while not done.is_set():
                try:
                    with process.oneshot():
                        peak = max(peak, process.memory_info().rss)
                        times = process.cpu_times()
                    cpu = times.user + times.system
                except psutil.NoSuchProcess:
                    return
                done.wait(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        out, err = proc.communicate(timeout=3600)
        elapsed = time.monotonic() - started
        done.set()
        sampler.join()
        if proc.returncode != 0:
            raise RuntimeError(f"backfill failed ({proc.returncode}): {out}\n{err[-2000:]}")
        sf_calls = requests.get(f"{sf['admin_url']}/counters", **tls).json()["api_usage"]
        hopin_calls = requests.get(f"{hp['admin_url']}/counters", timeout=30).json()["total"]
        leads = len(requests.get(f"{sf['admin_url']}/records/Lead", **tls).json())
        return {
            "latency": profile,
            "records": size,
            "leads": leads,
            "seconds": elapsed,
            "per_second": size / elapsed,
            "sf_per_1000": sf_calls * 1000 / size,
            "hopin_per_1000": hopin_calls * 1000 / size,
            "peak_rss_mb": peak / 2**20,
            "cpu_per_1000": cpu * 1000 / size,
            "result": json.loads(out),
        }
    finally:
        pair.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--match", choices=sorted(FLOWS), default="external-id")
    parser.add_argument(
        "--workers", type=int, default=6, help="engine worker threads: parallel batches (6)"
    )
    parser.add_argument("--json", action="store_true")
    _latency.add_argument(parser)
    args = parser.parse_args()
    runs = {
        profile: [
            run_size(int(n), args.match, profile, args.workers) for n in args.sizes.split(",")
        ]
        for profile in _latency.chosen(args)
    }
    if args.json:
        print(json.dumps([r for results in runs.values() for r in results], indent=2))
        return
    print(
        f"backfill export_registrations, match on {args.match}, SQLite state store, "
        f"{args.workers} workers, batches of 1,000"
    )
    print(
        f"{'latency':<10} {'records':>8} {'landed':>8} {'records/s':>10} {'SF calls/1k':>12} "
        f"{'Hopin calls/1k':>15} {'peak RSS MB':>12} {'CPU s/1k':>9}"
    )
    for profile, results in runs.items():
        for r in results:
            print(
                f"{profile:<10} {r['records']:>8} {r['leads']:>8} {r['per_second']:>10.0f} "
                f"{r['sf_per_1000']:>12.1f} {r['hopin_per_1000']:>15.1f} {r['peak_rss_mb']:>12.0f} "
                f"{r['cpu_per_1000']:>9.2f}"
            )
        if len(results) > 1:
            first, last = results[0], results[-1]
            print(
                f"{profile}: peak RSS ratio {last['records']}/{first['records']} records: "
                f"{last['peak_rss_mb'] / first['peak_rss_mb']:.2f} (1.00 = flat)"
            )


if __name__ == "__main__":
    main()
