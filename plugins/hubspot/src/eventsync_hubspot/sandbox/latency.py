"""The HubSpot sandbox's latency profiles (option ``latency``, seeded by ``latency_seed``).

``realistic``: about 150 ms a CRM v3 call (median, with a log-normal tail to about four times
the median at p99); a batch call (create, update, upsert, read) about 300 ms plus 2 ms a record
beyond the first, a search about 250 ms, a token request about 200 ms. HubSpot publishes rate
limits, not latencies: these are round figures of the same order as the other sandboxes'
realistic profiles, for benchmarks that must see what a remote call costs. Endpoint keys are
``"METHOD name"`` where name is the route (``batch/create``, ``search``, ``object``,
``properties``, ``token``...), as the call counters name them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eventsync.latency import Delay, Latency, LatencyProfile, resolve

PROFILES = {
    "realistic": LatencyProfile(
        "realistic",
        default=Delay(0.15, 0.6),
        endpoints={
            "POST batch/*": Delay(0.3, 1.2, per_item=0.002),
            "POST search": Delay(0.25, 1.0),
            "POST token": Delay(0.2, 0.8),
        },
    )
}


def from_options(options: Mapping[str, Any]) -> Latency | None:
    """The latency the sandbox options ask for (None: answer at once).

    :raises ValueError: an unknown profile name or a malformed mapping.
    """
    seed = options.get("latency_seed", 0)
    return resolve(options.get("latency"), PROFILES, None if seed is None else int(seed))
