"""Workspace-wide pytest set-up: the Hypothesis profile every property-based test runs with.

``ci`` (the default) is reproducible: examples are derandomized (the same ones on every run and
machine) and no example database is read or written. ``HYPOTHESIS_PROFILE=explore`` draws fresh
random examples, to hunt for new failures by hand; each test still bounds its example count.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("explore", parent=settings.get_profile("ci"), derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
