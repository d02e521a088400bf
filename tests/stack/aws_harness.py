"""The AWS stack harness: template.yaml as ``sam deploy`` would create it, on moto, under each function's own role.

1. **Translate.** ``template.yaml`` goes through ``aws-sam-translator`` (the library ``sam`` uses)
   with the deploy's parameters; ``CodeUri``/``ContentUri`` point at zips in an artifacts bucket,
   as ``sam package`` makes them.
2. **Create.** The resources moto's CloudFormation can create are created by a CloudFormation
   stack on moto's server. The rest (EventBridge Scheduler schedules, SNS subscriptions, queue and
   bucket policies, CloudWatch alarms) are created by the harness through their APIs from the
   template's own properties, with the intrinsics resolved against the stack (``UNSUPPORTED``).
   The HTTP API is not created: requests are routed by the deployed OpenAPI definition. Composite
   alarms, which moto lacks, are evaluated by the harness from their ``AlarmRule``.
3. **Run as the function.** Each function's real handler runs in this process with the environment
   read back from the deployed function (``GetFunctionConfiguration``), Lambda's own variables, and
   the credentials of the function's execution role (``sts:AssumeRole``, the harness standing in
   for the Lambda service). moto's IAM enforcement is on from then on, so a call the role may not
   make fails as it would on AWS (see ``tests/stack/moto_server.py`` for what the server adds).
   Each function keeps one warm container (its bus) across invocations; the first invocation of a
   function imports its module with ``AWS_LAMBDA_FUNCTION_NAME`` set, which runs its init phase.
4. **Route like the stack.** Service events (S3 "Object Created", SageMaker state changes,
   CloudWatch alarm state changes) are matched against every deployed rule with
   ``TestEventPattern`` and handed to the rules' targets; schedules invoke their target with their
   ``Input`` filled in; asynchronous invocations are retried as Lambda retries them and, when every
   attempt raised, the event goes to the function's dead-letter queue, sent with the function's
   role like Lambda sends it.
"""

from __future__ import annotations

import ast
import contextlib
import copy
import importlib
import io
import json
import operator
import os
import re
import subprocess
import sys
import time
import urllib.request
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"
#: resource types moto's CloudFormation cannot create; the harness creates them from their properties
UNSUPPORTED = {
    "AWS::Scheduler::Schedule",
    "AWS::ApiGatewayV2::Api",
    "AWS::ApiGatewayV2::Stage",
    "AWS::SQS::QueuePolicy",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::Subscription",
    "AWS::CloudWatch::Alarm",
    "AWS::CloudWatch::CompositeAlarm",
}
#: Lambda retries a failed asynchronous invocation twice (the default MaximumRetryAttempts)
ASYNC_RETRIES = 2
_NO_VALUE = object()


# -- the server -------------------------------------------------------------------------------
class MotoProcess:
    """tests/stack/moto_server.py in a process of its own, on 127.0.0.1 and an ephemeral port."""

    def __init__(self, work: Path) -> None:
        port_file = work / "moto.port"
        self.log = (work / "moto.log").open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.stack.moto_server", str(port_file)],
            cwd=REPO,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "false"},
        )
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the harness's moto server did not start: {(work / 'moto.log').read_text()}")
            time.sleep(0.05)
        self.endpoint = f"http://127.0.0.1:{int(port_file.read_text())}"
        self.operator_keys: dict[str, str] = {}

    def post(self, path: str, data: bytes = b"", method: str = "POST") -> Any:
        headers = {"Content-Type": "application/octet-stream"}  # not a form: moto reads the raw body
        request = urllib.request.Request(self.endpoint + path, data=data, method=method, headers=headers)
        with urllib.request.urlopen(request, timeout=30) as reply:
            return json.loads(reply.read() or b"null")

    def enforce_iam(self) -> None:
        """From now on every request is authenticated and authorized (moto's INITIAL_NO_AUTH_ACTION_COUNT = 0)."""
        self.post("/moto-api/reset-auth", b"0")

    def relax_iam(self) -> None:
        """Stop enforcing while a stack is created (CloudFormation acts as the deployer, Lambda assumes roles)."""
        self.post("/moto-api/reset-auth", b"inf")

    def operator(self) -> dict[str, str]:
        """The keys of the operator, an IAM user allowed everything (created on first use, IAM relaxed)."""
        if not self.operator_keys:
            session = boto3.session.Session(
                region_name=REGION, aws_access_key_id="setup", aws_secret_access_key="setup"
            )
            iam = session.client("iam", endpoint_url=self.endpoint)
            iam.create_user(UserName="operator")
            document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
            iam.put_user_policy(UserName="operator", PolicyName="administrator", PolicyDocument=json.dumps(document))
            key = iam.create_access_key(UserName="operator")["AccessKey"]
            self.operator_keys = {
                "aws_access_key_id": key["AccessKeyId"],
                "aws_secret_access_key": key["SecretAccessKey"],
            }
        return self.operator_keys

    def denials(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.post("/_harness/denials", method="GET")
        return result

    def clear_denials(self) -> None:
        self.post("/_harness/denials", method="DELETE")

    def calls(self) -> list[dict[str, str]]:
        """Every call the server authorized since the last clear: access key, IAM action, resource."""
        result: list[dict[str, str]] = self.post("/_harness/calls", method="GET")
        return result

    def clear_calls(self) -> None:
        self.post("/_harness/calls", method="DELETE")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


# -- translation --------------------------------------------------------------------------------
def sam_translate(parameters: dict[str, str], artifacts_bucket: str) -> dict[str, Any]:
    """Return template.yaml transformed by aws-sam-translator, code locations as ``sam package`` leaves them."""
    from samtranslator.translator.transform import transform
    from samtranslator.yaml_helper import yaml_parse

    template = yaml_parse((REPO / "template.yaml").read_text(encoding="utf-8"))
    template["Globals"]["Function"]["CodeUri"] = f"s3://{artifacts_bucket}/functions.zip"
    for resource in template["Resources"].values():
        if resource["Type"] == "AWS::Serverless::LayerVersion":
            resource["Properties"]["ContentUri"] = f"s3://{artifacts_bucket}/layer.zip"
        if resource["Type"] == "AWS::Serverless::StateMachine" and "DefinitionUri" in resource["Properties"]:
            # `sam package` uploads the definition file; the translator then reads it back as the definition
            path = REPO / resource["Properties"].pop("DefinitionUri")
            resource["Properties"]["Definition"] = json.loads(path.read_text(encoding="utf-8"))

    class _NoManagedPolicies:
        def load(self) -> dict[str, str]:
            return {}

    saved = os.environ.get("AWS_DEFAULT_REGION")
    os.environ["AWS_DEFAULT_REGION"] = REGION  # the translator reads the region of the deploy
    try:
        return transform(template, dict(parameters), _NoManagedPolicies())  # type: ignore[no-any-return]
    finally:
        if saved is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
        else:
            os.environ["AWS_DEFAULT_REGION"] = saved


def _refs(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
                if not isinstance(value, str):
                    found |= _refs(value[1])
            else:
                found |= _refs(value)
    elif isinstance(node, list):
        for item in node:
            found |= _refs(item)
    return found


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# -- the stack ----------------------------------------------------------------------------------
@dataclass
class Function:
    """One deployed function and what Lambda gives it."""

    logical_id: str
    name: str
    arn: str
    module: str
    environment: dict[str, str]
    role_name: str
    role_arn: str
    dead_letter_arn: str | None
    credentials: dict[str, str] = field(default_factory=dict)


class Denied(Exception):
    """The role under watch was refused a call (the permission test stops a story at its first denial)."""


@dataclass
class Invocation:
    """What happened to one asynchronous invocation: the reply, or the error of every attempt."""

    function: str
    event: dict[str, Any]
    reply: dict[str, Any] | None = None
    errors: list[str] = field(default_factory=list)
    dead_lettered: bool = False
    #: the story meant it to fail (the event parked in the failure queue)
    expected: bool = False

    @property
    def failed(self) -> bool:
        return bool(self.errors) or "failed" in self.statuses

    @property
    def statuses(self) -> list[str]:
        if self.reply is None:
            return []
        return [str(r.get("status")) for r in self.reply.get("results", [self.reply])]


@dataclass
class CompositeAlarm:
    """A CloudWatch composite alarm (moto has none): its rule is evaluated by the harness."""

    name: str
    rule: str
    tags: dict[str, str]
    state: str = "INSUFFICIENT_DATA"

    @property
    def arn(self) -> str:
        return f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{self.name}"


class AwsStack:
    """One deployed stack on the harness's moto server (see the module docstring)."""

    def __init__(self, server: MotoProcess, work: Path, *, name: str, parameters: dict[str, str] | None = None) -> None:
        self.server = server
        self.work = work
        self.name = name
        self.parameters = dict(parameters or {})
        self.functions: dict[str, Function] = {}
        self.composites: dict[str, CompositeAlarm] = {}
        self.routes: list[tuple[str, re.Pattern[str], str, str]] = []
        #: the authorization of each route ("AWS_IAM", or "NONE" for a route the deployed definition leaves open)
        self.route_auth: dict[tuple[str, str], str] = {}
        self.physical: dict[str, str] = {}
        self.types: dict[str, str] = {}
        self._containers: dict[str, Any] = {}
        self.invocations: list[Invocation] = []
        #: the access key of the role under watch: an invocation after which it was denied raises Denied
        self.watch: str | None = None
        #: resources of the template the harness does not create, and why
        self.skipped: dict[str, str] = {}
        self.schedules: dict[str, dict[str, Any]] = {}
        #: the modelpilot.yaml the stories last wrote (None: deleted; "unknown" until one is written)
        self.policy_text: str | None = "unknown"

    # -- clients --------------------------------------------------------------------------------
    def client(self, service: str, credentials: dict[str, str] | None = None) -> Any:
        """A boto3 client on the harness's server, signed by the operator (or by ``credentials``)."""
        keys = credentials or self.server.operator()
        return boto3.session.Session(region_name=REGION, **keys).client(service, endpoint_url=self.server.endpoint)

    # -- deploy ---------------------------------------------------------------------------------
    def deploy(self) -> AwsStack:
        """Create the stack (see the module docstring); IAM is enforced once this returns."""
        self.server.relax_iam()
        s3 = self.client("s3")
        artifacts = f"{self.name}-artifacts"
        s3.create_bucket(Bucket=artifacts)
        code = {p.name: p.read_bytes() for p in sorted((REPO / "functions" / "aws").glob("*.py"))}
        s3.put_object(Bucket=artifacts, Key="functions.zip", Body=_zip(code))
        s3.put_object(Bucket=artifacts, Key="layer.zip", Body=_zip({"python/README": b"the core layer"}))
        self.template = sam_translate(self.parameters, artifacts)
        created, deferred = self._split(copy.deepcopy(self.template))
        cfn = self.client("cloudformation")
        cfn.create_stack(
            StackName=self.name,
            TemplateBody=json.dumps(created),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in self.parameters.items()],
            Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        )
        status = cfn.describe_stacks(StackName=self.name)["Stacks"][0]["StackStatus"]
        if status != "CREATE_COMPLETE":
            raise RuntimeError(f"stack {self.name}: {status}")
        for resource in cfn.describe_stack_resources(StackName=self.name)["StackResources"]:
            self.physical[resource["LogicalResourceId"]] = resource.get("PhysicalResourceId") or ""
            self.types[resource["LogicalResourceId"]] = resource["ResourceType"]
        # moto gives the event bus no physical id; CloudFormation's Ref of AWS::Events::EventBus is its name
        for logical, resource in self.template["Resources"].items():
            if resource["Type"] == "AWS::Events::EventBus":
                self.physical[logical] = self.resolve(resource["Properties"]["Name"])
        pending = dict(deferred)
        while pending:  # in dependency order (the API's stage and permissions after the API)
            ready = [k for k, v in pending.items() if not (_refs(v) & set(pending))]
            if not ready:
                raise RuntimeError(f"circular references among {sorted(pending)}")
            for logical in ready:
                self._create(logical, pending.pop(logical))
        for logical, resource in self.template["Resources"].items():
            if resource["Type"] == "AWS::IAM::Role":
                self._role_policies(logical, resource)
        for logical, resource in self.template["Resources"].items():
            if resource["Type"] == "AWS::Lambda::Function":
                self.functions[logical] = self._function(logical, resource)
        self.server.enforce_iam()
        return self

    def _split(self, template: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        resources = template["Resources"]
        deferred = {k for k, v in resources.items() if v["Type"] in UNSUPPORTED}
        changed = True
        while changed:  # and whatever refers to them (the API's invoke permissions)
            changed = False
            for logical, resource in resources.items():
                if logical not in deferred and _refs(resource) & deferred:
                    deferred.add(logical)
                    changed = True
        bus_names = {k: v["Properties"]["Name"] for k, v in resources.items() if v["Type"] == "AWS::Events::EventBus"}
        text = json.dumps({k: v for k, v in resources.items() if k not in deferred})
        for logical, name in bus_names.items():  # see deploy(): moto's Ref of an event bus is not its name
            text = text.replace(json.dumps({"Ref": logical}), json.dumps(name))
        created = {k: v for k, v in template.items() if k not in {"Resources", "Outputs"}}
        created["Resources"] = json.loads(text)
        return created, {k: resources[k] for k in resources if k in deferred}

    def _role_policies(self, logical: str, resource: dict[str, Any]) -> None:
        """Put the role's inline policies, as the template defines them, through IAM's API.

        moto's CloudFormation stores a role's inline policy documents in a form its own IAM evaluator
        cannot read (a Python repr, not JSON); through PutRolePolicy they are stored as IAM stores them.
        """
        iam = self.client("iam")
        for policy in self.resolve(resource["Properties"].get("Policies", [])):
            # IAM reads a document without Version as 2008-10-17; moto refuses one, so it is given the current one
            document = {"Version": "2012-10-17", **policy["PolicyDocument"]}
            iam.put_role_policy(
                RoleName=self.physical[logical], PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document)
            )

    def role_policy(self, function: str) -> dict[str, dict[str, Any]]:
        """The inline policies of a function's role as IAM holds them now (name -> document)."""
        iam = self.client("iam")
        role = self.function(function).role_name
        return {
            name: iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            for name in iam.list_role_policies(RoleName=role)["PolicyNames"]
        }

    def put_role_policy(self, function: str, name: str, document: dict[str, Any]) -> None:
        """Redeploy one inline policy of a function's role (what a changed template does); no statements: none."""
        iam, role = self.client("iam"), self.function(function).role_name
        if not document["Statement"]:
            iam.delete_role_policy(RoleName=role, PolicyName=name)
            return
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=json.dumps(document))

    def _function(self, logical: str, resource: dict[str, Any]) -> Function:
        name = self.physical[logical]
        config = self.client("lambda").get_function_configuration(FunctionName=name)
        role_arn = config["Role"]
        dead_letter = resource["Properties"].get("DeadLetterConfig", {}).get("TargetArn")
        function = Function(
            logical_id=logical,
            name=name,
            arn=config["FunctionArn"],
            module=resource["Properties"]["Handler"].split(".")[0],
            # Lambda's variables are strings; moto's CloudFormation keeps a Number parameter's Ref as an int
            environment={k: str(v) for k, v in config.get("Environment", {}).get("Variables", {}).items()},
            role_name=role_arn.rsplit("/", 1)[1],
            role_arn=role_arn,
            dead_letter_arn=self.resolve(dead_letter) if dead_letter else None,
        )
        creds = self.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=name[:64])["Credentials"]
        function.credentials = {
            "aws_access_key_id": creds["AccessKeyId"],
            "aws_secret_access_key": creds["SecretAccessKey"],
            "aws_session_token": creds["SessionToken"],
        }
        return function

    # -- intrinsics -----------------------------------------------------------------------------
    def resolve(self, node: Any) -> Any:
        """Resolve CloudFormation intrinsics in ``node`` against the deployed stack."""
        if isinstance(node, list):
            return [v for v in (self.resolve(x) for x in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            if key == "Ref":
                return self._ref(value)
            if key == "Fn::GetAtt":
                logical, attribute = value if isinstance(value, list) else value.split(".", 1)
                return self._attribute(logical, attribute)
            if key == "Fn::Sub":
                text, extra = (value, {}) if isinstance(value, str) else (value[0], self.resolve(value[1]))
                return re.sub(r"\$\{([^}!]+)\}", lambda m: str(self._sub(m.group(1), extra)), text)
            if key == "Fn::Join":
                return value[0].join(str(x) for x in self.resolve(value[1]))
            if key == "Fn::Split":
                return str(self.resolve(value[1])).split(value[0])
            if key == "Fn::Select":
                return self.resolve(value[1])[int(self.resolve(value[0]))]
            if key == "Fn::If":
                return self.resolve(value[1] if self.condition(value[0]) else value[2])
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in node.items()) if v is not _NO_VALUE}

    def condition(self, name: str) -> bool:
        return bool(self._condition(self.template["Conditions"][name]))

    def _condition(self, node: Any) -> Any:
        if isinstance(node, dict) and len(node) == 1:
            ((key, value),) = node.items()
            if key == "Fn::Equals":
                return self._condition(value[0]) == self._condition(value[1])
            if key == "Fn::Not":
                return not self._condition(value[0])
            if key == "Fn::And":
                return all(self._condition(v) for v in value)
            if key == "Fn::Or":
                return any(self._condition(v) for v in value)
            if key == "Condition":
                return self.condition(value)
        return self.resolve(node)

    def parameter(self, name: str) -> Any:
        spec = self.template.get("Parameters", {}).get(name, {})
        value = self.parameters.get(name, spec.get("Default", ""))
        return str(value).split(",") if spec.get("Type") == "CommaDelimitedList" else value

    def _ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::StackName": self.name,
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": _NO_VALUE,
        }
        if name in pseudo:
            return pseudo[name]
        if name in self.template.get("Parameters", {}):
            return self.parameter(name)
        return self.physical[name]

    def _sub(self, name: str, extra: dict[str, Any]) -> Any:
        if name in extra:
            return extra[name]
        if "." in name:
            logical, attribute = name.split(".", 1)
            return self._attribute(logical, attribute)
        return self._ref(name)

    def _attribute(self, logical: str, attribute: str) -> str:
        kind = self.template["Resources"][logical]["Type"]
        physical = self.physical[logical]
        if kind == "AWS::SQS::Queue":
            if attribute == "QueueName":
                return physical.rsplit("/", 1)[1]
            return str(
                self.client("sqs").get_queue_attributes(QueueUrl=physical, AttributeNames=["QueueArn"])["Attributes"][
                    "QueueArn"
                ]
            )
        arns = {
            "AWS::Lambda::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{physical}",
            "AWS::IAM::Role": f"arn:aws:iam::{ACCOUNT}:role/{physical}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{physical}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{physical}",
            "AWS::KMS::Key": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{physical}",
            "AWS::Events::EventBus": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{physical}",
            "AWS::Events::Rule": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{physical}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{physical}:*",
            "AWS::SNS::Topic": physical,
        }
        if attribute == "Arn" and kind in arns:
            return arns[kind]
        raise KeyError(f"the harness does not know {logical}.{attribute} ({kind})")

    # -- what moto's CloudFormation cannot create ------------------------------------------------
    def _create(self, logical: str, resource: dict[str, Any]) -> None:
        if "Condition" in resource and not self.condition(resource["Condition"]):
            return
        kind = resource["Type"]
        if kind in {"AWS::ApiGatewayV2::Stage", "AWS::Lambda::Permission"}:
            self.skipped[logical] = "the harness routes HTTP requests itself (no API Gateway on moto)"
            return
        props = self.resolve(resource.get("Properties", {}))
        if kind == "AWS::Scheduler::Schedule":
            name = props.get("Name") or f"{self.name}-{logical}"
            scheduler = self.client("scheduler")
            scheduler.create_schedule(
                Name=name,
                ScheduleExpression=props["ScheduleExpression"],
                FlexibleTimeWindow=props["FlexibleTimeWindow"],
                Target=props["Target"],
                State=props.get("State", "ENABLED"),
            )
            self.physical[logical] = name
            # read back now: moto's signature check refuses EventBridge Scheduler's REST calls once IAM is enforced
            self.schedules[name] = scheduler.get_schedule(Name=name)
        elif kind == "AWS::SQS::QueuePolicy":
            for url in props["Queues"]:
                self.client("sqs").set_queue_attributes(
                    QueueUrl=url, Attributes={"Policy": json.dumps(props["PolicyDocument"])}
                )
        elif kind == "AWS::S3::BucketPolicy":
            # not applied: moto evaluates a bucket policy statement that has a Condition as a Deny whatever the
            # condition says, so the TLS-only policy would refuse every request (tests/stack/test_harness.py)
            self.skipped[logical] = "moto treats a conditioned bucket-policy statement as an unconditional Deny"
        elif kind == "AWS::SNS::Subscription":
            arn = self.client("sns").subscribe(
                TopicArn=props["TopicArn"], Protocol=props["Protocol"], Endpoint=props["Endpoint"]
            )
            self.physical[logical] = arn["SubscriptionArn"]
        elif kind == "AWS::CloudWatch::Alarm":
            self.put_alarm(props)
        elif kind == "AWS::CloudWatch::CompositeAlarm":
            self.composites[props["AlarmName"]] = CompositeAlarm(
                props["AlarmName"], props["AlarmRule"], {t["Key"]: t["Value"] for t in props.get("Tags", [])}
            )
        elif kind == "AWS::ApiGatewayV2::Api":
            self._routes(props["Body"])
            self.physical[logical] = uuid.uuid4().hex[:10]
        # AWS::ApiGatewayV2::Stage and the API's invoke permissions have nothing to run here

    def put_alarm(self, props: dict[str, Any]) -> None:
        keys = {
            "AlarmName", "AlarmDescription", "ActionsEnabled", "AlarmActions", "OKActions", "Namespace", "MetricName",
            "Dimensions", "Statistic", "Period", "EvaluationPeriods", "DatapointsToAlarm", "Threshold",
            "ComparisonOperator", "TreatMissingData", "Metrics", "Tags",
        }  # fmt: skip
        self.client("cloudwatch").put_metric_alarm(**{k: v for k, v in props.items() if k in keys})

    def deploy_alarm_template(self, template: dict[str, Any], parameters: dict[str, str] | None = None) -> None:
        """Create the alarms of a generated CloudFormation template (``modelpilot slo rules --format cloudwatch``)."""
        saved = self.template
        self.template = {**template, "Resources": {**saved["Resources"], **template["Resources"]}}
        self.parameters.update(parameters or {})
        try:
            for logical, resource in template["Resources"].items():
                self.physical[logical] = resource["Properties"]["AlarmName"]
            ordered = sorted(
                template["Resources"].items(), key=lambda kv: kv[1]["Type"] == "AWS::CloudWatch::CompositeAlarm"
            )
            for logical, resource in ordered:
                self._create(logical, resource)
        finally:
            self.template = {**saved, "Resources": {**saved["Resources"], **template["Resources"]}}

    def _routes(self, body: dict[str, Any]) -> None:
        for path, methods in body.get("paths", {}).items():
            for method, operation in methods.items():
                uri = json.dumps(operation.get("x-amazon-apigateway-integration", {}).get("uri", ""))
                pattern = re.compile("^" + re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(path)) + "$")
                self.routes.append((method.upper(), pattern, path, uri))
                security = operation.get("security") or [{"NONE": []}]
                self.route_auth[(method.upper(), path)] = next(iter(security[0]), "NONE")

    # -- running a function -----------------------------------------------------------------------
    def function(self, logical_or_module: str) -> Function:
        for function in self.functions.values():
            if logical_or_module in {function.logical_id, function.module, function.name, function.arn}:
                return function
        raise KeyError(logical_or_module)

    @contextlib.contextmanager
    def _container(self, function: Function) -> Iterator[Any]:
        """Run as ``function``'s warm container: its environment, its role's credentials, its bus."""
        from modelpilot import bootstrap

        saved = dict(os.environ)
        for key in list(os.environ):
            if key.startswith(("MODELPILOT_", "AWS_", "POWERTOOLS_", "_X_AMZN")):
                del os.environ[key]
        os.environ.update(function.environment)
        os.environ.update(
            AWS_LAMBDA_FUNCTION_NAME=function.name,
            AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
            AWS_REGION=REGION,
            AWS_DEFAULT_REGION=REGION,
            AWS_ACCESS_KEY_ID=function.credentials["aws_access_key_id"],
            AWS_SECRET_ACCESS_KEY=function.credentials["aws_secret_access_key"],
            AWS_SESSION_TOKEN=function.credentials["aws_session_token"],
            AWS_ENDPOINT_URL=self.server.endpoint,  # the one addition: every client goes to the emulator
        )
        module_name = f"functions.aws.{function.module}"
        key = f"{self.name}/{function.logical_id}"
        previous = bootstrap._bus
        try:
            if key not in self._containers:  # a cold start: Lambda imports the module (its init phase)
                bootstrap._bus = None
                module = sys.modules.get(module_name)
                module = importlib.reload(module) if module is not None else importlib.import_module(module_name)
            else:
                bootstrap._bus = self._containers[key]
                module = importlib.import_module(module_name)
            yield module
        finally:
            self._containers[key] = bootstrap._bus
            bootstrap._bus = previous
            os.environ.clear()
            os.environ.update(saved)

    def invoke(self, function: str | Function, event: dict[str, Any]) -> dict[str, Any]:
        """Invoke synchronously (RequestResponse): the handler's reply; its exception propagates."""
        from tests.support.aws_events import LambdaContext

        fn = function if isinstance(function, Function) else self.function(function)
        context = LambdaContext(
            function_name=fn.name, invoked_function_arn=fn.arn, log_group_name=f"/aws/lambda/{fn.name}"
        )
        try:
            with self._container(fn) as module:
                reply: dict[str, Any] = module.handler(copy.deepcopy(event), context)
        finally:
            if self.watch is not None:
                denied = [d for d in self.server.denials() if d["access_key"] == self.watch]
                if denied:
                    raise Denied(f"{fn.logical_id} was refused {denied[0]['target'] or denied[0]['path']}")
        return reply

    def invoke_async(self, function: str | Function, event: dict[str, Any]) -> Invocation:
        """Invoke as EventBridge, Scheduler and SNS do (Event): retried, then dead-lettered."""
        fn = function if isinstance(function, Function) else self.function(function)
        invocation = Invocation(fn.logical_id, event)
        for _attempt in range(1 + ASYNC_RETRIES):
            try:
                invocation.reply = self.invoke(fn, event)
                break
            except Denied:
                raise
            except Exception as exc:
                invocation.errors.append(f"{type(exc).__name__}: {exc}")
        else:
            if fn.dead_letter_arn:
                self._dead_letter(fn, event, invocation.errors[-1])
                invocation.dead_lettered = True
        self.invocations.append(invocation)
        return invocation

    def _dead_letter(self, fn: Function, event: dict[str, Any], error: str) -> None:
        """Send the event to the function's DLQ with the function's role, as Lambda does (body = the event)."""
        sqs = self.client("sqs", fn.credentials)
        name = fn.dead_letter_arn.rsplit(":", 1)[1] if fn.dead_letter_arn else ""
        url = f"{self.server.endpoint}/{ACCOUNT}/{name}"
        sqs.send_message(
            QueueUrl=url,
            MessageBody=json.dumps(event),
            MessageAttributes={
                "RequestID": {"DataType": "String", "StringValue": str(uuid.uuid4())},
                "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                "ErrorMessage": {"DataType": "String", "StringValue": error[:1000]},
            },
        )

    # -- routing ----------------------------------------------------------------------------------
    def put_event(self, event: dict[str, Any]) -> list[Invocation]:
        """Route a service event on the default bus: every rule whose pattern matches invokes its targets."""
        events = self.client("events")
        done = []
        for rule in events.list_rules(EventBusName="default")["Rules"]:
            if "EventPattern" not in rule:
                continue
            matched = events.test_event_pattern(EventPattern=rule["EventPattern"], Event=json.dumps(event))["Result"]
            if not matched:
                continue
            for target in events.list_targets_by_rule(Rule=rule["Name"], EventBusName="default")["Targets"]:
                if target["Arn"] in {f.arn for f in self.functions.values()}:
                    done.append(self.invoke_async(target["Arn"], event))
        return done

    def upload(self, bucket: str, key: str, body: bytes) -> list[Invocation]:
        """An operator puts an object; S3 sends "Object Created" to EventBridge (the bucket's notification)."""
        put = self.client("s3").put_object(Bucket=bucket, Key=key, Body=body)
        if not self._sends_to_eventbridge(bucket):
            return []
        return self.put_event(self.s3_event(bucket, key, put))

    def _sends_to_eventbridge(self, bucket: str) -> bool:
        """Whether the template turns on the bucket's EventBridge notifications (moto's CloudFormation drops
        NotificationConfiguration, so the template is read rather than GetBucketNotificationConfiguration)."""
        for logical, resource in self.template["Resources"].items():
            if resource["Type"] == "AWS::S3::Bucket" and self.physical.get(logical) == bucket:
                config = resource["Properties"].get("NotificationConfiguration", {})
                return bool(config.get("EventBridgeConfiguration", {}).get("EventBridgeEnabled"))
        return False

    def s3_event(self, bucket: str, key: str, put: dict[str, Any]) -> dict[str, Any]:
        """The "Object Created" event S3 sends to EventBridge for a PutObject reply."""
        from tests.support.aws_events import object_created

        event = object_created(
            bucket,
            key,
            etag=put["ETag"].strip('"'),
            sequencer=f"{time.time_ns():020X}",
            version_id=put.get("VersionId"),
        )
        head = self.client("s3").head_object(Bucket=bucket, Key=key)
        event["detail"]["object"]["size"] = head["ContentLength"]
        return self._envelope(event)

    def _envelope(self, event: dict[str, Any]) -> dict[str, Any]:
        event.update(id=str(uuid.uuid4()), account=ACCOUNT, region=REGION, time=_now())
        return event

    def sagemaker_change(self, package_arn: str, **detail: Any) -> list[Invocation]:
        """SageMaker's "Model Package State Change", built from the model package as SageMaker describes it.

        ``detail`` adds what moto does not keep (``ModelLifeCycle``: moto drops it on UpdateModelPackage).
        """
        described = self.client("sagemaker").describe_model_package(ModelPackageName=package_arn)
        detail = {k: v for k, v in {**described, **detail}.items() if k not in {"ResponseMetadata"} and v is not None}
        detail = json.loads(json.dumps(detail, default=lambda v: v.isoformat() if isinstance(v, datetime) else str(v)))
        event = self._envelope(
            {
                "version": "0",
                "detail-type": "SageMaker Model Package State Change",
                "source": "aws.sagemaker",
                "resources": [package_arn],
                "detail": detail,
            }
        )
        return self.put_event(event)

    def fire_schedule(self, function: str, at: datetime | None = None) -> Invocation:
        """EventBridge Scheduler fires the schedule that targets ``function`` (its Input with the context filled)."""
        fn = self.function(function)
        for schedule in self.schedules.values():
            if schedule["Target"]["Arn"] != fn.arn:
                continue
            when = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
            text = schedule["Target"]["Input"]
            for placeholder, value in {
                "<aws.scheduler.schedule-arn>": schedule["Arn"],
                "<aws.scheduler.scheduled-time>": when,
                "<aws.scheduler.execution-id>": str(uuid.uuid4()),
                "<aws.scheduler.attempt-number>": "1",
            }.items():
                text = text.replace(placeholder, value)
            return self.invoke_async(fn, json.loads(text))
        raise KeyError(f"no schedule targets {function}")

    def http(self, method: str, path: str, body: Any = None, *, caller: str) -> dict[str, Any]:
        """A SigV4-signed request of IAM principal ``caller`` to the operator API, routed by its OpenAPI body."""
        from tests.support.aws_events import http_request

        for route_method, pattern, route, uri in self.routes:
            found = pattern.match(path)
            if found and route_method in {method, "X-AMAZON-APIGATEWAY-ANY-METHOD"}:
                target = next(f for f in self.functions.values() if f.arn in uri)
                event = http_request(method, path, body, user_arn=caller)
                event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {route}"
                event["pathParameters"] = found.groupdict()
                return self.invoke(target, event)
        return {"statusCode": 404, "body": json.dumps({"message": "Not Found"})}

    def http_unsigned(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
        """An unsigned request to the operator API (as MLflow sends its webhooks): API Gateway answers 403 on a route
        with IAM authorization without invoking anything; on an open route the function gets the body as sent."""
        import base64

        from tests.support.aws_events import http_request

        for route_method, pattern, route, uri in self.routes:
            found = pattern.match(path)
            if found and route_method == method:
                if self.route_auth[(method, route)] != "NONE":
                    return {"statusCode": 403, "body": json.dumps({"message": "Forbidden"})}
                target = next(f for f in self.functions.values() if f.arn in uri)
                event = http_request(method, path, None, user_arn=None)
                del event["requestContext"]["authorizer"]
                event["routeKey"] = event["requestContext"]["routeKey"] = f"{method} {route}"
                event["pathParameters"] = found.groupdict()
                event["headers"] = {k.lower(): v for k, v in headers.items()}  # API Gateway lower-cases them
                try:
                    event["body"], event["isBase64Encoded"] = body.decode(), False
                except UnicodeDecodeError:
                    event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
                return self.invoke(target, event)
        return {"statusCode": 404, "body": json.dumps({"message": "Not Found"})}

    # -- alarms -----------------------------------------------------------------------------------
    def evaluate_alarms(self) -> list[Invocation]:
        """Evaluate every metric alarm over its latest periods, then the composites; route each state change."""
        cloudwatch = self.client("cloudwatch")
        changes: list[tuple[str, str, str, str, str]] = []
        for alarm in cloudwatch.describe_alarms(AlarmTypes=["MetricAlarm"])["MetricAlarms"]:
            value = self._alarm_value(alarm)
            breach = value is not None and _COMPARE[alarm["ComparisonOperator"]](value, alarm["Threshold"])
            state = "ALARM" if breach else "OK"  # missing data is notBreaching in every alarm of the stack
            if state != alarm["StateValue"]:
                reason = f"harness: value {value} vs threshold {alarm['Threshold']}"
                cloudwatch.set_alarm_state(AlarmName=alarm["AlarmName"], StateValue=state, StateReason=reason)
                changes.append((alarm["AlarmName"], alarm["AlarmArn"], alarm["StateValue"], state, reason))
        states = {a["AlarmName"]: a["StateValue"] for a in cloudwatch.describe_alarms()["MetricAlarms"]}
        for composite in self.composites.values():
            state = "ALARM" if _alarm_rule(composite.rule, states) else "OK"
            if state != composite.state:
                changes.append((composite.name, composite.arn, composite.state, state, f"harness: {composite.rule}"))
                composite.state = state
        done = []
        for name, arn, before, after, reason in changes:
            done += self.put_event(self._alarm_event(name, arn, before, after, reason))
        return done

    def _alarm_event(self, name: str, arn: str, before: str, after: str, reason: str) -> dict[str, Any]:
        from tests.support.aws_events import alarm_change

        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
        event = alarm_change(name, state=after, timestamp=stamp)
        event["resources"] = [arn]
        event["detail"]["state"]["reason"] = reason
        event["detail"]["previousState"] = {"value": before, "reason": "", "timestamp": stamp}
        return self._envelope(event)

    def _alarm_value(self, alarm: dict[str, Any]) -> float | None:
        end = datetime.now(UTC) + timedelta(minutes=1)
        if alarm.get("Metrics"):
            values: dict[str, float] = {}
            expression = ""
            for query in alarm["Metrics"]:
                if "MetricStat" in query:
                    stat = query["MetricStat"]
                    values[query["Id"]] = self._metric(stat["Metric"], stat["Stat"], stat["Period"], end) or 0.0
                elif query.get("ReturnData", True):
                    expression = query["Expression"]
            if not any(values.values()):
                return None
            try:
                return _arithmetic(expression, values)
            except ZeroDivisionError:
                return None
        metric = {
            "Namespace": alarm["Namespace"],
            "MetricName": alarm["MetricName"],
            "Dimensions": alarm.get("Dimensions", []),
        }
        if metric["Namespace"] == "AWS/SQS" and metric["MetricName"] == "ApproximateNumberOfMessagesVisible":
            # moto publishes no SQS metrics: the harness reads the queue's own count, which is what the metric reports
            queue = next(d["Value"] for d in metric["Dimensions"] if d["Name"] == "QueueName")
            url = self.client("sqs").get_queue_url(QueueName=queue)["QueueUrl"]
            attributes = self.client("sqs").get_queue_attributes(
                QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
            )
            return float(attributes["Attributes"]["ApproximateNumberOfMessages"])
        return self._metric(metric, alarm["Statistic"], alarm["Period"] * alarm["EvaluationPeriods"], end)

    def _metric(self, metric: dict[str, Any], stat: str, period: int, end: datetime) -> float | None:
        reply = self.client("cloudwatch").get_metric_data(
            MetricDataQueries=[{"Id": "m", "MetricStat": {"Metric": metric, "Period": period, "Stat": stat}}],
            StartTime=end - timedelta(seconds=period),
            EndTime=end,
        )
        values = reply["MetricDataResults"][0]["Values"]
        return float(sum(values)) if values else None

    # -- the operator's tools ---------------------------------------------------------------------
    def restart(self) -> None:
        """Drop every warm container: the next invocation of each function is a cold start (a new policy)."""
        self._containers = {k: v for k, v in self._containers.items() if not k.startswith(f"{self.name}/")}

    def operator_bus(self) -> Any:
        """A bus on the stack's resources with the operator's credentials (for arranging what a story needs)."""
        from modelpilot import bootstrap
        from modelpilot.config import Settings

        settings = Settings.from_env(self.function("ModelUploadFunction").environment, aws_region=REGION)
        return bootstrap.bootstrap(settings, clients=self.client)

    def tap_bus(self) -> str:
        """A queue subscribed (by a rule) to everything ModelPilot publishes on the stack's bus; returns its URL."""
        sqs, events = self.client("sqs"), self.client("events")
        url = sqs.create_queue(QueueName=f"{self.name}-tap-{uuid.uuid4().hex[:6]}")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        bus = self.output("EventBus")
        rule = f"tap-{uuid.uuid4().hex[:6]}"
        events.put_rule(Name=rule, EventBusName=bus, EventPattern=json.dumps({"source": ["modelpilot"]}))
        events.put_targets(Rule=rule, EventBusName=bus, Targets=[{"Id": "tap", "Arn": arn}])
        return str(url)

    def drain(self, queue_url: str) -> list[dict[str, Any]]:
        """Every event delivered to a tap queue so far."""
        sqs = self.client("sqs")
        found: list[dict[str, Any]] = []
        while True:
            messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return found
            for message in messages:
                found.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])

    # -- inspection -------------------------------------------------------------------------------
    def output(self, logical: str) -> str:
        """The physical id of a resource (bucket name, table name, queue URL, topic ARN)."""
        return self.physical[logical]

    def denials_of(self, function: str) -> list[dict[str, Any]]:
        key = self.function(function).credentials["aws_access_key_id"]
        return [d for d in self.server.denials() if d["access_key"] == key]


_COMPARE = {
    "GreaterThanThreshold": operator.gt,
    "GreaterThanOrEqualToThreshold": operator.ge,
    "LessThanThreshold": operator.lt,
    "LessThanOrEqualToThreshold": operator.le,
}
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _arithmetic(expression: str, values: dict[str, float]) -> float:
    """Evaluate a metric-math expression made of ids, numbers, + - * / and parentheses."""

    def walk(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return float(_OPS[type(node.op)](walk(node.left), walk(node.right)))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return float(node.value)
        if isinstance(node, ast.Name):
            return values[node.id]
        raise ValueError(f"metric math the harness does not evaluate: {expression}")

    return walk(ast.parse(expression, mode="eval"))


def _alarm_rule(rule: str, states: dict[str, str]) -> bool:
    """Evaluate a composite AlarmRule of ALARM("name") / OK(...) / INSUFFICIENT_DATA(...) with AND, OR, NOT."""
    text = re.sub(
        r'\b(ALARM|OK|INSUFFICIENT_DATA)\(\s*"?([^")]+?)"?\s*\)',
        lambda m: str(states.get(m.group(2).rsplit(":alarm:", 1)[-1]) == m.group(1)),
        rule,
    )
    text = text.replace("AND", "and").replace("OR", "or").replace("NOT", "not")
    return bool(_boolean(ast.parse(text, mode="eval").body))


def _boolean(node: ast.AST) -> bool:
    if isinstance(node, ast.BoolOp):
        parts = [_boolean(v) for v in node.values]
        return all(parts) if isinstance(node.op, ast.And) else any(parts)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        return not _boolean(node.operand)
    if isinstance(node, ast.Constant) and isinstance(node.value, bool):
        return node.value
    raise ValueError("not an alarm rule")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
