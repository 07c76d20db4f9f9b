"""Latency profiles for sandboxes: how long a remote system takes to answer, per endpoint.

A sandbox answers in microseconds; a real API does not. A *profile* gives each endpoint of a
sandbox a delay distribution, so tests and benchmarks can see what a real network costs. Core
holds the mechanism, each sandbox its own named profiles (``realistic`` at least) and the names
of its endpoints; a sandbox's ``start_sandbox`` accepts the option ``latency`` (a profile name,
``"none"``, or a mapping, see :func:`resolve`) and ``latency_seed``.

A delay is log-normal around its ``median`` with a tail reaching ``p99``, plus ``per_item``
seconds per record the request carries (a 200-record write takes longer than a 1-record one).
Samples come from one seeded ``random.Random``, so a run with the same seed draws the same
sequence of delays. The standard library's ``lognormvariate`` is all this needs.
"""

from __future__ import annotations

import fnmatch
import math
import random
import threading
import time
from collections.abc import Mapping
from typing import Any

import attrs
import cattrs
from cattrs.v import format_exception

__all__ = ["Delay", "Latency", "LatencyProfile", "resolve"]

#: z-score of the 99th percentile of a standard normal distribution.
_Z99 = 2.3263


def _positive(_instance: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be at least 0, not {value}")


@attrs.frozen
class Delay:
    """A delay distribution: log-normal with this ``median`` and ``p99`` (seconds), plus
    ``per_item`` seconds per record in the request."""

    median: float = attrs.field(validator=_positive)
    p99: float | None = None
    per_item: float = attrs.field(default=0.0, validator=_positive)

    def __attrs_post_init__(self) -> None:
        if self.p99 is not None and self.p99 < self.median:
            raise ValueError(f"p99 ({self.p99}) must be at least the median ({self.median})")

    def sample(self, rng: random.Random, items: int = 1) -> float:
        """One delay in seconds for a request carrying ``items`` records."""
        base = self.median
        if self.median > 0 and self.p99 is not None and self.p99 > self.median:
            sigma = math.log(self.p99 / self.median) / _Z99
            base = rng.lognormvariate(math.log(self.median), sigma)
        return base + self.per_item * max(items - 1, 0)


@attrs.frozen
class LatencyProfile:
    """Delays by endpoint: ``endpoints`` maps a pattern (``fnmatch``, matched against the
    sandbox's endpoint key, e.g. ``collections`` or ``GET /v1/registrations/*``) to a Delay;
    the first match wins, else ``default``."""

    name: str
    default: Delay
    endpoints: Mapping[str, Delay] = attrs.field(factory=dict)

    def delay_for(self, endpoint: str) -> Delay:
        """The distribution of ``endpoint``."""
        for pattern, delay in self.endpoints.items():
            if fnmatch.fnmatchcase(endpoint, pattern):
                return delay
        return self.default

    def scaled(self, factor: float) -> LatencyProfile:
        """The same profile with every delay multiplied by ``factor`` (tests use small ones)."""

        def scale(d: Delay) -> Delay:
            p99 = None if d.p99 is None else d.p99 * factor
            return Delay(d.median * factor, p99, d.per_item * factor)

        return LatencyProfile(
            self.name,
            scale(self.default),
            {k: scale(v) for k, v in self.endpoints.items()},
        )


class Latency:
    """A profile in use: draws seeded delays and sleeps them; thread-safe."""

    def __init__(self, profile: LatencyProfile, seed: int | None = 0) -> None:
        self.profile = profile
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def sample(self, endpoint: str, items: int = 1) -> float:
        """The next delay for ``endpoint`` (seconds), without sleeping."""
        delay = self.profile.delay_for(endpoint)
        with self._lock:
            return delay.sample(self._rng, items)

    def wait(self, endpoint: str, items: int = 1) -> float:
        """Sleep the next delay for ``endpoint``; returns it. The request thread sleeps, as a
        remote server's would; other requests are served meanwhile."""
        seconds = self.sample(endpoint, items)
        if seconds > 0:
            time.sleep(seconds)
        return seconds


@attrs.frozen
class _Spec:
    """The mapping form of the ``latency`` option."""

    profile: str = "none"
    scale: float = 1.0
    endpoints: Mapping[str, Delay] = attrs.field(factory=dict)
    default: Delay | None = None


_converter = cattrs.Converter(forbid_extra_keys=True)


def resolve(
    option: str | Mapping[str, Any] | None,
    profiles: Mapping[str, LatencyProfile],
    seed: int | None = 0,
) -> Latency | None:
    """The Latency a sandbox's ``latency`` option asks for; None for no latency.

    :param option: ``None`` or ``"none"`` (no latency), a profile name of ``profiles``, or a
        mapping ``{profile?, scale?, default?: {median, p99?, per_item?}, endpoints?: {pattern:
        {...}}}`` whose endpoints (tried first) and default override the named profile's.
    :param profiles: the sandbox's named profiles.
    :param seed: seed of the delays (the sandbox's ``latency_seed`` option).
    :raises ValueError: an unknown profile name or a malformed mapping, naming what is allowed.
    """
    if option is None:
        return None
    spec = _Spec(profile=option) if isinstance(option, str) else _structure(option)
    names = ["none", *sorted(profiles)]
    if spec.profile not in names:
        raise ValueError(f"unknown latency profile {spec.profile!r}; use one of {', '.join(names)}")
    base = profiles.get(spec.profile) or LatencyProfile("none", Delay(0.0))
    if spec.profile == "none" and not spec.endpoints and spec.default is None:
        return None
    if spec.scale < 0:
        raise ValueError(f"latency scale must be at least 0, not {spec.scale}")
    profile = LatencyProfile(
        base.name if not (spec.endpoints or spec.default) else f"{base.name}+custom",
        spec.default or base.default,
        # The option's endpoints first and over the profile's own of the same pattern.
        {**spec.endpoints, **{k: v for k, v in base.endpoints.items() if k not in spec.endpoints}},
    )
    return Latency(profile.scaled(spec.scale), seed)


def _why(exc: BaseException, type_: Any) -> str:
    """A leaf error's text: a validator's own message, else cattrs' wording."""
    if isinstance(exc, ValueError) and type(exc) is ValueError:
        return str(exc)
    return format_exception(exc, type_)


def _structure(option: Mapping[str, Any]) -> _Spec:
    try:
        return _converter.structure(dict(option), _Spec)
    except (cattrs.BaseValidationError, ValueError, TypeError) as exc:
        detail = (
            "; ".join(cattrs.transform_error(exc, path="latency", format_exception=_why))
            if isinstance(exc, cattrs.BaseValidationError)
            else str(exc)
        )
        raise ValueError(
            f"bad latency option: {detail} (expected a profile name or "
            "{profile, scale, default, endpoints})"
        ) from None
