"""The SLI part of an SLO: what counts as a good event, and where the counts come from.

See :mod:`modelpilot.policy.slo` for the policy file's ``slos`` block.
"""

from __future__ import annotations

import re
from string import Template
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from modelpilot.domain.durations import format_duration, parse_duration
from modelpilot.policy.base import Strict

__all__ = ["MetricQuery", "SliSpec", "SourceName", "promql_string"]

SourceName = Literal["local", "prometheus", "cloudwatch", "azure_monitor", "quality"]


def _timeslice(value: Any) -> str:
    try:
        return format_duration(parse_duration(value))
    except ValueError as exc:
        raise ValueError(str(exc)) from None


class MetricQuery(Strict):
    """One counter or value of an SLI, in the terms of its source.

    Prometheus: ``query`` is a counter selector (or, for a quality metric, an
    expression). Local: ``query`` is a series (``requests``, ``requests.ok``,
    ``requests.error``, ``requests.fast``, ``requests.slow``, ``feedback``,
    ``feedback.correct``, ``feedback.accuracy``, ``feedback.mae``). CloudWatch and
    Azure Monitor: ``namespace``/``metric_name``/``dimensions``/``stat``.
    """

    query: str | None = None
    namespace: str | None = None
    metric_name: str | None = None
    dimensions: dict[str, str] = Field(default_factory=dict)
    stat: str = "Sum"

    def without_version(self) -> MetricQuery:
        """Return a copy that no longer selects one version: PromQL matchers and dimensions whose value
        is ``$version`` are dropped (the environment's error budget spans every version)."""
        dims = {k: v for k, v in self.dimensions.items() if not _VERSION.search(v)}
        query = _BRACES.sub(_drop_version_matchers, self.query) if self.query else None
        return self.model_copy(update={"query": query, "dimensions": dims})

    def substituted(self, values: dict[str, str], *, promql: bool = False) -> MetricQuery:
        """Return a copy with ``$model``/``$environment``/``$version`` filled in.

        With ``promql`` the values are escaped for a PromQL string literal (``model="$model"``),
        so a quote or backslash in a name can never end the literal and change the query.
        """
        filled = {k: promql_string(v) for k, v in values.items()} if promql else values

        def sub(text: str) -> str:
            return Template(text).safe_substitute(filled)

        return self.model_copy(
            update={
                "query": sub(self.query) if self.query else None,
                "dimensions": {k: sub(v) for k, v in self.dimensions.items()},
            }
        )


def promql_string(value: str) -> str:
    """Return ``value`` escaped for the inside of a double-quoted PromQL string literal."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


_VERSION = re.compile(r"\$(?:version\b|\{version\})")
_BRACES = re.compile(r'\{((?:[^{}"]|"(?:[^"\\]|\\.)*")*)\}')
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")\s*')


def _drop_version_matchers(match: re.Match[str]) -> str:
    body = match.group(1)
    matchers = []
    rest = body
    while rest.strip():
        found = _MATCHER.match(rest)
        if found is None:
            return match.group(0)  # not a plain label-matcher list: leave it as written
        matchers.append(found.group(0).strip())
        rest = rest[found.end() :]
        if rest.startswith(","):
            rest = rest[1:]
        elif rest.strip():
            return match.group(0)
    kept = [m for m in matchers if not _VERSION.search(m)]
    return "{" + ",".join(kept) + "}" if kept else ""


_SAGEMAKER = "AWS/SageMaker"


class SliSpec(Strict):
    """What counts as a good event.

    * ``ratio``: ``good`` (or ``bad``) and ``total`` counters;
    * ``threshold``: requests faster than ``threshold_ms``, from a Prometheus
      ``histogram`` (``_bucket``/``_count``) or from ``bad`` (slow) / ``total`` counters;
    * ``quality``: ``metric: correct`` is the fraction of labelled predictions that
      were right (``good``/``total`` of feedback); ``accuracy``/``mae``/… compare
      ``value`` over each ``timeslice`` with ``op`` ``limit`` (OpenSLO timeslices).

    ``source: quality`` reads the quality batch's windows (``docs/quality.md``): ``metric: correct`` counts
    correct labelled predictions, any other metric (``accuracy``, ``roc_auc``, ``mae``, …) is judged per
    window with ``op`` and ``limit``; no counters are needed.

    ``template`` fills the counters for a SageMaker endpoint
    (``sagemaker_availability``: non-5xx ``Invocations``; ``sagemaker_latency``:
    ``ModelLatency`` under ``threshold_ms``).
    """

    kind: Literal["ratio", "threshold", "quality"]
    source: SourceName = "local"
    good: MetricQuery | None = None
    bad: MetricQuery | None = None
    total: MetricQuery | None = None
    threshold_ms: float | None = Field(default=None, gt=0)
    histogram: MetricQuery | None = None
    histogram_unit: Literal["s", "ms"] = "s"
    metric: str | None = None
    value: MetricQuery | None = None
    op: Literal[">=", "<="] | None = None
    limit: float | None = None
    timeslice: str = "1h"
    template: Literal["sagemaker_availability", "sagemaker_latency"] | None = None
    endpoint_name: str | None = None
    variant_name: str = "AllTraffic"
    region: str | None = None

    _t = field_validator("timeslice", mode="before")(lambda v: _timeslice(v))

    @model_validator(mode="after")
    def _complete(self) -> SliSpec:
        if self.source == "quality":
            if self.kind != "quality" or not self.metric:
                raise ValueError("source quality takes kind quality and a metric (correct, accuracy, roc_auc, ...)")
            if self.timeslice_metric and (self.op is None or self.limit is None):
                raise ValueError(f"quality metric {self.metric} needs op and limit (e.g. op: '>=', limit: 0.8)")
            return self
        if self.template:
            if not self.endpoint_name:
                raise ValueError(f"template {self.template} needs endpoint_name")
            if self.template == "sagemaker_latency" and self.threshold_ms is None:
                raise ValueError("template sagemaker_latency needs threshold_ms")
            return self
        if self.timeslice_metric:
            if self.value is None or self.op is None or self.limit is None:
                raise ValueError(f"quality metric {self.metric} needs value, op and limit (e.g. op: '>=', limit: 0.8)")
            return self
        if self.kind == "threshold" and self.threshold_ms is None:
            raise ValueError("a threshold SLI needs threshold_ms")
        if self.kind == "threshold" and self.histogram is not None:
            return self
        if self.total is None or (self.good is None) == (self.bad is None):
            raise ValueError("give total and exactly one of good or bad")
        return self

    @property
    def timeslice_metric(self) -> bool:
        """True for a quality metric judged per timeslice (anything but ``correct``)."""
        return self.kind == "quality" and self.metric not in (None, "correct")

    def counters(self) -> dict[str, MetricQuery]:
        """Return the resolved counters: ``total`` plus ``good`` or ``bad`` (or ``value``)."""
        if self.source == "quality":  # the quality batch's windows: the metric names what is read
            if self.timeslice_metric:
                return {"value": MetricQuery(query=self.metric)}
            return {"good": MetricQuery(query="correct"), "total": MetricQuery(query="labelled")}
        if self.template == "sagemaker_availability":
            dims = {"EndpointName": self.endpoint_name or "", "VariantName": self.variant_name}
            return {
                "total": MetricQuery(namespace=_SAGEMAKER, metric_name="Invocations", dimensions=dims),
                "bad": MetricQuery(namespace=_SAGEMAKER, metric_name="Invocation5XXErrors", dimensions=dims),
            }
        if self.template == "sagemaker_latency":
            dims = {"EndpointName": self.endpoint_name or "", "VariantName": self.variant_name}
            micros = f"{(self.threshold_ms or 0) * 1000:g}"  # ModelLatency is in microseconds
            return {
                "total": MetricQuery(
                    namespace=_SAGEMAKER, metric_name="ModelLatency", dimensions=dims, stat="SampleCount"
                ),
                "good": MetricQuery(
                    namespace=_SAGEMAKER, metric_name="ModelLatency", dimensions=dims, stat=f"TC(:{micros})"
                ),
            }
        if self.timeslice_metric:
            return {"value": self.value} if self.value else {}
        if self.kind == "threshold" and self.histogram is not None:
            return _histogram_counters(self.histogram, self.threshold_ms or 0, self.histogram_unit)
        found = {"total": self.total, "good": self.good, "bad": self.bad}
        return {k: v for k, v in found.items() if v is not None}


_SELECTOR = re.compile(r"^\s*([A-Za-z_:][A-Za-z0-9_:]*)\s*(?:\{(.*)\})?\s*$")


def _histogram_counters(hist: MetricQuery, threshold_ms: float, unit: str) -> dict[str, MetricQuery]:
    match = _SELECTOR.match(hist.query or "")
    if not match:
        raise ValueError(f'histogram must be a metric selector like name{{job="x"}}, got {hist.query!r}')
    name, labels = match.group(1), (match.group(2) or "").strip().rstrip(",")
    le = threshold_ms / 1000 if unit == "s" else threshold_ms
    bucket_labels = f'{labels},le="{le:g}"' if labels else f'le="{le:g}"'
    count = f"{name}_count{{{labels}}}" if labels else f"{name}_count"
    return {
        "good": hist.model_copy(update={"query": f"{name}_bucket{{{bucket_labels}}}"}),
        "total": hist.model_copy(update={"query": count}),
    }
