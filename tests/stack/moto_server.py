"""moto's server for the stack harness, run in a process of its own: ``python -m tests.stack.moto_server PORT_FILE``.

IAM enforcement (``INITIAL_NO_AUTH_ACTION_COUNT``) is a process-wide setting of moto, so the
harness gets its own server instead of the one the other AWS tests share. The harness turns
enforcement on (``POST /moto-api/reset-auth``) once the stack exists; from then on every
request is checked against the caller's IAM policies by moto's own evaluator.

What this module adds to moto 5, each because the stack's stories depend on it:

* **Resource scoping.** moto checks the *action* of every request but compares the policy's
  ``Resource`` only for S3, SQS, IAM and STS; for the other services it evaluates against
  ``"*"``, which a scoped statement never matches. The services the functions call get the
  resource their request names (the table, the bus, the topic, the alarm, the secret, the state machine, the
  model package or endpoint, the Lambda function), so
  a statement scoped to another resource is refused as on AWS.
* **Transactions are authorized per item.** IAM has no ``dynamodb:TransactWriteItems`` action:
  AWS checks each item's own action (``PutItem``, ``UpdateItem``, ``DeleteItem``,
  ``ConditionCheckItem``; ``GetItem`` for ``TransactGetItems``) on the item's table. moto checks
  the API's name, which no policy of a least-privilege stack grants.
* **CloudWatch's actions are ``cloudwatch:…``.** moto names an action after the service's signing
  name, which for CloudWatch is ``monitoring``; IAM policies (and AWS) say ``cloudwatch:``.
* **A missing object without s3:ListBucket is 403.** AWS answers ``GetObject``/``HeadObject``
  of a missing key with 404 only when the caller may ``s3:ListBucket`` the bucket, else 403
  AccessDenied; moto always answers 404.
* **Reads are signed over an empty body.** moto checks the SigV4 signature of a REST request without a body
  (Lambda's ``GetAlias``) against its parsed parameters, so every such request fails as ``SignatureDoesNotMatch``.
* **TestEventPattern.** moto does not implement the API; it answers with moto's own
  ``EventPattern`` matcher (the one its ``PutEvents`` routes with).
* **IAM's ``?`` wildcard.** In a policy's ``Resource`` ``?`` matches any one character (a Secrets Manager
  secret's ARN ends in ``-`` and six random characters: ``secret:<name>-??????``); moto turns only ``*`` into a
  pattern and hands ``?`` to ``re`` as a quantifier.
* **Denials and calls.** Every 403 is recorded with the caller's access key and the request
  (``GET /_harness/denials``, ``DELETE`` clears them), and every authorized call with the
  action and resource it was authorized for (``GET /_harness/calls``): the permission test
  re-evaluates a role's calls against its policy without one statement.

Requests are served one at a time (moto's backends do not lock).
"""

from __future__ import annotations

import json
import logging
import re
import sys
import threading
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

ACCOUNT = "123456789012"
PARTITION = "aws"

_denials: list[dict[str, Any]] = []
_calls: list[dict[str, str]] = []


def _table_arn(self: Any) -> str:
    name = self._get_param("TableName")
    if not name:
        items = self._get_param("TransactItems") or []
        for item in items:
            for op in item.values():
                name = op.get("TableName")
                if name:
                    break
            if name:
                break
    if not name:
        requests = self._get_param("RequestItems") or {}
        name = next(iter(requests), None)
    return f"arn:{PARTITION}:dynamodb:{self.region}:{self.current_account}:table/{name}" if name else "*"


def _bus_arn(self: Any) -> str:
    name = self._get_param("EventBusName")
    if not name:
        entries = self._get_param("Entries") or []
        name = entries[0].get("EventBusName") if entries else None
    name = name or "default"
    if name.startswith("arn:"):
        return str(name)
    return f"arn:{PARTITION}:events:{self.region}:{self.current_account}:event-bus/{name}"


def _topic_arn(self: Any) -> str:
    return str(self._get_param("TopicArn") or "*")


def _alarm_arn(self: Any) -> str:
    arn = self._get_param("ResourceARN")
    if arn:
        return str(arn)
    name = self._get_param("AlarmName")
    return f"arn:{PARTITION}:cloudwatch:{self.region}:{self.current_account}:alarm:{name}" if name else "*"


def _secret_arn(self: Any) -> str:
    secret_id = self._get_param("SecretId")
    if not secret_id:
        return "*"
    if str(secret_id).startswith("arn:"):
        return str(secret_id)
    from moto.secretsmanager.models import secretsmanager_backends

    backend = secretsmanager_backends[self.current_account][self.region]
    secret = backend.secrets.get(secret_id)
    return str(secret.arn) if secret is not None else "*"


def _sagemaker_arn(self: Any) -> str:
    arn = self._get_param("ModelPackageArn") or self._get_param("ModelPackageName")
    if arn and str(arn).startswith("arn:"):
        return str(arn)
    endpoint = self._get_param("EndpointName")  # SageMaker's ARNs hold the endpoint's name in lower case
    if endpoint:
        return f"arn:{PARTITION}:sagemaker:{self.region}:{self.current_account}:endpoint/{str(endpoint).lower()}"
    return "*"


def _function_arn(self: Any) -> str:
    """The unqualified function ARN of a Lambda request (``/2015-03-31/functions/<name or ARN>/…``)."""
    parts = unquote(urlparse(self.path).path).split("/")
    if len(parts) < 4 or parts[2] != "functions" or not parts[3]:
        return "*"
    name = parts[3]
    if name.startswith("arn:"):
        return ":".join(name.split(":")[:7])
    return f"arn:{PARTITION}:lambda:{self.region}:{self.current_account}:function:{name}"


def _state_machine_arn(self: Any) -> str:
    arn = self._get_param("stateMachineArn") or self._get_param("executionArn")
    return str(arn) if arn and str(arn).startswith("arn:") else "*"


_ITEM_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
    "Get": "GetItem",
}


def _dynamodb_authorize(original: Any) -> Any:
    def authorize(self: Any, resource: str = "*") -> None:
        action = self._get_action()
        if action not in {"TransactWriteItems", "TransactGetItems"} or not _enforcing():
            return original(self, resource)  # type: ignore[no-any-return]
        from moto.iam.access_control import IAMRequest

        parsed = urlparse(self.uri)
        path = self.raw_path + (f"?{parsed.query}" if parsed.query else "")
        for item in self._get_param("TransactItems") or []:
            for kind, spec in item.items():
                request = IAMRequest(
                    account_id=self.current_account,
                    method=self.method,
                    path=path,
                    data=self.data,
                    body=self.raw_body,
                    headers=self.headers,
                    action=_ITEM_ACTIONS[kind],
                )
                request.check_signature()
                table = spec["TableName"]
                request.check_action_permitted(
                    f"arn:{PARTITION}:dynamodb:{self.region}:{self.current_account}:table/{table}"
                )
        return None

    return authorize


#: signing name -> IAM action prefix, where they differ
_ACTION_PREFIX = {"monitoring": "cloudwatch"}


def _recorded(original: Any) -> Any:
    def check(self: Any, resource: str) -> None:
        original(self, resource)  # raises when refused
        key = getattr(self._access_key, "_access_key_id", "")
        _calls.append({"access_key": key, "action": self._action, "resource": resource})

    return check


def _iam_action_names(original: Any) -> Any:
    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        service, _, action = self._action.partition(":")
        self._action = f"{_ACTION_PREFIX.get(service, service)}:{action}"

    return init


def _empty_body_of_reads(original: Any) -> Any:
    """A GET, HEAD or DELETE without a body is signed over an empty payload; moto signs a REST request's parsed
    parameters instead when the body is empty (Lambda's ``GetAlias``), and refuses every such request."""

    def create(self: Any) -> Any:
        if self._method in {"GET", "HEAD", "DELETE"} and not self._body:
            saved, self._data = self._data, b""
            try:
                return original(self)
            finally:
                self._data = saved
        return original(self)

    return create


def _test_event_pattern(self: Any) -> str:
    from moto.events.models import EventPattern

    pattern = EventPattern.load(self._get_param("EventPattern"))
    return json.dumps({"Result": pattern.matches_event(json.loads(self._get_param("Event")))})


def _iam_match(pattern: str, string: str) -> re.Match[str] | None:
    """IAM's wildcards: ``*`` any run of characters, ``?`` any one character; everything else literal."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.match(f"^{regex}$", string)


def patch_iam_wildcards() -> None:
    """Make moto's policy evaluator read ``?`` as IAM does (here and in the test process that re-evaluates calls)."""
    from moto.iam.access_control import IAMPolicyStatement

    IAMPolicyStatement._match = staticmethod(_iam_match)  # type: ignore[method-assign]


def _patch_moto() -> None:
    from moto.awslambda.responses import LambdaResponse
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.dynamodb.responses import DynamoHandler
    from moto.events.responses import EventsHandler
    from moto.iam.access_control import IAMRequestBase
    from moto.sagemaker.responses import SageMakerResponse
    from moto.secretsmanager.responses import SecretsManagerResponse
    from moto.sns.responses import SNSResponse
    from moto.stepfunctions.responses import StepFunctionResponse

    DynamoHandler._determine_resource = _table_arn  # type: ignore[attr-defined]
    DynamoHandler._authenticate_and_authorize_normal_action = _dynamodb_authorize(  # type: ignore[method-assign]
        DynamoHandler._authenticate_and_authorize_normal_action
    )
    EventsHandler._determine_resource = _bus_arn  # type: ignore[attr-defined]
    SNSResponse._determine_resource = _topic_arn  # type: ignore[attr-defined]
    CloudWatchResponse._determine_resource = _alarm_arn  # type: ignore[attr-defined]
    SecretsManagerResponse._determine_resource = _secret_arn  # type: ignore[attr-defined]
    SageMakerResponse._determine_resource = _sagemaker_arn  # type: ignore[attr-defined]
    LambdaResponse._determine_resource = _function_arn  # type: ignore[attr-defined]
    StepFunctionResponse._determine_resource = _state_machine_arn  # type: ignore[attr-defined]
    EventsHandler.test_event_pattern = _test_event_pattern  # type: ignore[method-assign]
    IAMRequestBase.__init__ = _iam_action_names(IAMRequestBase.__init__)  # type: ignore[method-assign]
    IAMRequestBase._create_aws_request = _empty_body_of_reads(IAMRequestBase._create_aws_request)  # type: ignore[method-assign]
    IAMRequestBase.check_action_permitted = _recorded(IAMRequestBase.check_action_permitted)  # type: ignore[method-assign]
    patch_iam_wildcards()


def _enforcing() -> bool:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin

    return ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT


def _credential(environ: dict[str, Any]) -> tuple[str, str]:
    """(access key id, service) of a SigV4-signed request, or ("", "")."""
    auth = environ.get("HTTP_AUTHORIZATION", "")
    scope = auth.partition("Credential=")[2].partition(",")[0].split("/")
    return (scope[0], scope[3]) if len(scope) > 3 else ("", "")


def _may_list_bucket(environ: dict[str, Any], access_key: str, bucket: str) -> bool:
    """Whether the caller's identity policies allow s3:ListBucket on ``bucket`` (moto's own evaluator)."""
    from moto.iam.access_control import IAMPolicy, PermissionResult, create_access_key

    headers = (
        {"X-Amz-Security-Token": environ["HTTP_X_AMZ_SECURITY_TOKEN"]} if "HTTP_X_AMZ_SECURITY_TOKEN" in environ else {}
    )
    key = create_access_key(account_id=ACCOUNT, partition=PARTITION, access_key_id=access_key, headers=headers)
    results = [
        IAMPolicy(p).is_action_permitted("s3:ListBucket", f"arn:aws:s3:::{bucket}") for p in key.collect_policies()
    ]
    allowed = PermissionResult.PERMITTED in results and PermissionResult.DENIED not in results
    if allowed:  # the 404 this caller gets rests on s3:ListBucket
        _calls.append({"access_key": access_key, "action": "s3:ListBucket", "resource": f"arn:aws:s3:::{bucket}"})
    return allowed


def _body(environ: dict[str, Any]) -> bytes:
    length = int(environ.get("CONTENT_LENGTH") or 0)
    data = environ["wsgi.input"].read(length) if length else b""
    import io

    environ["wsgi.input"] = io.BytesIO(data)
    return data


class Harnessed:
    """The WSGI wrapper: one request at a time, the harness endpoint, the S3 rule, denials."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        with self.lock:
            path = environ.get("PATH_INFO", "")
            if path.startswith("/_harness/"):
                return self._harness(environ, start_response, path)
            access_key, service = _credential(environ)
            body = _body(environ)
            captured: dict[str, Any] = {}

            def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
                captured.update(status=status, headers=headers)
                return lambda data: None

            chunks = list(self.app(environ, capture))
            status, headers = captured["status"], captured["headers"]
            code = int(status.split()[0])
            if service == "s3" and code == 404 and environ["REQUEST_METHOD"] in {"GET", "HEAD"} and _enforcing():
                parts = unquote(urlparse(path).path).lstrip("/").split("/", 1)
                if len(parts) == 2 and parts[1] and not _may_list_bucket(environ, access_key, parts[0]):
                    status, headers = "403 Forbidden", [("Content-Type", "application/xml")]
                    chunks = [] if environ["REQUEST_METHOD"] == "HEAD" else [_S3_DENIED]
                    code = 403
            if code == 403:
                text = b"".join(chunks).decode("utf-8", "replace")
                _denials.append(
                    {
                        "access_key": access_key,
                        "service": service,
                        "method": environ["REQUEST_METHOD"],
                        "path": path,
                        "target": environ.get("HTTP_X_AMZ_TARGET", ""),
                        "body": body.decode("utf-8", "replace")[:500],
                        "response": text[:500],
                    }
                )
            start_response(status, headers)
            return chunks

    def _harness(self, environ: dict[str, Any], start_response: Any, path: str) -> Any:
        method = environ["REQUEST_METHOD"]
        if path == "/_harness/denials":
            if method == "DELETE":
                _denials.clear()
            data: Any = list(_denials)
        elif path == "/_harness/calls":
            if method == "DELETE":
                _calls.clear()
            data = list(_calls)
        else:
            start_response("404 Not Found", [("Content-Type", "application/json")])
            return [b"{}"]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(data).encode()]


_S3_DENIED = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message>'
    b"<RequestId>harness</RequestId></Error>"
)


def main() -> None:
    """Serve on 127.0.0.1 and an ephemeral port; write the port to the file named by argv[1]."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    _patch_moto()
    app = Harnessed(DomainDispatcherApplication(create_backend_app))
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=MotoRequestHandler)
    Path(sys.argv[1]).write_text(str(server.server_address[1]), encoding="utf-8")
    server.serve_forever()


if __name__ == "__main__":
    main()
