"""The Hopin sandbox's latency profiles (option ``latency``, seeded by ``latency_seed``).

``realistic``: about 120 ms a call (median, with a log-normal tail to about four times the
median at p99). Endpoint keys are ``"METHOD /v1/route/<param>"``, as the call counters name them.
"""

from __future__ import annotations

from eventsync.latency import Delay, Latency, LatencyProfile, resolve

from .config import SandboxConfig

PROFILES = {
    "realistic": LatencyProfile(
        "realistic",
        default=Delay(0.12, 0.5),
        endpoints={"POST /oauth/*": Delay(0.2, 0.8)},
    )
}


def from_config(config: SandboxConfig) -> Latency | None:
    """The latency the sandbox options ask for (None: answer at once)."""
    return resolve(config.latency, PROFILES, config.latency_seed)
