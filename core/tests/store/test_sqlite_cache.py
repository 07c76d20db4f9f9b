"""The SQLite state store caps each connection's page cache (``SQLITE_CACHE_KIB``).

SQLite's default cache (2 MiB a connection) fills as the database grows, on every pooled
connection: a long backfill's memory then grew with the number of records.
"""

from __future__ import annotations

import threading
from pathlib import Path

from eventsync.store import StateStore
from eventsync.store.engine import SQLITE_CACHE_KIB


def _cache_size(store: StateStore) -> int:
    with store.engine.connect() as conn:
        return int(conn.exec_driver_sql("PRAGMA cache_size").scalar_one())


def test_every_pooled_connection_has_the_capped_cache(tmp_path: Path) -> None:
    store = StateStore.open(path=tmp_path / "state.sqlite3")
    try:
        # Negative: KiB, not pages (SQLite's documented convention).
        assert _cache_size(store) == -SQLITE_CACHE_KIB
        # Connections opened by other threads (the executor's workers) are capped too.
        seen: list[int] = []
        workers = [
            threading.Thread(target=lambda: seen.append(_cache_size(store))) for _ in range(4)
        ]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert seen == [-SQLITE_CACHE_KIB] * 4
    finally:
        store.close()


def test_the_cap_is_below_sqlites_default() -> None:
    # SQLite's default is -2000 (KiB): the cap must be smaller to bound anything.
    assert 0 < SQLITE_CACHE_KIB < 2000
