"""The latency-profile mechanism sandboxes share (eventsync.latency)."""

from __future__ import annotations

import random
import statistics

import pytest
from eventsync.latency import Delay, Latency, LatencyProfile, resolve

PROFILES = {
    "realistic": LatencyProfile(
        "realistic",
        default=Delay(0.1, 0.4),
        endpoints={"collections": Delay(0.1, 0.4, per_item=0.01), "GET /v1/*": Delay(0.05)},
    )
}


def test_samples_have_the_median_and_a_tail_up_to_the_p99():
    rng = random.Random(7)
    samples = sorted(Delay(0.15, 0.6).sample(rng) for _ in range(20_000))
    assert statistics.median(samples) == pytest.approx(0.15, rel=0.05)
    assert samples[int(0.99 * len(samples))] == pytest.approx(0.6, rel=0.1)
    assert min(samples) > 0


def test_a_delay_without_a_tail_is_constant_and_charges_per_record():
    delay = Delay(0.15, per_item=0.00325)
    rng = random.Random(0)
    assert delay.sample(rng) == 0.15
    assert delay.sample(rng, items=200) == pytest.approx(0.15 + 199 * 0.00325)


def test_the_same_seed_draws_the_same_delays():
    first = resolve("realistic", PROFILES, seed=3)
    second = resolve("realistic", PROFILES, seed=3)
    other = resolve("realistic", PROFILES, seed=4)
    assert first and second and other
    draws = [first.sample("query") for _ in range(50)]
    assert draws == [second.sample("query") for _ in range(50)]
    assert draws != [other.sample("query") for _ in range(50)]


def test_endpoints_match_by_pattern_first_match_wins_else_the_default():
    latency = resolve("realistic", PROFILES)
    assert latency is not None
    assert latency.profile.delay_for("GET /v1/registrations/<id>") == Delay(0.05)
    assert latency.profile.delay_for("collections").per_item == 0.01
    assert latency.profile.delay_for("POST /v1/tickets") == Delay(0.1, 0.4)


def test_none_means_no_latency_and_the_mapping_form_overrides_and_scales():
    assert resolve(None, PROFILES) is None
    assert resolve("none", PROFILES) is None
    latency = resolve(
        {"profile": "realistic", "scale": 0.5, "endpoints": {"query": {"median": 1.0}}}, PROFILES
    )
    assert isinstance(latency, Latency)
    assert latency.profile.delay_for("query") == Delay(0.5)
    assert latency.profile.delay_for("other") == Delay(0.05, 0.2)
    # An endpoint the profile also names takes the option's delay, not the profile's.
    override = resolve(
        {"profile": "realistic", "endpoints": {"collections": {"median": 2.0}}}, PROFILES
    )
    assert override is not None and override.profile.delay_for("collections") == Delay(2.0)
    custom = resolve({"default": {"median": 0.2}}, PROFILES)
    assert custom is not None and custom.sample("anything") == 0.2


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("fast", "unknown latency profile 'fast'; use one of none, realistic"),
        ({"profile": "realistic", "speed": 2}, "bad latency option"),
        ({"default": {"median": 0.2, "p99": 0.1}}, "p99 (0.1) must be at least the median"),
        ({"default": {"median": -1}}, "median must be at least 0"),
        ({"profile": "realistic", "scale": -1}, "latency scale must be at least 0"),
    ],
)
def test_bad_options_say_what_is_wrong(option, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(option, PROFILES)
