"""The API budget guard: each organisation's share of every remote system's daily allowance.

System plugins report the usage they last saw (``api_usage``). Against it, per organisation
and system (``[engine]`` shares of the allowance):

* ``budget_warn_share`` (default 0.8): a warning, once per crossing, in the log and as a
  finding of every enabled flow of the organisation, so ``eventsync status`` shows it;
* ``backfill_budget_share`` (default 0.5): backfills pause, saying to run them again later;
* ``poll_budget_share`` (default 0.9): pollers skip their runs until the usage falls (the
  allowance is a rolling 24 hours), so they never take what real time needs;
* real-time work (notifications) is never held back by eventsync: it keeps priority, and only
  the remote system's own limit stops it.

``Engine.budgets()`` returns the figures (``/metrics`` and embedding hosts read them).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Literal

import attrs

from .models import ApiUsage

if TYPE_CHECKING:
    from .config import EngineConfig

__all__ = ["Budget", "BudgetGuard", "Spender"]

log = logging.getLogger("eventsync.budget")

#: What spends API calls: notifications (real time), backfills, pollers.
Spender = Literal["realtime", "backfill", "poll"]


@attrs.frozen
class Budget:
    """One organisation's use of one system's daily allowance, and what may still spend it."""

    org: str
    system: str
    used: int
    limit: int
    warn_share: float
    backfill_share: float
    poll_share: float

    @property
    def share(self) -> float:
        """The share of the allowance used (0 when the allowance is unknown)."""
        return self.used / self.limit if self.limit else 0.0

    def allows(self, spender: Spender) -> bool:
        """Whether ``spender`` may still make calls (real time always may)."""
        if spender == "backfill":
            return self.share < self.backfill_share
        if spender == "poll":
            return self.share < self.poll_share
        return True

    @property
    def state(self) -> str:
        """``ok``, ``warn``, ``backfills paused`` or ``backfills and polls paused``."""
        if not self.allows("poll"):
            return "backfills and polls paused"
        if not self.allows("backfill"):
            return "backfills paused"
        return "warn" if self.share >= self.warn_share else "ok"

    def describe(self) -> str:
        """One line for people: the usage, the share and what is paused."""
        return (
            f"{self.system} API budget: {self.used}/{self.limit} calls used ({self.share:.0%}); "
            f"{self.state} (warn at {self.warn_share:.0%}, backfills pause at "
            f"{self.backfill_share:.0%}, polls at {self.poll_share:.0%}, real time never)"
        )


class BudgetGuard:
    """Turns reported usage into :class:`Budget` figures and warns once per crossing."""

    def __init__(self, engine: EngineConfig) -> None:
        self.engine = engine
        self._warned: set[tuple[str, str]] = set()
        self._lock = threading.Lock()

    def figures(self, org: str, system: str, usage: ApiUsage) -> Budget:
        """The figures for ``usage``, crossing nothing (for readers such as ``status``)."""
        return Budget(
            org,
            system,
            usage.used,
            usage.limit,
            self.engine.budget_warn_share,
            self.engine.backfill_budget_share,
            self.engine.poll_budget_share,
        )

    def observe(self, org: str, system: str, usage: ApiUsage) -> tuple[Budget, bool]:
        """The figures for ``usage``, and whether its share just crossed the warning level
        (True once per crossing, again after it fell back below); a crossing is logged."""
        budget = self.figures(org, system, usage)
        key = (org, system)
        with self._lock:
            crossed = budget.share >= budget.warn_share and key not in self._warned
            if crossed:
                self._warned.add(key)
            elif budget.share < budget.warn_share:
                self._warned.discard(key)
        if crossed:
            log.warning("org %s: %s", org, budget.describe())
        return budget, crossed
