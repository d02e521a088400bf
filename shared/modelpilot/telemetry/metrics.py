"""Metrics: counters, histograms and last-value gauges, created on first use under the ``modelpilot`` meter.

Names start with ``modelpilot.`` (``modelpilot.promotions``, ``modelpilot.slo.burn_rate`` …);
Prometheus sees them as ``modelpilot_promotions_total``, ``modelpilot_slo_burn_rate``.
The meter provider is the one :func:`modelpilot.telemetry.tracing.setup_tracing` installed.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from modelpilot.telemetry.tracing import clean_attributes, setup_tracing

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter

__all__ = ["counter_add", "gauge_set", "histogram_record", "meter", "reset_instruments"]

SCOPE = "modelpilot"
_lock = threading.Lock()
_instruments: dict[str, Any] = {}
_gauges: dict[str, dict[tuple[tuple[str, Any], ...], float]] = {}


def meter() -> Meter:
    """Return ModelPilot's meter (the CLI's set-up runs on first use)."""
    setup_tracing()
    from opentelemetry import metrics

    return metrics.get_meter(SCOPE)


def reset_instruments() -> None:
    """Forget the instruments (a new meter provider was installed)."""
    _instruments.clear()


def counter_add(name: str, amount: float = 1, attributes: dict[str, Any] | None = None) -> None:
    """Add ``amount`` to the counter ``name`` (created on first use)."""
    inst = _instruments.get(name)
    if inst is None:
        inst = _instruments[name] = meter().create_counter(name)
    inst.add(amount, attributes=clean_attributes(attributes))


def histogram_record(name: str, value: float, attributes: dict[str, Any] | None = None, unit: str = "") -> None:
    """Record ``value`` in the histogram ``name`` (created on first use)."""
    inst = _instruments.get(name)
    if inst is None:
        inst = _instruments[name] = meter().create_histogram(name, unit=unit)
    inst.record(value, attributes=clean_attributes(attributes))


def gauge_set(name: str, value: float, attributes: dict[str, Any] | None = None) -> None:
    """Set the gauge ``name`` for ``attributes`` to ``value`` (last value wins)."""
    attrs = clean_attributes(attributes)
    key = tuple(sorted(attrs.items()))
    with _lock:
        series = _gauges.setdefault(name, {})
        series[key] = value
        if name in _instruments:
            return

    def _observe(_options: Any, _name: str = name) -> Any:
        from opentelemetry.metrics import Observation

        return [Observation(v, dict(k)) for k, v in list(_gauges.get(_name, {}).items())]

    _instruments[name] = meter().create_observable_gauge(name, callbacks=[_observe])
