"""Evaluate SLOs: ask the metrics sources for every window, then do the maths.

One evaluation reads, per SLO, the SLO window (error budget, across versions unless
the SLO's ``budget_scope`` is ``version``)
and every alert window (burn rates, restricted to the live version where the
source can tell versions apart). Requests are grouped per source and sent with
``counts_many`` so batching sources (CloudWatch) make few calls. A source that is
missing or fails is reported on the SLOs that need it; the others still run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from modelpilot.domain.slo import RuleResult, WindowCounts, budget_remaining, burn_rate, evaluate_rules
from modelpilot.exceptions import ModelPilotError
from modelpilot.policy.slo import format_window

if TYPE_CHECKING:
    from datetime import datetime

    from modelpilot.policy.slo import SloSpec
    from modelpilot.ports import EventCounts, SliQuery
    from modelpilot.service.messagebus import Services

__all__ = ["SloReport", "evaluate_slos"]

_SEVERITY_RANK = {"page": 0, "ticket": 1}


@dataclass
class SloReport:
    """One SLO of one model in one environment, evaluated at ``at``."""

    model: str
    environment: str
    version: int | None
    spec: SloSpec
    at: datetime
    budget_remaining: float | None = None
    burn_rates: dict[int, float | None] = field(default_factory=dict)
    rules: list[RuleResult] = field(default_factory=list)
    error: str | None = None

    @property
    def firing(self) -> RuleResult | None:
        """The most severe firing rule (page before ticket, then the highest burn rate), if any."""
        fired = [r for r in self.rules if r.firing]
        return min(fired, key=lambda r: (_SEVERITY_RANK.get(r.severity, 9), -r.threshold), default=None)

    @property
    def state(self) -> str:
        """``alert`` when a rule fires, ``unknown`` on errors, else ``ok``."""
        if self.error:
            return "unknown"
        return "alert" if self.firing else "ok"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        firing = self.firing
        return {
            "model": self.model,
            "environment": self.environment,
            "version": self.version,
            "slo": self.spec.name,
            "objective": self.spec.objective,
            "window": self.spec.window,
            "source": self.spec.sli.source,
            "budget_remaining": self.budget_remaining,
            "state": self.state,
            "error": self.error,
            "burn_rates": {format_window(w): b for w, b in sorted(self.burn_rates.items())},
            "alert": None
            if firing is None
            else {
                "severity": firing.severity,
                "long_window": format_window(firing.long_window),
                "short_window": format_window(firing.short_window),
                "threshold": firing.threshold,
                "burn_rate_long": firing.burn_long,
                "burn_rate_short": firing.burn_short,
            },
            "at": self.at.isoformat(),
        }


def evaluate_slos(
    svc: Services, now: datetime, model: str | None = None, environment: str | None = None
) -> list[SloReport]:
    """Evaluate every SLO of ``model`` (default: all models) in ``environment`` (default: all)."""
    policy = svc.policy
    if environment is not None:
        policy.check_environment(environment)
    models = [model] if model else svc.registry.list_models()
    reports: list[SloReport] = []
    for name in models:
        for spec in policy.model_policy(name).slos:
            if environment is not None and spec.environment != environment:
                continue
            reports.append(SloReport(name, spec.environment, _live_at(svc, name, spec.environment, now), spec, now))
    pending: dict[str, list[tuple[SloReport, int, SliQuery, datetime, datetime]]] = {}
    for report in reports:
        if report.version is None:
            report.error = f"no version of {report.model} in {report.environment}"
            continue
        spec = report.spec
        budget_q = spec.query(report.model, version=report.version, filter_version=spec.budget_scope == "version")
        burn_q = spec.query(report.model, version=report.version)
        todo = pending.setdefault(spec.sli.source, [])
        todo.append((report, 0, budget_q, now - timedelta(seconds=spec.window_seconds), now))
        todo.extend((report, w, burn_q, now - timedelta(seconds=w), now) for w in spec.alert_windows())
    for source_name, todo in pending.items():
        _run_source(svc, source_name, todo)
    return reports


def _live_at(svc: Services, model: str, environment: str, now: datetime) -> int | None:
    """The version live in ``environment`` at ``now``: a check of a past tick (a retry, a late delivery) judges
    the version that served then, not one a rollback moved in since (that would blame it for its predecessor).

    When the alias history starts after ``now`` (a clock behind the one that wrote it), the live version is judged.
    """
    alias = svc.registry.get_alias(model, environment)
    if alias is None or alias.updated_at <= now:
        return alias.version if alias else None
    live: int | None = None
    for change in svc.registry.alias_history(model, environment):
        if change.at > now:
            break
        live = change.to_version
    return live if live is not None else alias.version


def _run_source(svc: Services, name: str, todo: list[tuple[SloReport, int, SliQuery, datetime, datetime]]) -> None:
    source = svc.metrics_sources.get(name)
    if source is None:
        for report, *_rest in todo:
            report.error = f"no metrics source {name!r} is configured"
        return
    try:
        results: list[EventCounts] = source.counts_many([(q, s, e) for _r, _w, q, s, e in todo])
    except ModelPilotError as exc:
        if exc.retryable:
            # a source that is throttled or down says nothing about the SLO: the check fails before it writes
            # anything, so the platform retries the same tick (a stored "checked" would never alert)
            raise
        for report, *_rest in todo:
            report.error = f"{name}: {exc}"
        return
    windows: dict[int, dict[int, WindowCounts]] = {}
    for (report, window, _q, _s, _e), counts in zip(todo, results, strict=True):
        wc = WindowCounts(counts.good, counts.total, counts.points)
        if window == 0:
            report.budget_remaining = budget_remaining(wc, report.spec.objective)
        else:
            windows.setdefault(id(report), {})[window] = wc
            report.burn_rates[window] = burn_rate(wc, report.spec.objective)
    for report in {id(r): r for r, *_rest in todo}.values():
        rules = [(r.severity, r.burn_rate, r.long_seconds, r.short_seconds) for r in report.spec.rules]
        report.rules = evaluate_rules(rules, windows.get(id(report), {}), report.spec.objective)
