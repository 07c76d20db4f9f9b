"""Where an invitation's time goes, from the engine's sync log (shared by the import benchmarks).

For each CampaignMember: its first import mark (the Outbound Message arrived), the import's
write (the magic link exists in Hopin), the write-back's mark and its write (the link is on
the CampaignMember). The sync log's times are the store's clock, so the stages are exact
differences whatever the watcher's polling.
"""

from __future__ import annotations

from pathlib import Path

from eventsync.store import StateStore
from realtime import percentile

IMPORT, WRITE_BACK = "import_registrations", "magic_links"
STAGES = (
    ("mark->invited", (IMPORT, "marked"), (IMPORT, "wrote")),
    ("invited->marked", (IMPORT, "wrote"), (WRITE_BACK, "marked")),
    ("marked->written", (WRITE_BACK, "marked"), (WRITE_BACK, "wrote")),
)


def stages(state: Path, org: str) -> dict[str, tuple[float, float]]:
    """(p50, p95) seconds of each stage, over the members the import wrote for."""
    store = StateStore.open(path=state)
    try:
        entries = store.sync_log(org, limit=1_000_000)
    finally:
        store.close()
    first: dict[tuple[str, str, str], float] = {}
    for entry in sorted(entries, key=lambda e: e.id):
        first.setdefault((entry.flow, entry.outcome, entry.entity), entry.at.timestamp())
    members = {e for (flow, outcome, e) in first if (flow, outcome) == (IMPORT, "wrote")}
    out: dict[str, tuple[float, float]] = {}
    for name, start, end in STAGES:
        spans = [
            first[(*end, m)] - first[(*start, m)]
            for m in members
            if (*start, m) in first and (*end, m) in first
        ]
        out[name] = (percentile(spans, 50), percentile(spans, 95)) if spans else (0.0, 0.0)
    return out
