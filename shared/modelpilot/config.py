"""Typed settings: the only module that reads environment variables.

Resource names flow from infrastructure-as-code into these variables (SAM ``!Ref``,
Azure app settings); their names are constants of :class:`ENV`. No secret is ever
read from the environment: secrets come from the platform's secret store through
the ``SecretsProvider`` port. The one exception is Azure's storage connection
string, which the Functions host keeps in an app setting *named* by
``MODELPILOT_AZURE_STORAGE_CONNECTION_SETTING`` (:func:`app_setting` reads it).

:class:`Settings` is read once per process; the helpers below read values that the
platform sets per invocation (the X-Ray trace header) or that logging needs before
any settings exist.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "ENV",
    "Settings",
    "app_setting",
    "azure_monitor_connection_string",
    "in_function_runtime",
    "log_level",
    "otlp_endpoint",
    "xray_trace_header",
]


class ENV:
    """Environment variable names."""

    BACKEND = "MODELPILOT_BACKEND"
    HOME = "MODELPILOT_HOME"
    POLICY = "MODELPILOT_POLICY"
    #: how long a process uses the policy it read before it checks the file again (seconds; 0: every use)
    POLICY_TTL = "MODELPILOT_POLICY_TTL_SECONDS"
    LOG_LEVEL = "MODELPILOT_LOG_LEVEL"
    DATA_ROOT = "MODELPILOT_DATA_ROOT"
    #: where serving manifests (``serving/<model>/<env>.json``) are written; locally the data root by default,
    #: in the cloud unset = none written (the IaC sets it together with the functions' write grant on it)
    SERVING_ROOT = "MODELPILOT_SERVING_ROOT"
    PROMETHEUS_URL = "MODELPILOT_PROMETHEUS_URL"
    #: the name of the secret (Secrets Manager, Key Vault) holding the credentials of PROMETHEUS_URL
    PROMETHEUS_SECRET = "MODELPILOT_PROMETHEUS_SECRET"  # noqa: S105 - a variable name, not a secret
    #: the MLflow tracking server whose registry ModelPilot follows and writes back to (docs/mlflow.md)
    MLFLOW_TRACKING_URI = "MODELPILOT_MLFLOW_TRACKING_URI"
    #: the name of the secret holding the MLflow webhook's signing secret
    MLFLOW_WEBHOOK_SECRET = "MODELPILOT_MLFLOW_WEBHOOK_SECRET"  # noqa: S105 - a variable name, not a secret
    #: the name of the secret holding MLflow credentials ("user:password" or a token), when the server needs them
    MLFLOW_TOKEN_SECRET = "MODELPILOT_MLFLOW_TOKEN_SECRET"  # noqa: S105 - a variable name, not a secret
    #: where canary splits are routed besides the serving manifest: a JSON list (docs/canary.md, routers)
    TRAFFIC_ROUTES = "MODELPILOT_TRAFFIC_ROUTES"
    # AWS
    REGISTRY_TABLE = "MODELPILOT_REGISTRY_TABLE"
    IDEMPOTENCY_TABLE = "MODELPILOT_IDEMPOTENCY_TABLE"
    MODEL_BUCKET = "MODELPILOT_MODEL_BUCKET"
    EVENT_BUS = "MODELPILOT_EVENT_BUS"
    TOPIC_ARN = "MODELPILOT_TOPIC_ARN"
    #: the drift state machine (Step Functions Distributed Map) the drift batch starts for a large window
    DRIFT_STATE_MACHINE = "MODELPILOT_DRIFT_STATE_MACHINE"
    #: a window larger than this many bytes is fanned out on DRIFT_STATE_MACHINE (in batches of this size)
    DRIFT_FANOUT_BYTES = "MODELPILOT_DRIFT_FANOUT_BYTES"
    AWS_ENDPOINT_URL = "AWS_ENDPOINT_URL"
    AWS_REGION = "AWS_REGION"
    # Azure
    AZURE_STORAGE_ACCOUNT_URL = "MODELPILOT_AZURE_STORAGE_ACCOUNT_URL"
    AZURE_TABLE_ENDPOINT = "MODELPILOT_AZURE_TABLE_ENDPOINT"
    AZURE_STORAGE_CONNECTION_SETTING = "MODELPILOT_AZURE_STORAGE_CONNECTION_SETTING"
    AZURE_CONTAINER = "MODELPILOT_AZURE_CONTAINER"
    AZURE_REGISTRY_TABLE = "MODELPILOT_AZURE_REGISTRY_TABLE"
    AZURE_IDEMPOTENCY_TABLE = "MODELPILOT_AZURE_IDEMPOTENCY_TABLE"
    AZURE_EVENTGRID_ENDPOINT = "MODELPILOT_AZURE_EVENTGRID_ENDPOINT"
    AZURE_KEYVAULT_URL = "MODELPILOT_AZURE_KEYVAULT_URL"
    #: resource id of the Azure ML workspace whose model versions get ModelPilot's tags written back
    AZURE_ML_WORKSPACE_ID = "MODELPILOT_AZURE_ML_WORKSPACE_ID"
    #: "true": the function app registers the Durable Functions drift fan-out (drift_window and its activities)
    AZURE_DURABLE_DRIFT = "MODELPILOT_AZURE_DURABLE_DRIFT"
    #: set to "True" by App Service when its authentication module (Entra ID) fronts the app
    AZURE_AUTH_ENABLED = "WEBSITE_AUTH_ENABLED"
    # the CLI and the platforms
    ACTOR = "MODELPILOT_ACTOR"
    AWS_PROFILE = "AWS_PROFILE"
    AWS_DEFAULT_REGION = "AWS_DEFAULT_REGION"
    OTLP_ENDPOINT = "OTEL_EXPORTER_OTLP_ENDPOINT"
    #: Application Insights: set on a function app, traces go to Azure Monitor (when no OTLP endpoint is set)
    APPLICATIONINSIGHTS_CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
    METRICS_NAMESPACE = "POWERTOOLS_METRICS_NAMESPACE"
    SERVICE_NAME = "POWERTOOLS_SERVICE_NAME"
    #: set by Lambda for each invocation: the X-Ray trace header
    XRAY_TRACE_HEADER = "_X_AMZN_TRACE_ID"
    #: set by Lambda in every function's environment (the function's name)
    LAMBDA_FUNCTION_NAME = "AWS_LAMBDA_FUNCTION_NAME"
    #: set by the Azure Functions host for its language worker ("python")
    FUNCTIONS_WORKER_RUNTIME = "FUNCTIONS_WORKER_RUNTIME"


@dataclass(frozen=True)
class Settings:
    """Everything a function needs to know about where things are."""

    backend: str = "local"
    home: str = ".modelpilot"
    policy: str | None = None
    #: see ``ENV.POLICY_TTL``; the policy loader re-checks the file (a conditional read) after this long
    policy_ttl_seconds: float = 30.0
    data_root: str | None = None
    serving_root: str | None = None
    prometheus_url: str | None = None
    prometheus_secret: str | None = None
    mlflow_tracking_uri: str | None = None
    mlflow_webhook_secret: str = "modelpilot-mlflow-webhook"  # noqa: S105 - the secret's name
    mlflow_token_secret: str | None = None
    #: see ``ENV.TRAFFIC_ROUTES``: the JSON text, parsed by each backend's wiring (None: no routers)
    traffic_routes: str | None = None
    # AWS
    registry_table: str | None = None
    idempotency_table: str | None = None
    model_bucket: str | None = None
    event_bus: str | None = None
    topic_arn: str | None = None
    aws_endpoint_url: str | None = None
    aws_region: str | None = None
    #: see ``ENV.DRIFT_STATE_MACHINE``; None: every window is read inline
    drift_state_machine: str | None = None
    #: see ``ENV.DRIFT_FANOUT_BYTES`` (default 2 GiB)
    drift_fanout_bytes: int = 2 * 1024**3
    # Azure
    azure_storage_account_url: str | None = None
    azure_table_endpoint: str | None = None
    azure_storage_connection_setting: str | None = None
    azure_container: str = "models"
    azure_registry_table: str = "modelpilotregistry"
    azure_idempotency_table: str = "modelpilotidempotency"
    azure_eventgrid_endpoint: str | None = None
    azure_keyvault_url: str | None = None
    azure_ml_workspace_id: str | None = None
    azure_auth_enabled: bool = False
    #: register the Durable Functions drift fan-out; off by default, so no cold start pays for the Durable SDK
    azure_durable_drift: bool = False
    # the CLI and the platforms
    actor: str | None = None
    aws_profile: str | None = None
    metrics_namespace: str = "ModelPilot"
    service_name: str = "modelpilot"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read settings from ``environ`` (default ``os.environ``); keyword overrides win."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(name)
            return value if value else None

        auth = (get(ENV.AZURE_AUTH_ENABLED) or "").strip().lower() == "true"
        durable = (get(ENV.AZURE_DURABLE_DRIFT) or "").strip().lower() == "true"

        settings = cls(
            backend=(get(ENV.BACKEND) or "local").lower(),
            home=get(ENV.HOME) or ".modelpilot",
            policy=get(ENV.POLICY),
            policy_ttl_seconds=_seconds(get(ENV.POLICY_TTL), 30.0),
            data_root=get(ENV.DATA_ROOT),
            serving_root=get(ENV.SERVING_ROOT),
            prometheus_url=get(ENV.PROMETHEUS_URL),
            prometheus_secret=get(ENV.PROMETHEUS_SECRET),
            mlflow_tracking_uri=get(ENV.MLFLOW_TRACKING_URI),
            mlflow_webhook_secret=get(ENV.MLFLOW_WEBHOOK_SECRET) or "modelpilot-mlflow-webhook",
            mlflow_token_secret=get(ENV.MLFLOW_TOKEN_SECRET),
            traffic_routes=get(ENV.TRAFFIC_ROUTES),
            registry_table=get(ENV.REGISTRY_TABLE),
            idempotency_table=get(ENV.IDEMPOTENCY_TABLE),
            model_bucket=get(ENV.MODEL_BUCKET),
            event_bus=get(ENV.EVENT_BUS),
            topic_arn=get(ENV.TOPIC_ARN),
            aws_endpoint_url=get(ENV.AWS_ENDPOINT_URL),
            aws_region=get(ENV.AWS_REGION) or get(ENV.AWS_DEFAULT_REGION),
            drift_state_machine=get(ENV.DRIFT_STATE_MACHINE),
            drift_fanout_bytes=_positive_int(get(ENV.DRIFT_FANOUT_BYTES), 2 * 1024**3),
            azure_storage_account_url=get(ENV.AZURE_STORAGE_ACCOUNT_URL),
            azure_table_endpoint=get(ENV.AZURE_TABLE_ENDPOINT),
            azure_storage_connection_setting=get(ENV.AZURE_STORAGE_CONNECTION_SETTING),
            azure_container=get(ENV.AZURE_CONTAINER) or "models",
            azure_registry_table=get(ENV.AZURE_REGISTRY_TABLE) or "modelpilotregistry",
            azure_idempotency_table=get(ENV.AZURE_IDEMPOTENCY_TABLE) or "modelpilotidempotency",
            azure_eventgrid_endpoint=get(ENV.AZURE_EVENTGRID_ENDPOINT),
            azure_keyvault_url=get(ENV.AZURE_KEYVAULT_URL),
            azure_ml_workspace_id=get(ENV.AZURE_ML_WORKSPACE_ID),
            azure_auth_enabled=auth,
            azure_durable_drift=durable,
            actor=get(ENV.ACTOR),
            aws_profile=get(ENV.AWS_PROFILE),
            metrics_namespace=get(ENV.METRICS_NAMESPACE) or "ModelPilot",
            service_name=get(ENV.SERVICE_NAME) or "modelpilot",
        )
        clean = {k: v for k, v in overrides.items() if v is not None}
        return replace(settings, **clean) if clean else settings


def _seconds(text: str | None, default: float) -> float:
    """A duration setting in seconds: ``default`` when unset or not a finite number, never below 0."""
    try:
        value = float(text) if text is not None else default
    except ValueError:
        return default
    return max(0.0, value) if value == value and value != float("inf") else default


def _positive_int(text: str | None, default: int) -> int:
    """A size setting: ``default`` when unset or not a whole number of at least 1."""
    try:
        value = int(text) if text is not None else default
    except ValueError:
        return default
    return value if value >= 1 else default


def app_setting(name: str) -> str | None:
    """Return the app setting (environment variable) ``name``, or None when unset or empty."""
    value = os.environ.get(name)
    return value if value else None


def log_level() -> str:
    """Return the level of ModelPilot's logs (``MODELPILOT_LOG_LEVEL``, default WARNING)."""
    return (os.environ.get(ENV.LOG_LEVEL) or "WARNING").upper()


def otlp_endpoint() -> str | None:
    """Return the OTLP endpoint traces and metrics are exported to, if one is configured."""
    return app_setting(ENV.OTLP_ENDPOINT)


#: prefixes of the variables CI systems set for a job (GitHub Actions, Azure Pipelines, GitLab CI)
CI_VARIABLE_PREFIXES = ("GITHUB_", "RUNNER_", "BUILD_", "SYSTEM_", "AGENT_", "CI_", "GITLAB_")
#: single variables of the same kind (``TF_BUILD``: Azure Pipelines; ``MODELPILOT_DOTENV``: a dotenv file for outputs)
CI_VARIABLES = ("CI", "TF_BUILD", "MODELPILOT_DOTENV")


def ci_variables() -> dict[str, str]:
    """Return the CI system's job variables (lineage, outputs, step summaries); empty outside CI."""
    return {
        name: value
        for name, value in os.environ.items()
        if value and (name.startswith(CI_VARIABLE_PREFIXES) or name in CI_VARIABLES)
    }


def azure_monitor_connection_string() -> str | None:
    """Return the Application Insights connection string the Azure Monitor distro exports to, if set."""
    return app_setting(ENV.APPLICATIONINSIGHTS_CONNECTION_STRING)


def in_function_runtime() -> bool:
    """True inside a Lambda function or an Azure Functions worker (their runtimes set these variables)."""
    return bool(os.environ.get(ENV.LAMBDA_FUNCTION_NAME) or os.environ.get(ENV.FUNCTIONS_WORKER_RUNTIME))


def xray_trace_header() -> str:
    """Return this invocation's X-Ray trace header (Lambda sets it per invocation), or ``""``."""
    return os.environ.get(ENV.XRAY_TRACE_HEADER, "")
