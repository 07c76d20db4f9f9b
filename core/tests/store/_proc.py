"""Helper run as a separate OS process by the multi-process and SIGTERM tests.

Opens the store given on the command line, waits for ``--go`` (a file) if given, then runs an
``Executor`` whose job appends ``entity`` lines to ``--out`` and sleeps ``--sleep`` per batch.
With ``--until-empty`` it stops by itself once the outbox is drained; otherwise it runs until
SIGINT/SIGTERM. Exit code 0 means the executor stopped cleanly.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url")
    parser.add_argument("--path")
    parser.add_argument("--schema")
    parser.add_argument("--out", required=True)
    parser.add_argument("--go")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--batch", type=int, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--until-empty", action="store_true")
    args = parser.parse_args()

    from eventsync.executor import Executor, Outcome
    from eventsync.store import StateStore

    store = StateStore.open(args.url, path=args.path, schema=args.schema)
    out = open(args.out, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - closed at exit
    lock = threading.Lock()

    def job(items):
        with lock:
            for item in items:
                out.write(f"{item.entity}\n")
            out.flush()
            os.fsync(out.fileno())
        time.sleep(args.sleep)
        return [Outcome.done() for _ in items]

    executor = Executor(
        store,
        job,
        workers=args.workers,
        batch_size=args.batch,
        poll_interval=0.05,
        lease_seconds=60,
    )
    print("READY", flush=True)
    if args.go:
        while not Path(args.go).exists():
            time.sleep(0.01)
    if args.until_empty:

        def watch() -> None:
            while True:
                time.sleep(0.1)
                if not store.pending(limit=1):
                    executor.request_stop()
                    return

        threading.Thread(target=watch, daemon=True).start()
    clean = executor.run(stop_timeout=20)
    out.close()
    store.close()
    print(f"STOPPED clean={clean} done={executor.stats.done}", flush=True)
    return 0 if clean else 3


if __name__ == "__main__":
    sys.exit(main())
