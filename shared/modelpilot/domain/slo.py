"""Error budgets and multiwindow, multi-burn-rate evaluation (pure maths, no I/O).

Definitions (the SRE workbook's, chapter "Alerting on SLOs"):

* error ratio of a window = bad / total = 1 - good / total;
* burn rate = error ratio / (1 - objective): 1 spends the budget exactly over the
  SLO window, 14.4 spends 2 % of a 30-day budget in one hour;
* budget remaining = 1 - bad / (total * (1 - objective)) over the SLO window: 1.0
  is untouched, 0 is spent, negative is overspent. It never exceeds 1.

Defined behaviour at the edges (each has a test):

* **missing data** (the source had no data point in the window, ``points == 0``):
  the burn rate is ``None`` ("unknown"), a rule whose long or short window is
  unknown does not fire, and the budget is reported unknown (``None``);
* **no traffic** (data points exist but ``total == 0``): the error ratio is 0,
  the burn rate 0 and the budget untouched; no traffic never pages;
* **counter resets**: :func:`counter_increase` counts a drop as a restart from
  zero (Prometheus ``increase()`` semantics, without extrapolation);
* **inconsistent counts** (good > total, negative values from clock skew between
  two counters): good is clamped to ``[0, total]``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "RuleResult",
    "WindowCounts",
    "budget_remaining",
    "burn_rate",
    "counter_increase",
    "error_ratio",
    "evaluate_rules",
    "scaled_burn_rate",
]


@dataclass(frozen=True)
class WindowCounts:
    """Good and total events of one window; ``points`` = data points behind them (0 = no data)."""

    good: float
    total: float
    points: int = 1

    @property
    def has_data(self) -> bool:
        """True when the source returned at least one data point for the window."""
        return self.points > 0


@dataclass(frozen=True)
class RuleResult:
    """One burn-rate rule evaluated: both windows' burn rates and whether it fires."""

    severity: str
    long_window: int
    short_window: int
    threshold: float
    burn_long: float | None
    burn_short: float | None

    @property
    def firing(self) -> bool:
        """True when both windows burn faster than the threshold (unknown never fires)."""
        return (
            self.burn_long is not None
            and self.burn_short is not None
            and self.burn_long > self.threshold
            and self.burn_short > self.threshold
        )


def error_ratio(counts: WindowCounts) -> float | None:
    """Return bad / total, 0.0 without traffic, or None without data."""
    if not counts.has_data:
        return None
    total = max(counts.total, 0.0)
    if total == 0:
        return 0.0
    good = min(max(counts.good, 0.0), total)
    return (total - good) / total


def burn_rate(counts: WindowCounts, objective: float) -> float | None:
    """Return the window's burn rate for ``objective`` (0 < objective < 1), or None without data."""
    _check_objective(objective)
    ratio = error_ratio(counts)
    return None if ratio is None else ratio / (1.0 - objective)


def budget_remaining(counts: WindowCounts, objective: float) -> float | None:
    """Return the fraction of the error budget left over the SLO window (≤ 1; negative = overspent)."""
    _check_objective(objective)
    ratio = error_ratio(counts)
    return None if ratio is None else 1.0 - ratio / (1.0 - objective)


def scaled_burn_rate(budget_fraction: float, slo_window: int, alert_window: int) -> float:
    """Return the burn rate that spends ``budget_fraction`` of the budget in ``alert_window``.

    The workbook's 14.4 is ``scaled_burn_rate(0.02, 30 days, 1 hour)``.
    """
    if alert_window <= 0 or slo_window <= 0:
        raise ValueError("windows must be positive")
    return budget_fraction * slo_window / alert_window


def evaluate_rules(
    rules: Iterable[tuple[str, float, int, int]],
    windows: dict[int, WindowCounts],
    objective: float,
) -> list[RuleResult]:
    """Evaluate burn-rate rules ``(severity, threshold, long_seconds, short_seconds)``.

    ``windows`` maps a window length in seconds to its counts; a window missing
    from the mapping counts as missing data.
    """
    results = []
    for severity, threshold, long_s, short_s in rules:
        missing = WindowCounts(0.0, 0.0, 0)
        results.append(
            RuleResult(
                severity,
                long_s,
                short_s,
                threshold,
                burn_rate(windows.get(long_s, missing), objective),
                burn_rate(windows.get(short_s, missing), objective),
            )
        )
    return results


def counter_increase(samples: Sequence[tuple[float, float]], baseline: float | None = None) -> float:
    """Return how much a monotonic counter grew over ``samples`` (time, value), oldest first.

    A value lower than its predecessor is a reset: the counter restarted from zero,
    so the increase across it is the new value. ``baseline`` is the last value seen
    before the window (None: the first sample is the baseline, as Prometheus does
    for a series born inside the window).
    """
    total = 0.0
    previous = baseline
    for _t, value in samples:
        if previous is not None:
            total += value - previous if value >= previous else value
        previous = value
    return total


def _check_objective(objective: float) -> None:
    if not 0.0 < objective < 1.0:
        raise ValueError(f"objective must be between 0 and 1 (exclusive), got {objective}")
