"""The SQLite state store decodes JSON columns with shared (interned) keys.

A leased batch holds every row's payload decoded; a backfill's snapshots name the same thirty-odd
fields in each, and each row had its own copies of those names.
"""

from __future__ import annotations

from pathlib import Path

from eventsync.store import StateStore


def test_leased_payloads_share_their_keys_and_keep_their_values(tmp_path: Path) -> None:
    store = StateStore.open(path=tmp_path / "state.sqlite3")
    try:
        payloads = {
            f"r{n}": {"record": {"id": f"r{n}", "fields": {"email": f"p{n}@example.com"}}}
            for n in range(3)
        }
        store.mark_many("acme", "export", payloads)
        items = store.lease("w", limit=10)
        assert {i.entity: i.payload for i in items} == payloads
        fields = [i.payload["record"]["fields"] for i in items]
        first = next(iter(fields[0]))
        assert all(next(iter(f)) is first for f in fields[1:])
        assert len({id(next(iter(i.payload))) for i in items}) == 1
    finally:
        store.close()
