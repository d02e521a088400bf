"""CloudWatch as a :class:`MetricsSource`, with ``GetMetricData``.

Every counter of an SLI is one ``MetricStat`` query whose period is the whole
window (rounded up to a minute), so CloudWatch returns the window's sum in one
value (or a few, which are added). One ``GetMetricData`` call serves one time
range; :meth:`CloudWatchMetricsSource.counts_many` groups requests by window and
sends up to 500 queries per call (the API's limit), following ``NextToken``.

The SageMaker templates of :class:`modelpilot.policy.slo.SliSpec` read
``Invocations``/``Invocation5XXErrors`` (``Sum``) and ``ModelLatency``
(``SampleCount`` and the trimmed count ``TC(:threshold)``) in ``AWS/SageMaker``.
A window with no returned value for the total is missing data (``points == 0``).

The client is built on first use, by the factory the composition root passes.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING, Any

from modelpilot.exceptions import InvalidInput, TransientError
from modelpilot.ports import EventCounts, MetricsSource

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import datetime

    from modelpilot.ports import SliQuery

__all__ = ["MAX_QUERIES", "CloudWatchMetricsSource"]

#: GetMetricData accepts at most this many queries per call
MAX_QUERIES = 500


class CloudWatchMetricsSource(MetricsSource):
    """Counts SLI events from CloudWatch metrics.

    Parameters
    ----------
    client:
        A boto3 CloudWatch client.
    factory:
        Builds the client on first use when ``client`` is None (the composition root passes
        the shared client factory, so functions that never evaluate an SLO never build it).
    """

    def __init__(self, client: Any = None, *, factory: Callable[[], Any] | None = None) -> None:
        if client is None and factory is None:
            raise ValueError("CloudWatchMetricsSource needs a client or a factory that builds one")
        self._client = client
        self._factory = factory
        #: number of GetMetricData calls made (for tests and benchmarks)
        self.calls = 0

    @property
    def client(self) -> Any:
        """The boto3 client, built on first use."""
        if self._client is None and self._factory is not None:
            self._client = self._factory()
        return self._client

    def counts(self, query: SliQuery, start: datetime, end: datetime) -> EventCounts:
        """Return good and total events of ``query`` in ``[start, end)``."""
        return self.counts_many([(query, start, end)])[0]

    def counts_many(self, requests: Sequence[tuple[SliQuery, datetime, datetime]]) -> list[EventCounts]:
        """Return counts for many (query, window) pairs, batching queries that share a window."""
        by_window: dict[tuple[datetime, datetime], list[int]] = defaultdict(list)
        for index, (_q, start, end) in enumerate(requests):
            by_window[(start, end)].append(index)
        values: dict[str, list[float]] = {}
        for (start, end), indexes in by_window.items():
            period = _period(start, end)
            queries = [
                _metric_query(f"q{i}_{key}", spec, _slice(requests[i][0]) or period)
                for i in indexes
                for key, spec in _counters(requests[i][0]).items()
            ]
            for offset in range(0, len(queries), MAX_QUERIES):
                values.update(self._fetch(queries[offset : offset + MAX_QUERIES], start, end))
        return [_to_counts(i, q, values) for i, (q, _s, _e) in enumerate(requests)]

    def _fetch(self, queries: list[dict[str, Any]], start: datetime, end: datetime) -> dict[str, list[float]]:
        from botocore.exceptions import BotoCoreError, ClientError
        from botocore.parsers import ResponseParserError

        found: dict[str, list[float]] = {q["Id"]: [] for q in queries}
        kwargs: dict[str, Any] = {
            "MetricDataQueries": queries,
            "StartTime": start,
            "EndTime": end,
            "ScanBy": "TimestampAscending",
        }
        while True:
            try:
                reply = self.client.get_metric_data(**kwargs)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
                if status >= 500 or code in {"Throttling", "ThrottlingException", "ServiceUnavailable"}:
                    raise TransientError(f"CloudWatch GetMetricData failed: {code}") from None
                raise InvalidInput(f"CloudWatch rejected the SLI queries: {exc}") from None
            except (BotoCoreError, ResponseParserError) as exc:  # unreadable reply = a failing endpoint's error page
                raise TransientError(f"cannot reach CloudWatch: {type(exc).__name__}: {exc}") from None
            self.calls += 1
            for result in reply.get("MetricDataResults", []):
                found.setdefault(result["Id"], []).extend(float(v) for v in result.get("Values", []))
            token = reply.get("NextToken")
            if not token:
                return found
            kwargs["NextToken"] = token


def _period(start: datetime, end: datetime) -> int:
    seconds = int((end - start).total_seconds())
    if seconds <= 0:
        raise InvalidInput("a CloudWatch window must end after it starts")
    return max(60, -(-seconds // 60) * 60)


def _slice(query: SliQuery) -> int | None:
    if query.kind != "timeslice":
        return None
    return int((query.params or {}).get("slice_seconds") or 3600)


def _counters(query: SliQuery) -> dict[str, dict[str, Any]]:
    counters: dict[str, dict[str, Any]] = dict((query.params or {}).get("counters") or {})
    if not counters.get("total") and not counters.get("value"):
        raise InvalidInput("a CloudWatch SLI needs metric specs (namespace, metric_name) for its counters")
    for key, spec in counters.items():
        if not spec.get("namespace") or not spec.get("metric_name"):
            raise InvalidInput(f"CloudWatch counter {key!r} needs namespace and metric_name")
    return counters


def _metric_query(query_id: str, spec: dict[str, Any], period: int) -> dict[str, Any]:
    dims = [{"Name": k, "Value": v} for k, v in sorted((spec.get("dimensions") or {}).items())]
    return {
        "Id": query_id,
        "ReturnData": True,
        "MetricStat": {
            "Metric": {"Namespace": spec["namespace"], "MetricName": spec["metric_name"], "Dimensions": dims},
            "Period": period,
            "Stat": spec.get("stat") or "Sum",
        },
    }


def _to_counts(index: int, query: SliQuery, values: dict[str, list[float]]) -> EventCounts:
    if query.kind == "timeslice":
        params = query.params or {}
        limit, op = float(params["limit"]), params["op"]
        slices = values.get(f"q{index}_value", [])
        met = sum(1 for v in slices if (v >= limit if op == ">=" else v <= limit))
        return EventCounts(good=float(met), total=float(len(slices)), points=len(slices))
    total_values = values.get(f"q{index}_total", [])
    total = float(sum(total_values))
    if f"q{index}_good" in values:
        good = float(sum(values[f"q{index}_good"]))
    else:
        good = total - sum(values.get(f"q{index}_bad", []))
    return EventCounts(good=good, total=total, points=len(total_values))
