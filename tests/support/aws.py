"""AWS test support: a moto server on 127.0.0.1 (ephemeral port) and resources as template.yaml defines them.

One server per test process (so one per xdist worker), started on first use and
stopped when the session ends. Requests are served one at a time (DynamoDB
applies each request atomically; moto's in-memory backends do not lock on their
own), while clients still race each other over HTTP. Every test gets its own
table and bucket names, so tests never see each other's state.
"""

from __future__ import annotations

import copy
import functools
import logging
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}

_lock = threading.Lock()
_server: dict[str, Any] = {}


class _Serialized:
    """A WSGI wrapper that serves one request at a time (each AWS request is atomic)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        with self.lock:
            try:
                return list(self.app(environ, start_response))
            finally:
                forget_tracked_models()


def forget_tracked_models() -> None:
    """Drop moto's references to the DynamoDB objects it has created so far.

    moto appends every model object it creates to a class-level list (``instances_tracked``,
    read only by its reset API), and ``TransactWriteItems`` deep-copies each table it touches
    as a backup before applying the transaction. Without this every transaction leaves a copy
    of the whole table behind for the life of the process: memory grows with transactions x
    table size (the replay benchmark at ``--n 1000`` reached 23.8 GB). The tables keep their
    items; only the tracker lets go of them.
    """
    from moto.core.base_backend import model_data

    for model in model_data["dynamodb"].values():
        model.instances_tracked.clear()


def _start() -> str:
    try:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
        from werkzeug.serving import make_server
    except ImportError as exc:  # pragma: no cover - a broken environment
        pytest.fail(f"moto[server] is not installed ({exc}); install the dev extras: pip install -e '.[dev]'")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = _Serialized(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    thread = threading.Thread(target=server.serve_forever, name="moto-server", daemon=True)
    thread.start()
    _server.update(server=server, thread=thread, endpoint=f"http://127.0.0.1:{server.server_address[1]}")
    return str(_server["endpoint"])


def _stop() -> None:
    server = _server.pop("server", None)
    if server is not None:
        server.shutdown()
        _server.pop("thread").join(timeout=10)
        _server.clear()


def moto_endpoint(request: pytest.FixtureRequest) -> str:
    """Return the endpoint of this process's moto server, starting it on first use."""
    with _lock:
        if "endpoint" not in _server:
            _start()
            request.config.add_cleanup(_stop)
        return str(_server["endpoint"])


@functools.cache
def client(service: str, endpoint: str) -> Any:
    """Return a boto3 client of ``service`` bound to the moto server (cached: clients are thread-safe)."""
    return boto3.session.Session(region_name=REGION, **CREDENTIALS).client(service, endpoint_url=endpoint)


# -- resources as template.yaml defines them ---------------------------------------------
class _CfnLoader(yaml.SafeLoader):
    """Reads CloudFormation YAML; intrinsic tags (!Ref, !GetAtt, !Sub) load as their plain value."""


def _any_tag(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_scalar(node)  # type: ignore[arg-type]


_CfnLoader.add_multi_constructor("!", _any_tag)


@functools.cache
def template() -> dict[str, Any]:
    """Return template.yaml as a dict."""
    return yaml.load((REPO / "template.yaml").read_text(encoding="utf-8"), Loader=_CfnLoader)


def resource(name: str) -> dict[str, Any]:
    """Return the ``Properties`` of one resource of template.yaml."""
    return copy.deepcopy(dict(template()["Resources"][name]["Properties"]))


def unique(prefix: str) -> str:
    """Return a fresh resource name."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def create_table(ddb: Any, logical_id: str, name: str) -> str:
    """Create table ``name`` with the keys and billing mode of ``logical_id`` in template.yaml."""
    props = resource(logical_id)
    ddb.create_table(
        TableName=name,
        KeySchema=props["KeySchema"],
        AttributeDefinitions=props["AttributeDefinitions"],
        BillingMode=props["BillingMode"],
    )
    ttl = props.get("TimeToLiveSpecification")
    if ttl:
        ddb.update_time_to_live(TableName=name, TimeToLiveSpecification=ttl)
    return name


def create_bucket(s3: Any, name: str) -> str:
    """Create bucket ``name`` with the versioning, encryption and public-access settings of ModelBucket."""
    props = resource("ModelBucket")
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration=props["VersioningConfiguration"])
    rules = [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"}, "BucketKeyEnabled": True}]
    s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules})
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"])
    return name


# -- contract-suite factories ---------------------------------------------------------------
def make_registry(request: pytest.FixtureRequest) -> Any:
    """Return a DynamoDB registry on a fresh table on moto's server."""
    from modelpilot.adapters.aws.registry import DynamoDbRegistry

    endpoint = moto_endpoint(request)
    ddb = client("dynamodb", endpoint)
    return DynamoDbRegistry(create_table(ddb, "RegistryTable", unique("registry")), ddb)


def make_artifact_store(request: pytest.FixtureRequest) -> tuple[Any, str]:
    """Return ``(S3 artifact store, base URI)`` on a fresh bucket on moto's server."""
    from modelpilot.adapters.aws.artifacts import S3ArtifactStore

    endpoint = moto_endpoint(request)
    s3 = client("s3", endpoint)
    bucket = create_bucket(s3, unique("models"))
    return S3ArtifactStore(s3, sse="aws:kms"), f"s3://{bucket}/base"


# -- a whole stack, wired through the environment as Lambda sees it ---------------------------
@dataclass
class Stack:
    """The resources of one test's stack on moto, and clients to inspect them."""

    endpoint: str
    registry_table: str
    idempotency_table: str
    bucket: str
    event_bus: str
    topic_arn: str
    queue_url: str

    def client(self, service: str) -> Any:
        """Return a boto3 client bound to the moto server."""
        return client(service, self.endpoint)


def create_stack(request: pytest.FixtureRequest) -> Stack:
    """Create every resource a function needs: tables, bucket, bus (with a catch-all rule to a queue), topic."""
    endpoint = moto_endpoint(request)
    ddb, s3 = client("dynamodb", endpoint), client("s3", endpoint)
    events, sns, sqs = client("events", endpoint), client("sns", endpoint), client("sqs", endpoint)
    bus = unique("events")
    events.create_event_bus(Name=bus)
    queue_url = sqs.create_queue(QueueName=unique("bus-tap"))["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="tap", EventBusName=bus, EventPattern='{"source": ["modelpilot"]}')
    events.put_targets(Rule="tap", EventBusName=bus, Targets=[{"Id": "queue", "Arn": queue_arn}])
    return Stack(
        endpoint=endpoint,
        registry_table=create_table(ddb, "RegistryTable", unique("registry")),
        idempotency_table=create_table(ddb, "IdempotencyTable", unique("idempotency")),
        bucket=create_bucket(s3, unique("models")),
        event_bus=bus,
        topic_arn=sns.create_topic(Name=unique("notifications"))["TopicArn"],
        queue_url=queue_url,
    )


def stack_environment(stack: Stack) -> dict[str, str]:
    """Return the environment variables template.yaml gives every function, for ``stack``."""
    return {
        "MODELPILOT_BACKEND": "aws",
        "MODELPILOT_REGISTRY_TABLE": stack.registry_table,
        "MODELPILOT_IDEMPOTENCY_TABLE": stack.idempotency_table,
        "MODELPILOT_MODEL_BUCKET": stack.bucket,
        "MODELPILOT_EVENT_BUS": stack.event_bus,
        "MODELPILOT_TOPIC_ARN": stack.topic_arn,
        "MODELPILOT_SERVING_ROOT": f"s3://{stack.bucket}/monitoring",
        "AWS_ENDPOINT_URL": stack.endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "POWERTOOLS_SERVICE_NAME": "modelpilot",
        "POWERTOOLS_METRICS_NAMESPACE": "ModelPilot",
        "POWERTOOLS_DEV": "false",
    }


def benchmark_stack(endpoint: str) -> Stack:
    """Create the resources template.yaml gives the functions on the moto server at ``endpoint`` and put their
    environment in this process's (the benchmarks run the handlers in-process, as Lambda would)."""
    import os

    ddb, s3, events, sns = (client(s, endpoint) for s in ("dynamodb", "s3", "events", "sns"))
    bus = unique("events")
    events.create_event_bus(Name=bus)
    stack = Stack(
        endpoint=endpoint,
        registry_table=create_table(ddb, "RegistryTable", unique("registry")),
        idempotency_table=create_table(ddb, "IdempotencyTable", unique("idem")),
        bucket=create_bucket(s3, unique("models")),
        event_bus=bus,
        topic_arn=sns.create_topic(Name="bench")["TopicArn"],
        queue_url="",
    )
    os.environ.update(stack_environment(stack))
    return stack


def upload_package(stack: Stack, root: Path, prefix: str) -> str:
    """Upload a package folder under ``prefix`` of the model bucket, manifest last; return the manifest key."""
    s3 = stack.client("s3")
    files = sorted(p for p in Path(root).rglob("*") if p.is_file())
    manifest = Path(root) / "modelpilot.json"
    for path in [p for p in files if p != manifest] + [manifest]:
        s3.put_object(Bucket=stack.bucket, Key=f"{prefix}/{path.relative_to(root).as_posix()}", Body=path.read_bytes())
    return f"{prefix}/modelpilot.json"


POLICY = """\
version: 1
environments: [dev, prod]
defaults:
  rollback:
    prod: {alarms: ["modelpilot/*"]}
"""


def put_policy(stack: Stack, text: str = POLICY) -> None:
    """Store the policy file where the AWS backend reads it (``s3://<bucket>/modelpilot.yaml``)."""
    stack.client("s3").put_object(Bucket=stack.bucket, Key="modelpilot.yaml", Body=text.encode())


def make_idempotency_store(request: pytest.FixtureRequest) -> Any:
    """Return a DynamoDB idempotency store on a fresh table (IdempotencyTable of template.yaml) on moto's server."""
    from modelpilot.adapters.aws.idempotency import DynamoDbIdempotencyStore

    endpoint = moto_endpoint(request)
    ddb = client("dynamodb", endpoint)
    return DynamoDbIdempotencyStore(create_table(ddb, "IdempotencyTable", unique("idempotency")), ddb)
