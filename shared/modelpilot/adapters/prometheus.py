"""Prometheus as a :class:`MetricsSource`, over the HTTP API (``query`` and ``query_range``).

Counters are read as raw samples (an instant query of ``selector[range]`` at the
window's end) and their growth is computed with
:func:`modelpilot.domain.slo.counter_increase`: resets count as restarts from
zero, like ``increase()``, but without extrapolation, so the counts are exact
for the samples Prometheus holds. The baseline of each series is its last sample
at or before the window's start (looked for up to ``lookback`` earlier); a series
born inside the window counts from its first sample. Several series matched by
one selector are summed. A window in which no series has a sample is missing
data (``points == 0``).

Quality metrics judged per timeslice use ``query_range`` with ``step`` = the
slice: each returned value is one slice, good when it meets the limit.

A Prometheus behind authentication (a reverse proxy, Grafana Cloud, Amazon Managed
Prometheus' query proxy, …) takes an ``Authorization`` header: ``authorization``
returns its value for each request, and :func:`secret_authorization` builds one
from a secret of the platform's store (Secrets Manager, Key Vault) read through the
``SecretsProvider`` port, which caches it. The header and the secret are never
logged nor put in an error message, and a URL with credentials in it is refused.

Only the standard library is used (``urllib``), so importing this module is cheap.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from modelpilot.domain.slo import counter_increase
from modelpilot.exceptions import InvalidInput, NotAuthorized, TransientError
from modelpilot.ports import EventCounts, MetricsSource

if TYPE_CHECKING:
    from collections.abc import Callable

    from modelpilot.ports import SecretsProvider, SliQuery

__all__ = ["PrometheusMetricsSource", "authorization_header", "prometheus_sources", "secret_authorization"]


class PrometheusMetricsSource(MetricsSource):
    """Counts SLI events from a Prometheus server.

    Parameters
    ----------
    url:
        The server's base URL, e.g. ``http://127.0.0.1:9090``.
    timeout:
        Seconds to wait for one HTTP response.
    lookback:
        How far before a window's start to look for each counter's baseline sample
        (at least one scrape interval).
    raw_window_limit:
        Windows up to this many seconds are computed from raw samples (exact);
        longer ones (the 30-day budget window) with the server's ``increase()`` and
        ``count_over_time()``, so a check never pulls a month of raw samples. Their
        extrapolation error is at most about one scrape interval over the window.
    authorization:
        Returns the ``Authorization`` header of a request (``Bearer …``, ``Basic …``), or
        None to send none; called for every request (see :func:`secret_authorization`).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        lookback: int = 300,
        raw_window_limit: int = 6 * 3600,
        authorization: Callable[[], str | None] | None = None,
    ) -> None:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in {"http", "https"} or not parsed.netloc:
            raise InvalidInput(f"Prometheus URL must be http(s)://host:port, got {url!r}")
        if parsed.username is not None or parsed.password is not None:
            # never echo the URL: it holds a credential
            raise InvalidInput(
                "the Prometheus URL holds credentials; put them in a secret (MODELPILOT_PROMETHEUS_SECRET) instead"
            )
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.lookback = lookback
        self.raw_window_limit = raw_window_limit
        self._authorization = authorization

    def __repr__(self) -> str:
        return f"PrometheusMetricsSource({self.url!r}, authorization={'yes' if self._authorization else 'no'})"

    # -- HTTP API -------------------------------------------------------------------
    def _get(self, path: str, params: dict[str, str]) -> Any:
        target = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        headers = {"Accept": "application/json"}
        credential = self._authorization() if self._authorization is not None else None
        if credential:
            headers["Authorization"] = credential
        request = urllib.request.Request(target, headers=headers)  # noqa: S310 - scheme checked
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as reply:  # noqa: S310 - scheme checked
                body = json.loads(reply.read())
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                how = "the configured credentials" if credential else "a request without credentials"
                raise NotAuthorized(
                    f"Prometheus at {self.url} refused {how} (HTTP {exc.code}); check MODELPILOT_PROMETHEUS_SECRET",
                    url=self.url,
                ) from None
            body = _error_body(exc)
            if exc.code >= 500 or body is None:
                raise TransientError(f"Prometheus at {self.url} answered HTTP {exc.code}", url=self.url) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise TransientError(f"cannot reach Prometheus at {self.url}: {exc}", url=self.url) from None
        if body.get("status") != "success":
            raise InvalidInput(
                f"Prometheus rejected {params.get('query')!r}: {body.get('error', body)}",
                query=params.get("query"),
            )
        return body["data"]

    def query(self, expr: str, at: datetime) -> dict[str, Any]:
        """Run an instant query at ``at``; return the API's ``data`` (``resultType``, ``result``)."""
        data: dict[str, Any] = self._get("/api/v1/query", {"query": expr, "time": _ts(at)})
        return data

    def query_range(self, expr: str, start: datetime, end: datetime, step: int) -> list[dict[str, Any]]:
        """Run a range query; return the matrix (``metric`` and ``values`` per series)."""
        data = self._get(
            "/api/v1/query_range",
            {"query": expr, "start": _ts(start), "end": _ts(end), "step": f"{int(step)}s"},
        )
        result: list[dict[str, Any]] = data["result"]
        return result

    # -- MetricsSource --------------------------------------------------------------
    def counts(self, query: SliQuery, start: datetime, end: datetime) -> EventCounts:
        """Return good and total events of ``query`` in ``(start, end]``."""
        if query.kind == "timeslice":
            return self._timeslices(query, start, end)
        total, points = self.increase(query.total, start, end)
        if query.good is not None:
            good, _ = self.increase(query.good, start, end)
        elif query.bad is not None:
            bad, _ = self.increase(query.bad, start, end)
            good = total - bad
        else:
            raise InvalidInput("a Prometheus SLI needs a good or bad selector")
        return EventCounts(good=good, total=total, points=points)

    def increase(self, selector: str, start: datetime, end: datetime) -> tuple[float, int]:
        """Return ``(growth of the counters matched by selector in (start, end], samples in the window)``."""
        seconds = int((end - start).total_seconds())
        if seconds > self.raw_window_limit:
            return self._server_increase(selector, seconds, end)
        span = seconds + self.lookback
        data = self.query(f"{selector}[{span}s]", end)
        if data.get("resultType") != "matrix":
            raise InvalidInput(f"{selector!r} is not a plain counter selector (got a {data.get('resultType')})")
        lo, hi = start.timestamp(), end.timestamp()
        total, points = 0.0, 0
        for series in data["result"]:
            samples = [(float(t), float(v)) for t, v in series["values"]]
            before = [v for t, v in samples if t <= lo]
            inside = [(t, v) for t, v in samples if lo < t <= hi]
            total += counter_increase(inside, before[-1] if before else None)
            points += len(inside)
        return total, points

    def _server_increase(self, selector: str, seconds: int, end: datetime) -> tuple[float, int]:
        growth = self.query(f"sum(increase({selector}[{seconds}s]))", end)["result"]
        samples = self.query(f"sum(count_over_time({selector}[{seconds}s]))", end)["result"]
        points = int(float(samples[0]["value"][1])) if samples else 0
        return (float(growth[0]["value"][1]) if growth and points else 0.0), points

    def _timeslices(self, query: SliQuery, start: datetime, end: datetime) -> EventCounts:
        params = query.params or {}
        step = int(params.get("slice_seconds") or 3600)
        limit, op = float(params["limit"]), params["op"]
        good = total = 0
        # one evaluation per slice end: start + step, …, end (each slice is (t - step, t])
        for series in self.query_range(query.total, start + timedelta(seconds=step), end, step):
            for _t, raw in series["values"]:
                value = float(raw)
                if value != value:  # NaN: no data in that slice
                    continue
                total += 1
                good += int(value >= limit if op == ">=" else value <= limit)
        return EventCounts(good=float(good), total=float(total), points=total)


def authorization_header(secret: str) -> str:
    """Return the ``Authorization`` header for a secret's value.

    The value is a JSON object ``{"bearer_token": "…"}`` or ``{"username": "…", "password": "…"}``
    (basic authentication), or a bare token. Raises ``InvalidInput`` naming what is wrong,
    never the value.
    """
    text = secret.strip()
    if not text:
        raise InvalidInput("the Prometheus credentials secret is empty")
    if not text.startswith("{"):
        return f"Bearer {text}"
    try:
        data = json.loads(text)
    except ValueError:
        raise InvalidInput("the Prometheus credentials secret starts with '{' but is not JSON") from None
    if isinstance(data, dict) and isinstance(data.get("bearer_token"), str) and data["bearer_token"]:
        return f"Bearer {data['bearer_token']}"
    if isinstance(data, dict) and isinstance(data.get("username"), str) and isinstance(data.get("password"), str):
        pair = f"{data['username']}:{data['password']}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")
    raise InvalidInput(
        'the Prometheus credentials secret needs "bearer_token", or "username" and "password", '
        f"(it has the keys {sorted(data) if isinstance(data, dict) else type(data).__name__})"
    )


def secret_authorization(secrets: SecretsProvider, name: str) -> Callable[[], str]:
    """Return a function giving the ``Authorization`` header from secret ``name``, read through ``secrets``.

    The secret is read when a request is made (the provider caches it, so a rotated secret is
    picked up when the cache expires), not when the source is built.
    """

    def header() -> str:
        return authorization_header(secrets.get_secret(name))

    return header


def prometheus_sources(
    url: str | None, *, secret: str | None = None, secrets: SecretsProvider | None = None
) -> dict[str, MetricsSource]:
    """Return ``{"prometheus": source}`` for ``url`` (``{}`` without one), authenticated with secret ``secret``.

    What a backend's wiring calls with ``MODELPILOT_PROMETHEUS_URL`` and ``MODELPILOT_PROMETHEUS_SECRET``.
    Without a URL there is no source (a secret alone authenticates nothing and is not read); a secret
    named without a secrets provider to read it is a configuration error.
    """
    if not url:
        return {}
    authorization = None
    if secret:
        if secrets is None:
            raise InvalidInput(
                "MODELPILOT_PROMETHEUS_SECRET names a secret but this backend has no secret store configured"
            )
        authorization = secret_authorization(secrets, secret)
    return {"prometheus": PrometheusMetricsSource(url, authorization=authorization)}


def _ts(when: datetime) -> str:
    return f"{when.astimezone(UTC).timestamp():.3f}"


def _error_body(exc: urllib.error.HTTPError) -> dict[str, Any] | None:
    try:
        body = json.loads(exc.read())
    except (ValueError, OSError):
        return None
    return body if isinstance(body, dict) else None
