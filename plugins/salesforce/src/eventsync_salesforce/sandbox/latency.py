"""The Salesforce sandbox's latency profiles (option ``latency``, seeded by ``latency_seed``).

``realistic``: about 150 ms a REST call and 800 ms a 200-record sObject Collections write
(medians, with a log-normal tail to about four times the median at p99); a Composite request
costs the call plus its subrequests' records. Endpoint keys are the categories of
:func:`eventsync_salesforce.sandbox.app.categorise`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eventsync.latency import Delay, Latency, LatencyProfile, resolve

#: Seconds per extra record of a write: 150 ms + 199 x 3.25 ms is about 800 ms for 200 records.
PER_RECORD = 0.00325

PROFILES = {
    "realistic": LatencyProfile(
        "realistic",
        default=Delay(0.15, 0.6),
        endpoints={
            "token": Delay(0.2, 0.8),
            "collections": Delay(0.15, 0.6, per_item=PER_RECORD),
            "composite": Delay(0.15, 0.6, per_item=PER_RECORD),
            "bulk": Delay(0.15, 0.6, per_item=0.0002),
        },
    )
}


def from_options(options: Mapping[str, Any]) -> Latency | None:
    """The latency the sandbox options ask for (None: answer at once)."""
    seed = options.get("latency_seed", 0)
    return resolve(options.get("latency"), PROFILES, None if seed is None else int(seed))
