"""Canary traffic routers on AWS: a SageMaker endpoint's variant weights and a Lambda alias's routing.

**SageMaker** (:class:`SageMakerEndpointRouter`): one real-time endpoint serves a ``(model, environment)``
with one production variant per ModelPilot version (named by a pattern, default ``v{version}``)::

    DescribeEndpoint(EndpointName)                       → ProductionVariants [{VariantName, CurrentWeight, …}]
    UpdateEndpointWeightsAndCapacities(EndpointName,
        DesiredWeightsAndCapacities=[{VariantName, DesiredWeight}, …])   every variant: its share, others 0

**Lambda** (:class:`LambdaAliasRouter`): an alias routes between two published versions of a function::

    GetAlias(FunctionName, Name)                         → FunctionVersion, RoutingConfig
    UpdateAlias(FunctionName, Name, FunctionVersion=<stable>,
        RoutingConfig={"AdditionalVersionWeights": {<candidate>: weight / 100}})

Both read first and write only when the weights differ, so applying the split already in place changes
nothing (a retried tick). A version with no variant (no Lambda version mapped) raises ``InvalidInput``
naming the endpoint (function) and the name looked for. Throttling, 5xx, connection failures and an
endpoint that is still updating raise ``TransientError``; ``AccessDenied`` raises ``NotAuthorized`` and a
refused request (``ValidationException``, ``ResourceNotFoundException``) ``InvalidInput``, both naming the
endpoint or function. boto3 is imported only when a client is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from modelpilot.adapters.aws._errors import THROTTLING, error_code, translate
from modelpilot.adapters.aws._lazy import LazyClient
from modelpilot.adapters.routes import serving_name
from modelpilot.exceptions import InvalidInput, ModelPilotError, NotAuthorized, TransientError
from modelpilot.ports import TrafficRouter

if TYPE_CHECKING:
    from collections.abc import Callable

    from modelpilot.domain.canary import TrafficSplit

__all__ = ["LambdaAliasRouter", "SageMakerEndpointRouter"]

_DENIED = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
_REFUSED = frozenset(
    {"ValidationException", "ValidationError", "ResourceNotFoundException", "InvalidParameterValueException"}
)
_BUSY = ("in-progress", "in progress", "is updating", "is being updated", "resourceconflict")


def _error(exc: Exception, operation: str, target: str) -> ModelPilotError:
    """The typed error of a failed ``operation`` on ``target`` (an endpoint or a function's alias)."""
    what = f"{operation} of {target}"
    if isinstance(exc, ParamValidationError):
        return InvalidInput(f"{what}: AWS would refuse the request: {exc}", target=target)
    if not isinstance(exc, ClientError):
        return translate(exc, what)
    code = error_code(exc)
    message = str(exc.response.get("Error", {}).get("Message", ""))
    if code in THROTTLING or code == "ResourceConflictException" or any(b in message.lower() for b in _BUSY):
        return TransientError(f"{what}: {target} is busy or AWS is throttling ({code}); retry later", aws_error=code)
    if code in _DENIED:
        return NotAuthorized(f"{what}: the role may not change {target} ({code}: {message})", aws_error=code)
    if code in _REFUSED:
        return InvalidInput(f"{what}: AWS refused the change of {target} ({code}: {message})", aws_error=code)
    return translate(exc, what)


class SageMakerEndpointRouter(LazyClient, TrafficRouter):
    """Routes the splits of ``(model, environment)`` to the production variants of ``endpoint``.

    Parameters
    ----------
    model, environment:
        The canary this endpoint serves; splits of others are ignored.
    endpoint:
        The SageMaker endpoint's name.
    variant:
        The variant name of a version (``{version}`` is replaced by its number).
    client, factory:
        A boto3 SageMaker client, or a callable that builds one on first use.
    """

    def __init__(
        self,
        model: str,
        environment: str,
        endpoint: str,
        *,
        variant: str = "v{version}",
        client: Any = None,
        factory: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__(client, factory=factory)
        self.model, self.environment, self.endpoint, self.variant = model, environment, endpoint, variant

    def desired(self, split: TrafficSplit, variants: list[dict[str, Any]]) -> dict[str, float]:
        """Return ``{variant: weight}`` for every variant of the endpoint (0 for versions not in the split)."""
        names = [str(v.get("VariantName")) for v in variants]
        wanted = {serving_name(self.variant, version): weight for version, weight in split.weights().items()}
        missing = sorted(set(wanted) - set(names))
        if missing:
            raise InvalidInput(
                f"SageMaker endpoint {self.endpoint} has no production variant {missing} for {split.model} "
                f"{split.environment} (variants: {names}); deploy it, or fix the route's variant pattern "
                f"{self.variant!r}",
                endpoint=self.endpoint,
                variant=missing[0],
            )
        return {name: float(wanted.get(name, 0)) for name in names}

    def apply(self, split: TrafficSplit) -> None:
        if (split.model, split.environment) != (self.model, self.environment):
            return
        what = f"SageMaker endpoint {self.endpoint}"
        try:
            endpoint = self.client.describe_endpoint(EndpointName=self.endpoint)
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, "DescribeEndpoint", what) from None
        variants = list(endpoint.get("ProductionVariants") or [])
        desired = self.desired(split, variants)
        current = {str(v["VariantName"]): float(v.get("DesiredWeight", v.get("CurrentWeight", -1))) for v in variants}
        if current == desired:
            return
        status = endpoint.get("EndpointStatus")
        if status != "InService":
            raise TransientError(f"{what} is {status}, not InService; the split is applied on a later tick")
        request = [{"VariantName": name, "DesiredWeight": weight} for name, weight in desired.items()]
        try:
            self.client.update_endpoint_weights_and_capacities(
                EndpointName=self.endpoint, DesiredWeightsAndCapacities=request
            )
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, "UpdateEndpointWeightsAndCapacities", what) from None


class LambdaAliasRouter(LazyClient, TrafficRouter):
    """Routes the splits of ``(model, environment)`` through the alias ``alias`` of ``function``.

    ``versions`` maps a ModelPilot version to the published Lambda version that serves it: an object
    (``{"3": "7"}``) or a pattern (``"{version}"``: the same number).
    """

    def __init__(
        self,
        model: str,
        environment: str,
        function: str,
        alias: str,
        *,
        versions: dict[str, Any] | str = "{version}",
        client: Any = None,
        factory: Callable[[], Any] | None = None,
    ) -> None:
        super().__init__(client, factory=factory)
        self.model, self.environment, self.function, self.alias = model, environment, function, alias
        self.versions = versions

    def lambda_version(self, version: int) -> str:
        """Return the published Lambda version serving ModelPilot ``version`` (InvalidInput when none)."""
        if isinstance(self.versions, str):
            return serving_name(self.versions, version)
        found = self.versions.get(str(version))
        if found is None:
            raise InvalidInput(
                f"Lambda function {self.function} alias {self.alias}: no Lambda version is mapped to "
                f"{self.model} version {version} (mapped: {sorted(self.versions, key=int)}); add it to the "
                "route's versions",
                function=self.function,
                version=version,
            )
        return str(found)

    def request(self, split: TrafficSplit) -> dict[str, Any]:
        """Return the ``UpdateAlias`` parameters of ``split``."""
        weights = split.weights()
        if len(weights) == 1:
            (only,) = weights
            return {
                "FunctionName": self.function,
                "Name": self.alias,
                "FunctionVersion": self.lambda_version(only),
                "RoutingConfig": {"AdditionalVersionWeights": {}},
            }
        assert split.candidate_version is not None  # two weights: a candidate holds traffic
        stable, candidate = self.lambda_version(split.stable_version), self.lambda_version(split.candidate_version)
        if stable == candidate:
            raise InvalidInput(
                f"Lambda function {self.function}: versions {split.stable_version} and {split.candidate_version} "
                f"map to the same Lambda version {stable}",
                function=self.function,
            )
        return {
            "FunctionName": self.function,
            "Name": self.alias,
            "FunctionVersion": stable,
            "RoutingConfig": {"AdditionalVersionWeights": {candidate: split.candidate_weight / 100}},
        }

    def apply(self, split: TrafficSplit) -> None:
        if (split.model, split.environment) != (self.model, self.environment):
            return
        request = self.request(split)
        what = f"Lambda function {self.function} alias {self.alias}"
        try:
            alias = self.client.get_alias(FunctionName=self.function, Name=self.alias)
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, "GetAlias", what) from None
        routing = (alias.get("RoutingConfig") or {}).get("AdditionalVersionWeights") or {}
        wanted = request["RoutingConfig"]["AdditionalVersionWeights"]
        if str(alias.get("FunctionVersion")) == request["FunctionVersion"] and _same(routing, wanted):
            return
        try:
            self.client.update_alias(**request)
        except (ClientError, BotoCoreError) as exc:
            raise _error(exc, "UpdateAlias", what) from None


def _same(current: dict[str, Any], wanted: dict[str, float]) -> bool:
    """True when two ``AdditionalVersionWeights`` route the same (weights compared to 1e-9)."""
    now = {str(k): float(v) for k, v in current.items() if float(v) > 0}
    want = {k: v for k, v in wanted.items() if v > 0}
    return now.keys() == want.keys() and all(abs(now[k] - want[k]) < 1e-9 for k in want)
