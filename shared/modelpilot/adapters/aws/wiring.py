"""The AWS backend's adapters: DynamoDB registry, S3 artifacts, EventBridge, SNS, SSM / Secrets Manager, CloudWatch,
and Prometheus when ``MODELPILOT_PROMETHEUS_URL`` is set (its credentials from the secret
``MODELPILOT_PROMETHEUS_SECRET`` names, read through the ``SecretsProvider``).

Resource names come from settings (environment variables set by ``template.yaml``
with ``!Ref``); ``--endpoint-url`` / ``AWS_ENDPOINT_URL`` points every client at an
emulator, ``--region`` and ``--profile`` work as in the AWS CLI. Every boto3 client
comes from one :func:`client_factory` (one session, one retry and timeout
configuration) and is built once per container, on first use, never at import time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from modelpilot.exceptions import InvalidInput
from modelpilot.policy.loader import POLICY_NAME
from modelpilot.ports import Adapters

if TYPE_CHECKING:
    from modelpilot.config import Settings
    from modelpilot.ports import PackageUploader, TrafficRouter

__all__ = [
    "ClientFactory",
    "build_adapters",
    "build_uploader",
    "caller_identity",
    "client_factory",
    "traffic_routers",
]

#: ``make("s3")`` returns the (cached) boto3 client of a service
ClientFactory = Callable[[str], Any]


def client_factory(settings: Settings) -> ClientFactory:
    """Return ``make(service)`` building boto3 clients for ``settings`` (endpoint, region, profile, retries)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=settings.aws_region, profile_name=settings.aws_profile)
    config = Config(
        retries={"max_attempts": 4, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
        user_agent_extra="modelpilot",
    )

    @functools.cache
    def make(service: str) -> Any:
        return session.client(service, endpoint_url=settings.aws_endpoint_url, config=config)

    return make


def caller_identity(settings: Settings, *, clients: ClientFactory | None = None) -> str:
    """Return the canonical IAM principal of the caller's credentials (``sts get-caller-identity``)."""
    from modelpilot.adapters.aws.identity import caller_principal

    return caller_principal((clients or client_factory(settings))("sts"))


def build_uploader(settings: Settings, *, clients: ClientFactory | None = None) -> PackageUploader:
    """Return the S3 uploader of ``modelpilot push`` (it needs no registry table)."""
    from modelpilot.adapters.aws.upload import S3PackageUploader

    # SSE: the bucket's default encryption applies, as for the artifact store
    return S3PackageUploader((clients or client_factory(settings))("s3"), sse=None)


def traffic_routers(settings: Settings, make: ClientFactory) -> list[TrafficRouter]:
    """Return the SageMaker endpoint and Lambda alias routers of ``MODELPILOT_TRAFFIC_ROUTES`` (lazy clients)."""
    from modelpilot.adapters.aws.traffic import LambdaAliasRouter, SageMakerEndpointRouter
    from modelpilot.adapters.routes import parse_routes

    routers: list[TrafficRouter] = []
    for route in parse_routes(settings.traffic_routes, routers=frozenset({"sagemaker", "lambda"})):
        target = route.target
        if route.router == "sagemaker":
            routers.append(
                SageMakerEndpointRouter(
                    route.model,
                    route.environment,
                    target["endpoint"],
                    variant=target.get("variant", "v{version}"),
                    factory=lambda: make("sagemaker"),
                )
            )
        else:
            routers.append(
                LambdaAliasRouter(
                    route.model,
                    route.environment,
                    target["function"],
                    target["alias"],
                    versions=target.get("versions", "{version}"),
                    factory=lambda: make("lambda"),
                )
            )
    return routers


def build_adapters(settings: Settings, *, clients: ClientFactory | None = None) -> Adapters:
    """Return the adapters of the AWS backend for ``settings``."""
    from modelpilot.adapters.aws.alarm_tags import CloudWatchAlarmTags
    from modelpilot.adapters.aws.artifacts import S3ArtifactStore
    from modelpilot.adapters.aws.cloudwatch import CloudWatchMetricsSource
    from modelpilot.adapters.aws.events import EventBridgePublisher, SnsNotifier
    from modelpilot.adapters.aws.idempotency import DynamoDbIdempotencyStore
    from modelpilot.adapters.aws.registry import DynamoDbRegistry
    from modelpilot.adapters.aws.sagemaker_sync import SageMakerLifecycleSync
    from modelpilot.adapters.aws.secrets import PowertoolsSecrets
    from modelpilot.adapters.aws.stepfunctions import StepFunctionsFanOutStarter
    from modelpilot.adapters.log import LogNotifier, LogPublisher
    from modelpilot.adapters.prometheus import prometheus_sources

    if not settings.registry_table:
        raise InvalidInput(
            "the AWS backend needs the registry table: "
            "set MODELPILOT_REGISTRY_TABLE (the stack output RegistryTableName)"
        )
    make = clients or client_factory(settings)
    bucket = settings.model_bucket
    secrets = PowertoolsSecrets(make("ssm"), make("secretsmanager"))
    return Adapters(
        registry=DynamoDbRegistry(settings.registry_table, make("dynamodb")),
        # SSE: the model bucket's default encryption (SSE-KMS with the stack's key, template.yaml) applies to
        # every write; asking for "aws:kms" without a key id here would pick the AWS-managed key instead
        artifacts=S3ArtifactStore(make("s3"), sse=None),
        publisher=EventBridgePublisher(settings.event_bus, make("events")) if settings.event_bus else LogPublisher(),
        notifier=SnsNotifier(settings.topic_arn, make("sns"))
        if settings.topic_arn
        else LogNotifier(events_logged=not settings.event_bus),  # with no bus the LogPublisher logs each event
        idempotency=(
            DynamoDbIdempotencyStore(settings.idempotency_table, make("dynamodb"))
            if settings.idempotency_table
            else None
        ),
        secrets=secrets,
        # the SLO engine's sources and the alarm function's tag reader: their clients are built on first use;
        # Prometheus (MODELPILOT_PROMETHEUS_URL) with its credentials from Secrets Manager / SSM, cached there
        metrics_sources={
            "cloudwatch": CloudWatchMetricsSource(factory=lambda: make("cloudwatch")),
            **prometheus_sources(settings.prometheus_url, secret=settings.prometheus_secret, secrets=secrets),
        },
        alarm_tags=CloudWatchAlarmTags(factory=lambda: make("cloudwatch")),
        # write-back of promotions, blocks and rollbacks to SageMaker model packages (policy: sagemaker)
        lifecycle_sync={"sagemaker": SageMakerLifecycleSync(factory=lambda: make("sagemaker"))},
        uploader=build_uploader(settings, clients=make),
        # a drift window above MODELPILOT_DRIFT_FANOUT_BYTES starts the drift state machine (client built on first use)
        drift_fanout=(
            StepFunctionsFanOutStarter(
                settings.drift_state_machine,
                lambda: make("stepfunctions"),
                min_bytes=settings.drift_fanout_bytes,
            )
            if settings.drift_state_machine
            else None
        ),
        # canary splits routed to SageMaker endpoints / Lambda aliases besides the serving manifest
        traffic_routers=traffic_routers(settings, make),
        data_root=settings.data_root or (f"s3://{bucket}/monitoring" if bucket else ""),
        serving_root=settings.serving_root,
        policy_location=settings.policy,
        default_policy_location=f"s3://{bucket}/{POLICY_NAME}" if bucket else None,
    )
