"""The whole SLO chain on Azure: timer → CheckSlos → Azure Monitor → SloBurnAlert → rollback in Table Storage.

Storage is Azurite; Azure Monitor answers through the SDK's transport with the
metrics REST API's response shape (there is no emulator). The SLO engine and the
rollback policy are the real ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qs, urlparse

import pytest

from modelpilot.domain.audit import verify_chain
from modelpilot.domain.commands import PromoteModel, RegisterModel
from modelpilot.policy.slo import SloSpec
from modelpilot.testing import FakeClock
from tests.support.azure_functions import AzureApp, host_timer, user_function
from tests.support.azure_transport import StaticCredential, canned_transport

APPI = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/modelpilot/providers/"
    "microsoft.insights/components/appi-modelpilot"
)
POLICY = f"""\
environments: [dev, staging, prod]
defaults:
  slos:
    - name: availability
      environment: prod
      objective: 0.995
      window: 30d
      sli:
        kind: ratio
        source: azure_monitor
        total: {{query: "{APPI}", metric_name: requests/count, dimensions: {{cloud/roleName: $model-$environment}}}}
        bad: {{query: "{APPI}", metric_name: requests/failed, dimensions: {{cloud/roleName: $model-$environment}}}}
  rollback:
    prod: {{on_slo_page: true, cooldown: 1h}}
"""


def metrics_answer(failed_per_minute):
    """Answer every metrics call: 100 requests a minute, ``failed_per_minute`` of them failed."""

    def handler(request):
        query = {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}
        start, end = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in query["timespan"].split("/"))
        minutes = max(1, int((end - start).total_seconds() // 60))
        value = []
        for name in query["metricnames"].split(","):
            per_minute = 100 if name == "requests/count" else failed_per_minute
            value.append(
                {
                    "name": {"value": name, "localizedValue": name},
                    "unit": "Count",
                    "errorCode": "Success",
                    "timeseries": [
                        {
                            "metadatavalues": [],
                            "data": [{"timeStamp": query["timespan"].split("/")[0], "total": per_minute * minutes}],
                        }
                    ],
                }
            )
        return (
            200,
            {
                "cost": 0,
                "timespan": query["timespan"],
                "interval": query["interval"],
                "value": value,
                "namespace": "microsoft.insights/components",
                "resourceregion": "westeurope",
            },
            {},
        )

    return handler


@pytest.fixture
def app(request, monkeypatch, tmp_path):
    app = AzureApp(request, monkeypatch, tmp_path, policy_text=POLICY)
    yield app
    app.close()


def in_prod(app, versions=2):
    """Release ``versions`` versions to prod a minute before the timer fires (it judges what ran at its minute)."""
    clock = app.bus.services.clock = FakeClock(datetime(2026, 11, 20, 11, 59, tzinfo=UTC))
    for n in range(1, versions + 1):
        app.upload_package(f"churn/v{n}", auc=0.8 + n / 100)
        app.bus.handle(RegisterModel(package_uri=f"az://{app.container}/churn/v{n}", actor="alice@contoso.com"))
        for env in ("dev", "staging", "prod"):
            app.bus.handle(PromoteModel("churn", env, actor="alice@contoso.com", version=n))
    clock.advance(65)  # the timer fires at 12:00:05


def use_monitor(app, failed_per_minute):
    from modelpilot.adapters.azure.monitor import AzureMonitorMetricsSource

    transport, adapter = canned_transport(metrics_answer(failed_per_minute))
    source = AzureMonitorMetricsSource(StaticCredential(), transport=transport)
    app.bus.services.metrics_sources["azure_monitor"] = source
    return adapter


def test_slo_burn_on_azure_monitor_rolls_prod_back(app):
    in_prod(app)
    adapter = use_monitor(app, failed_per_minute=20)  # 20 % errors against a 0.5 % budget: a page
    user_function("slo_check")(host_timer())
    prod = app.registry.alias_history("churn", "prod")
    assert [(c.action, c.to_version) for c in prod] == [("promote", 1), ("promote", 2), ("rollback", 1)]
    assert prod[-1].actor.startswith("system:")
    status = app.registry.get_monitor_status("churn", "prod", "slo")
    assert status is not None and status.state == "alert"
    filters = {parse_qs(urlparse(r.url).query)["$filter"][0] for r in adapter.seen}
    assert filters == {"cloud/roleName eq 'churn-prod'"}
    assert verify_chain("churn", app.registry.audit_records("churn")).ok


def test_healthy_slo_changes_nothing(app):
    in_prod(app)
    use_monitor(app, failed_per_minute=0)
    user_function("slo_check")(host_timer())
    assert app.registry.get_alias("churn", "prod").version == 2
    assert app.registry.get_monitor_status("churn", "prod", "slo").state == "ok"


def test_policy_counters_become_one_metrics_call_per_window():
    spec = SloSpec.model_validate(
        {
            "name": "availability",
            "environment": "prod",
            "objective": 0.99,
            "sli": {
                "kind": "ratio",
                "source": "azure_monitor",
                "total": {"query": APPI, "metric_name": "requests/count", "dimensions": {"cloud/roleName": "$model"}},
                "good": {"query": APPI, "metric_name": "requests/ok", "dimensions": {"cloud/roleName": "$model"}},
            },
        }
    )
    from modelpilot.adapters.azure.monitor import AzureMonitorMetricsSource

    def handler(request):
        value = [
            {
                "name": {"value": n},
                "errorCode": "Success",
                "timeseries": [{"data": [{"timeStamp": "2026-11-20T10:00:00Z", "total": t}]}],
            }
            for n, t in (("requests/count", 50.0), ("requests/ok", 48.0))
        ]
        return 200, {"value": value}, {}

    transport, adapter = canned_transport(handler)
    source = AzureMonitorMetricsSource(StaticCredential(), transport=transport)
    start = datetime.fromisoformat("2026-11-20T10:00:00+00:00")
    end = datetime.fromisoformat("2026-11-20T11:00:00+00:00")
    counts = source.counts(spec.query("churn", version=3), start, end)
    assert (counts.good, counts.total, counts.points) == (48.0, 50.0, 1)
    (request,) = adapter.seen
    query = {k: v[0] for k, v in parse_qs(urlparse(request.url).query).items()}
    assert query["metricnames"] == "requests/count,requests/ok"
    assert query["$filter"] == "cloud/roleName eq 'churn'" and query["aggregation"] == "Total"
