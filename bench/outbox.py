"""Outbox throughput on SQLite and PostgreSQL, in one run.

    .venv/bin/python bench/outbox.py [--marks 2000] [--bulk 20000] [--batch 200] [--threads 4]
        [--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/test] [--sqlite-synchronous FULL]

Measures, per backend:
  mark          single marks, one durable transaction each (the webhook path)
  mark_many     bulk marks of a backfill (one multi-row upsert per 500)
  lease+complete  rows/s drained by one worker: lease a batch, complete it
  lease+complete xN  rows/s drained by N worker threads at once
and prints a table with the PostgreSQL / SQLite ratio. The SQLite store is a temporary file; the
PostgreSQL store lives in a temporary schema that is dropped afterwards. No remote system is
involved, so the sandboxes' latency profiles (which the other benchmarks run with) do not apply.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable

import sqlalchemy as sa
from eventsync.store import StateStore


def _rate(n: int, fn: Callable[[], None]) -> float:
    started = time.perf_counter()
    fn()
    return n / (time.perf_counter() - started)


def bench(store: StateStore, args: argparse.Namespace) -> dict[str, float]:
    results: dict[str, float] = {}

    def marks() -> None:
        for n in range(args.marks):
            store.mark("bench", "single", f"m{n}", payload={"n": n})

    results["mark"] = _rate(args.marks, marks)
    results["mark_many"] = _rate(
        args.bulk, lambda: store.mark_many("bench", "bulk", [f"b{n}" for n in range(args.bulk)])
    )

    def drain(worker: str) -> int:
        done = 0
        while batch := store.lease(worker, limit=args.batch, flow="bulk"):
            done += len(store.complete(batch).completed)
        return done

    half = args.bulk // 2

    # drain the first half with one worker, then the rest with N threads
    def one() -> None:
        done = 0
        while done < half:
            batch = store.lease("w0", limit=min(args.batch, half - done), flow="bulk")
            done += len(store.complete(batch).completed)

    results["lease+complete"] = _rate(half, one)

    def many() -> None:
        threads = [threading.Thread(target=drain, args=(f"w{n}",)) for n in range(args.threads)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    results[f"lease+complete x{args.threads}"] = _rate(args.bulk - half, many)
    assert not store.pending(flow="bulk", limit=1), "bulk rows left over"
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--marks", type=int, default=2000)
    parser.add_argument("--bulk", type=int, default=20000)
    parser.add_argument("--batch", type=int, default=200)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--sqlite-synchronous", default="FULL")
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "EVENTSYNC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()

    table: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        store = StateStore.open(
            path=os.path.join(tmp, "bench.sqlite3"), sqlite_synchronous=args.sqlite_synchronous
        )
        try:
            table["sqlite"] = bench(store, args)
        finally:
            store.close()

    schema = f"es_bench_{uuid.uuid4().hex[:8]}"
    store = StateStore.open(args.postgres_url, schema=schema)
    try:
        table["postgresql"] = bench(store, args)
    finally:
        store.close()
        engine = sa.create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        engine.dispose()

    print(
        f"outbox throughput (rows/s), sqlite synchronous={args.sqlite_synchronous}, "
        f"batch={args.batch}, cpus={os.cpu_count()}"
    )
    print(f"{'operation':<22}{'sqlite':>12}{'postgresql':>14}{'pg/sqlite':>12}")
    for op in table["sqlite"]:
        lite, pg = table["sqlite"][op], table["postgresql"][op]
        print(f"{op:<22}{lite:>12,.0f}{pg:>14,.0f}{pg / lite:>11.2f}x")


if __name__ == "__main__":
    main()
