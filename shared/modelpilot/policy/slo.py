"""The ``slos`` and ``rollback`` blocks of the policy file.

An SLO maps one-to-one to an OpenSLO v1 ``SLO`` (see ``modelpilot.slo.openslo``)::

    slos:
      - name: availability
        environment: prod
        objective: 0.995            # OpenSLO objectives[0].target
        window: 30d                 # OpenSLO timeWindow (rolling)
        sli:
          kind: ratio               # ratio | threshold | quality
          source: prometheus        # local | prometheus | cloudwatch | azure_monitor
          bad: {query: 'http_requests_total{model="$model",code=~"5.."}'}
          total: {query: 'http_requests_total{model="$model"}'}
        alerts:                     # optional; default: the SRE workbook's table scaled to the window
          - {severity: page, burn_rate: 14.4, long_window: 1h, short_window: 5m}
    rollback:
      prod: {on_slo_page: true, on_critical_drift: true, alarms: ["churn-prod-*"], cooldown: 1h}

``$model``, ``$environment`` and ``$version`` in queries and dimension values are
replaced with the model, the environment and the live version when evaluated.
"""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator, model_validator

from modelpilot.domain.durations import format_duration, parse_duration
from modelpilot.domain.slo import scaled_burn_rate
from modelpilot.policy.base import Strict
from modelpilot.policy.sli import MetricQuery, SliSpec

if TYPE_CHECKING:
    from modelpilot.ports import SliQuery

__all__ = [
    "WORKBOOK_30D",
    "BurnRateRule",
    "MetricQuery",
    "RollbackPolicy",
    "SliSpec",
    "SloSpec",
    "default_alert_rules",
    "format_window",
]

#: (severity, budget fraction spent, long window, short window): the workbook's 30-day table
WORKBOOK_30D: list[tuple[str, float, str, str]] = [
    ("page", 0.02, "1h", "5m"),
    ("page", 0.05, "6h", "30m"),
    ("ticket", 0.10, "1d", "2h"),
    ("ticket", 0.10, "3d", "6h"),
]


def _duration(value: Any) -> str:
    try:
        seconds = parse_duration(value)
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    return format_window(seconds)


def format_window(seconds: int | float) -> str:
    """Return a window as written in policies: whole days stay days (``28d``, not ``4w``)."""
    seconds = int(seconds)
    return f"{seconds // 86400}d" if seconds and seconds % 86400 == 0 else format_duration(seconds)


class BurnRateRule(Strict):
    """Alert when the burn rate exceeds ``burn_rate`` over both windows."""

    severity: Literal["page", "ticket"]
    burn_rate: float = Field(gt=0)
    long_window: str
    short_window: str

    _d = field_validator("long_window", "short_window", mode="before")(lambda v: _duration(v))

    @property
    def long_seconds(self) -> int:
        """The long window in seconds."""
        return parse_duration(self.long_window)

    @property
    def short_seconds(self) -> int:
        """The short window in seconds."""
        return parse_duration(self.short_window)

    @model_validator(mode="after")
    def _short_is_shorter(self) -> BurnRateRule:
        if self.short_seconds >= self.long_seconds:
            raise ValueError(f"short_window {self.short_window} must be shorter than long_window {self.long_window}")
        return self


def default_alert_rules(window: str | int) -> list[BurnRateRule]:
    """Return the workbook's rules for an SLO window: the same windows and budget fractions,
    burn rates scaled (30 days gives 14.4 / 6 / 3 / 1; 28 days 13.44 / 5.6 / 2.8 / 0.9333)."""
    seconds = parse_duration(window)
    return [
        BurnRateRule.model_validate(
            {
                "severity": sev,
                "long_window": long,
                "short_window": short,
                "burn_rate": round(scaled_burn_rate(frac, seconds, parse_duration(long)), 4),
            }
        )
        for sev, frac, long, short in WORKBOOK_30D
    ]


class SloSpec(Strict):
    """One service-level objective of a model in an environment."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    environment: str
    objective: float = Field(gt=0, lt=1)
    window: str = "30d"
    sli: SliSpec
    alerts: list[BurnRateRule] | None = None
    description: str = ""
    #: what the error budget counts: the whole ``environment`` (every version that served in the window), or
    #: only the live ``version`` (queries' ``$version`` matchers kept). Burn rates follow the live version.
    budget_scope: Literal["environment", "version"] = "environment"

    _w = field_validator("window", mode="before")(lambda v: _duration(v))

    @property
    def window_seconds(self) -> int:
        """The rolling SLO window in seconds."""
        return parse_duration(self.window)

    @property
    def rules(self) -> list[BurnRateRule]:
        """The burn-rate rules: ``alerts`` or the workbook defaults scaled to ``window``."""
        return list(self.alerts) if self.alerts is not None else default_alert_rules(self.window)

    def query(self, model: str, *, version: int | None, filter_version: bool = True) -> SliQuery:
        """Return the :class:`SliQuery` a metrics source counts for this SLO.

        ``$model``/``$environment``/``$version`` are filled in; ``labels`` carries
        them for sources that filter themselves (the local store filters on the
        version only with ``filter_version``, so the budget can span versions).
        Without ``filter_version``, matchers and dimensions on ``$version`` are dropped.
        """
        from modelpilot.ports import SliQuery

        values = {"model": model, "environment": self.environment}
        if version is not None:
            values["version"] = str(version)
        counters = {
            k: (q if filter_version else q.without_version()).substituted(
                values, promql=self.sli.source == "prometheus"
            )
            for k, q in self.sli.counters().items()
        }

        def text(key: str) -> str | None:
            q = counters.get(key)
            return None if q is None else (q.query or q.metric_name or "")

        labels: dict[str, Any] = {"model": model, "environment": self.environment}
        if filter_version and version is not None:
            labels["version"] = version
        params: dict[str, Any] = {
            "labels": labels,
            "counters": {k: q.model_dump() for k, q in counters.items()},
            "sli_kind": self.sli.kind,
            "threshold_ms": self.sli.threshold_ms,
            "region": self.sli.region,
        }
        if self.sli.timeslice_metric:
            params.update(
                metric=self.sli.metric,
                op=self.sli.op,
                limit=self.sli.limit,
                slice_seconds=parse_duration(self.sli.timeslice),
            )
            return SliQuery(source=self.sli.source, kind="timeslice", total=text("value") or "", params=params)
        return SliQuery(
            source=self.sli.source,
            kind="ratio",
            total=text("total") or "",
            good=text("good"),
            bad=text("bad"),
            params=params,
        )

    def alert_windows(self) -> list[int]:
        """Every distinct alert window in seconds, shortest first."""
        return sorted({s for r in self.rules for s in (r.long_seconds, r.short_seconds)})


class RollbackPolicy(Strict):
    """Which alerts roll an environment back automatically, and how often.

    ``alarms`` are names or glob patterns of CloudWatch alarms / Azure monitor
    alerts; ``cooldown``: after an automatic rollback, further alerts roll back
    nothing until the cooldown has passed or a new version was promoted (one
    incident, one rollback). ``never_onto_breached`` keeps every version that
    breached an SLO (or was rolled back from) out of the rollback targets.
    """

    on_slo_page: bool = False
    on_slo_ticket: bool = False
    on_critical_drift: bool = False
    alarms: list[str] = Field(default_factory=list)
    cooldown: str = "1h"
    never_onto_breached: bool = True

    _c = field_validator("cooldown", mode="before")(lambda v: _duration(v))

    @property
    def cooldown_seconds(self) -> int:
        """The cooldown in seconds."""
        return parse_duration(self.cooldown)

    def alarm_matches(self, alarm_name: str) -> bool:
        """True when ``alarm_name`` is listed (exactly or by a glob pattern)."""
        return any(fnmatch.fnmatchcase(alarm_name, pattern) for pattern in self.alarms)

    def rolls_back_on(self, severity: str) -> bool:
        """True when an SLO alert of ``severity`` triggers a rollback."""
        return (severity == "page" and self.on_slo_page) or (severity == "ticket" and self.on_slo_ticket)
