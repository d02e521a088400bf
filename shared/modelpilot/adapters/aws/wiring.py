"""Wires the AWS backend: DynamoDB registry, S3 artifacts, EventBridge, SNS, SSM / Secrets Manager.

Resource names come from settings (environment variables set by ``template.yaml``
with ``!Ref``); ``--endpoint-url`` / ``AWS_ENDPOINT_URL`` points every client at an
emulator, ``--region`` and ``AWS_PROFILE`` work as in the AWS CLI. Clients are
built here, once per container, never at import time.
"""

from __future__ import annotations

import functools
import importlib.util
from typing import TYPE_CHECKING, Any

from modelpilot.exceptions import InvalidInput
from modelpilot.service.messagebus import Services

if TYPE_CHECKING:
    from collections.abc import Callable

    from modelpilot.config import Settings
    from modelpilot.policy import Policy
    from modelpilot.ports import ArtifactStore

__all__ = ["POLICY_KEY", "build_services", "client_factory", "policy_loader"]

#: where the policy file lives in the model bucket unless ``MODELPILOT_POLICY`` names another place
POLICY_KEY = "modelpilot.yaml"
CLOUDWATCH_MODULE = "modelpilot.adapters.aws.cloudwatch"


def client_factory(settings: Settings) -> Callable[[str], Any]:
    """Return ``make(service)`` building boto3 clients for ``settings`` (endpoint, region, retries)."""
    import boto3
    from botocore.config import Config

    session = boto3.session.Session(region_name=settings.aws_region)
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


def policy_loader(settings: Settings, artifacts: ArtifactStore) -> Callable[[], Policy]:
    """Return a cached loader: ``settings.policy`` (an ``s3://`` URI or a file), else
    ``s3://<model bucket>/modelpilot.yaml``, else the default policy."""
    from modelpilot.exceptions import ArtifactMissing
    from modelpilot.policy import default_policy, load_policy, load_policy_text

    @functools.cache
    def load() -> Policy:
        where = settings.policy or (f"s3://{settings.model_bucket}/{POLICY_KEY}" if settings.model_bucket else None)
        if where is None:
            return default_policy()
        if not where.startswith("s3://"):
            return load_policy(where)
        try:
            return load_policy_text(artifacts.read_bytes(where).decode(), source=where)
        except ArtifactMissing:
            if settings.policy:
                raise
            return default_policy()

    return load


def build_services(settings: Settings, **overrides: Any) -> Services:
    """Return services backed by AWS for ``settings``; keyword overrides replace adapters."""
    from modelpilot.adapters.aws.artifacts import S3ArtifactStore
    from modelpilot.adapters.aws.events import EventBridgePublisher, LoggingPublisher, SnsNotifier
    from modelpilot.adapters.aws.registry import DynamoDbRegistry
    from modelpilot.adapters.aws.secrets import PowertoolsSecrets
    from modelpilot.adapters.local.events import JsonlNotifier

    make = overrides.pop("client_factory", None) or client_factory(settings)
    if "registry" not in overrides and not settings.registry_table:
        raise InvalidInput(
            "the AWS backend needs the registry table: set MODELPILOT_REGISTRY_TABLE "
            "(the stack output RegistryTableName)"
        )
    parts: dict[str, Any] = {}
    if "registry" not in overrides:
        parts["registry"] = DynamoDbRegistry(str(settings.registry_table), make("dynamodb"))
    # SSE: the model bucket's default encryption (SSE-KMS with the stack's key, template.yaml) applies to
    # every write; asking for "aws:kms" without a key id here would pick the AWS-managed key instead
    artifacts = overrides.get("artifacts") or S3ArtifactStore(make("s3"), sse=None)
    parts["artifacts"] = artifacts
    parts["publisher"] = (
        EventBridgePublisher(settings.event_bus, make("events")) if settings.event_bus else LoggingPublisher()
    )
    parts["notifier"] = (
        SnsNotifier(settings.topic_arn, make("sns"))
        if settings.topic_arn
        else JsonlNotifier(f"{settings.home}/notifications.jsonl")
    )
    parts["policy_loader"] = policy_loader(settings, artifacts)
    parts["secrets"] = PowertoolsSecrets(make("ssm"), make("secretsmanager"))
    if settings.idempotency_table:
        from modelpilot.adapters.aws.idempotency import DynamoDbIdempotencyStore

        parts["idempotency"] = DynamoDbIdempotencyStore(settings.idempotency_table, make("dynamodb"))
    parts["data_root"] = settings.data_root or (
        f"s3://{settings.model_bucket}/monitoring" if settings.model_bucket else ""
    )
    if importlib.util.find_spec(CLOUDWATCH_MODULE) is not None:  # the SLO engine's source; its client is lazy
        cloudwatch = importlib.import_module(CLOUDWATCH_MODULE)
        parts["metrics_sources"] = {
            "cloudwatch": cloudwatch.CloudWatchMetricsSource(
                region=settings.aws_region, endpoint_url=settings.aws_endpoint_url
            )
        }
    from modelpilot.adapters.aws.alarm_tags import CloudWatchAlarmTags

    # the alarm function reads an alarm's tags when its name names no model; the client is built on first use
    alarm_tags = CloudWatchAlarmTags(factory=lambda: make("cloudwatch"))
    parts["extras"] = {"client_factory": make, "settings": settings, "alarm_tags": alarm_tags}
    parts.update(overrides)
    return Services(**parts)
