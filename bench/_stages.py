"""Where an invitation's time goes, from the engine's sync log (shared by the import benchmarks).

For each CampaignMember: its creation (when the benchmark's create call answered), its first
import mark (the Outbound Message arrived), the import's write (the magic link exists in
Hopin), the write-back's mark and its write (the link is on the CampaignMember). The sync log's
times are the store's clock, so the stages after the mark are exact differences whatever the
watcher's polling; the first compares the benchmark's wall clock with the store's (one machine).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from pathlib import Path

from eventsync.store import StateStore
from realtime import percentile

IMPORT, WRITE_BACK = "import_registrations", "magic_links"
#: (name, start, end): a start of None is the member's creation (``created`` of ``stages``).
STAGES: tuple[tuple[str, tuple[str, str] | None, tuple[str, str]], ...] = (
    ("created->mark", None, (IMPORT, "marked")),
    ("mark->invited", (IMPORT, "marked"), (IMPORT, "wrote")),
    ("invited->marked", (IMPORT, "wrote"), (WRITE_BACK, "marked")),
    ("marked->written", (WRITE_BACK, "marked"), (WRITE_BACK, "wrote")),
)


def _seconds(at: dt.datetime) -> float:
    """A sync-log time as epoch seconds (the store keeps UTC, naive on SQLite)."""
    return (at if at.tzinfo else at.replace(tzinfo=dt.UTC)).timestamp()


def stages(state: Path, org: str, created: Mapping[str, float]) -> dict[str, tuple[float, float]]:
    """(p50, p95) seconds of each stage, over the members the import wrote for; ``created``:
    each member's creation, in epoch seconds."""
    store = StateStore.open(path=state)
    try:
        entries = store.sync_log(org, limit=1_000_000)
    finally:
        store.close()
    first: dict[tuple[str, str, str], float] = {}
    for entry in sorted(entries, key=lambda e: e.id):
        first.setdefault((entry.flow, entry.outcome, entry.entity), _seconds(entry.at))
    members = {e for (flow, outcome, e) in first if (flow, outcome) == (IMPORT, "wrote")}
    out: dict[str, tuple[float, float]] = {}
    for name, start, end in STAGES:
        starts = (
            created
            if start is None
            else {m: first[(*start, m)] for m in members if (*start, m) in first}
        )
        spans = [
            first[(*end, m)] - starts[m] for m in members if m in starts and (*end, m) in first
        ]
        out[name] = (percentile(spans, 50), percentile(spans, 95)) if spans else (0.0, 0.0)
    return out
