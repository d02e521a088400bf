"""Recorded Azure REST answers through the SDK's own transport (for services with no emulator).

A ``requests`` adapter mounted on the session of azure-core's ``RequestsTransport``
answers each request from a handler, so every SDK layer above the socket runs as
in production: policies (bearer token, Key Vault's challenge, retries), request
building, response parsing and error mapping.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import requests
import urllib3
from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.pipeline.transport import RequestsTransport
from requests.structures import CaseInsensitiveDict

Handler = Callable[[requests.PreparedRequest], tuple[int, Any, dict[str, str]]]
#: ``samples(metric_name) -> [(time, value), ...]``: the raw samples a metrics API fake aggregates
Samples = Callable[[str], Iterable[tuple[datetime, float]]]
#: the Azure Monitor time grains (ISO 8601) and their length
GRAINS = {
    "PT1M": 60,
    "PT5M": 300,
    "PT15M": 900,
    "PT30M": 1800,
    "PT1H": 3600,
    "PT6H": 21600,
    "PT12H": 43200,
    "P1D": 86400,
}


class CannedAdapter(requests.adapters.BaseAdapter):
    """Answers every request with ``handler(request) -> (status, json body, headers)``."""

    def __init__(self, handler: Handler) -> None:
        super().__init__()
        self.handler = handler
        self.seen: list[requests.PreparedRequest] = []

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        self.seen.append(request)
        status, body, headers = self.handler(request)
        response = requests.Response()
        response.status_code = status
        response.reason = {
            200: "OK",
            400: "Bad Request",
            401: "Unauthorized",
            403: "Forbidden",
            404: "Not Found",
            429: "Too Many Requests",
            503: "Service Unavailable",
        }.get(status, "Status")
        content = b"" if body is None else json.dumps(body).encode()
        all_headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Content-Length": str(len(content)),
            **headers,
        }
        response.raw = urllib3.HTTPResponse(
            body=io.BytesIO(content), headers=all_headers, status=status, preload_content=False
        )
        response._content = content
        response._content_consumed = True
        response.headers = CaseInsensitiveDict(all_headers)
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        return None


def canned_transport(handler: Handler) -> tuple[RequestsTransport, CannedAdapter]:
    """Return an azure-core transport whose session is served by ``handler``, and the adapter."""
    adapter = CannedAdapter(handler)
    session = requests.Session()
    session.mount("https://", adapter)
    return RequestsTransport(session=session, session_owner=False), adapter


class StaticCredential:
    """A token credential that hands out one fixed token (no identity platform involved)."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken("test-token", int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        self.scopes.append(scopes)
        return AccessTokenInfo("test-token", int(time.time()) + 3600)


def query_of(request: requests.PreparedRequest) -> dict[str, str]:
    """Return the decoded query string of ``request`` (one value a name)."""
    return {k: v[0] for k, v in parse_qs(urlparse(request.url or "").query).items()}


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def metrics_api(samples: Samples) -> Handler:
    """Answer like the Azure Monitor metrics REST API over the raw ``samples`` of each metric.

    One time series a metric, one data point per ``interval`` bucket of the requested
    ``timespan`` (buckets start at the timespan's start, the last one is cut at its
    end); a bucket holds the ``total``, ``count``, ``average``, ``minimum`` and
    ``maximum`` of its samples, or only its ``timeStamp`` when it has none. Only the
    aggregations the request names are returned, as the service does.
    """

    def handler(request: requests.PreparedRequest) -> tuple[int, Any, dict[str, str]]:
        query = query_of(request)
        start, end = (_when(t) for t in query["timespan"].split("/"))
        grain = timedelta(seconds=GRAINS[query["interval"]])
        wanted = {a.strip().lower() for a in query.get("aggregation", "Average").split(",")}
        resource = urlparse(request.url or "").path.split("/providers/Microsoft.Insights/metrics")[0]
        value = []
        for name in query["metricnames"].split(","):
            data, bucket, raw = [], start, list(samples(name))
            while bucket < end:
                inside = [v for at, v in raw if bucket <= at < min(bucket + grain, end)]
                point: dict[str, Any] = {"timeStamp": bucket.strftime("%Y-%m-%dT%H:%M:%SZ")}
                if inside:
                    every = {
                        "total": sum(inside),
                        "count": float(len(inside)),
                        "average": sum(inside) / len(inside),
                        "minimum": min(inside),
                        "maximum": max(inside),
                    }
                    point.update({k: v for k, v in every.items() if k in wanted})
                data.append(point)
                bucket += grain
            value.append(
                {
                    "id": f"{resource}/providers/Microsoft.Insights/metrics/{name}",
                    "type": "Microsoft.Insights/metrics",
                    "name": {"value": name, "localizedValue": name},
                    "displayDescription": "",
                    "unit": "Count",
                    "errorCode": "Success",
                    "timeseries": [{"metadatavalues": [], "data": data}],
                }
            )
        return (
            200,
            {
                "cost": 0,
                "timespan": query["timespan"],
                "interval": query["interval"],
                "value": value,
                "namespace": query.get("metricnamespace", "microsoft.insights/components"),
                "resourceregion": "westeurope",
            },
            {},
        )

    return handler
