"""Where a canary's traffic split is routed besides the serving manifest: ``MODELPILOT_TRAFFIC_ROUTES``.

The setting holds a JSON list; each entry names one serving target of one ``(model, environment)``::

    [{"router": "sagemaker", "model": "churn", "environment": "prod",
      "endpoint": "churn-prod", "variant": "v{version}"},
     {"router": "lambda", "model": "churn", "environment": "prod",
      "function": "churn-serve", "alias": "prod", "versions": {"3": "7", "4": "9"}},
     {"router": "azureml", "model": "churn", "environment": "prod",
      "endpoint": "churn-prod", "deployment": "v{version}"}]

``variant`` / ``deployment`` are patterns of the serving name of a ModelPilot version (``{version}`` is
replaced by the number; default ``v{version}``). A Lambda alias routes between published Lambda
versions: ``versions`` maps ModelPilot versions to them, either as an object or as a pattern
(``"{version}"`` when the numbers are the same). Each backend's wiring builds the routers of its own
kinds and ignores the others, so one setting can serve both clouds' docs and tests. Nothing configured:
no routers; a split of a ``(model, environment)`` no entry names is left to the serving manifest.

:func:`parse_routes` raises ``InvalidInput`` naming the setting and the entry, so a typo is found when the
function starts, not when the first canary moves.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from modelpilot.exceptions import InvalidInput

__all__ = ["ROUTERS", "SETTING", "Route", "parse_routes", "serving_name"]

SETTING = "MODELPILOT_TRAFFIC_ROUTES"
#: the router kinds and the fields each needs besides ``model`` and ``environment``
ROUTERS: dict[str, tuple[str, ...]] = {
    "sagemaker": ("endpoint",),
    "lambda": ("function", "alias"),
    "azureml": ("endpoint",),
}
_OPTIONAL: dict[str, tuple[str, ...]] = {"sagemaker": ("variant",), "lambda": ("versions",), "azureml": ("deployment",)}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,255}$")


@dataclass(frozen=True)
class Route:
    """One serving target of ``(model, environment)``; ``target`` holds the router's own fields."""

    router: str
    model: str
    environment: str
    target: dict[str, Any] = field(default_factory=dict, compare=False)

    def serves(self, model: str, environment: str) -> bool:
        """True when this route is the target of ``(model, environment)``."""
        return self.model == model and self.environment == environment


def serving_name(pattern: str, version: int) -> str:
    """Return the serving name (variant, deployment) of ``version`` under ``pattern`` (``v{version}``)."""
    return pattern.replace("{version}", str(version))


def _fail(index: int, problem: str) -> InvalidInput:
    return InvalidInput(f"{SETTING} entry {index}: {problem}", setting=SETTING, entry=index)


def _entry(index: int, raw: object) -> Route:
    if not isinstance(raw, dict):
        raise _fail(index, "must be an object with router, model, environment and the router's fields")
    router = raw.get("router")
    if router not in ROUTERS:
        raise _fail(index, f"router {router!r} is not one of {sorted(ROUTERS)}")
    required = ("model", "environment", *ROUTERS[str(router)])
    known = {"router", *required, *_OPTIONAL[str(router)]}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise _fail(index, f"unknown field(s) {unknown} for router {router!r}; known: {sorted(known)}")
    for name in required:
        value = raw.get(name)
        if not isinstance(value, str) or not _NAME.match(value):
            raise _fail(index, f"{name} must be a name (letters, digits, . _ : / -), got {value!r}")
    for name in ("variant", "deployment"):
        if name in raw and (not isinstance(raw[name], str) or "{version}" not in raw[name]):
            raise _fail(index, f"{name} must be a pattern holding {{version}}, e.g. 'v{{version}}'")
    versions = raw.get("versions", "{version}")
    if isinstance(versions, str):
        if "{version}" not in versions:
            raise _fail(index, "versions must be an object {modelpilot version: lambda version} or a pattern")
    elif not isinstance(versions, dict) or not all(
        isinstance(k, str) and k.isdigit() and isinstance(v, str | int) and str(v).isdigit()
        for k, v in versions.items()
    ):
        raise _fail(index, 'versions must map ModelPilot versions to published Lambda versions, e.g. {"3": "7"}')
    target = {k: v for k, v in raw.items() if k not in {"router", "model", "environment"}}
    return Route(str(router), str(raw["model"]), str(raw["environment"]), target)


def parse_routes(text: str | None, *, routers: frozenset[str] | None = None) -> list[Route]:
    """Return the routes of the setting's JSON ``text`` (only those of ``routers`` when given).

    Two entries of one router for the same ``(model, environment)`` are refused: the split would be
    applied twice to different targets with no order between them.
    """
    if not text or not text.strip():
        return []
    try:
        raw = json.loads(text)
    except ValueError as exc:
        raise InvalidInput(f"{SETTING} is not JSON ({exc})", setting=SETTING) from None
    if not isinstance(raw, list):
        raise InvalidInput(f"{SETTING} must be a JSON list of routes", setting=SETTING)
    routes = [_entry(i, item) for i, item in enumerate(raw)]
    seen: set[tuple[str, str, str]] = set()
    for i, route in enumerate(routes):
        key = (route.router, route.model, route.environment)
        if key in seen:
            raise _fail(i, f"a second {route.router} route of {route.model}/{route.environment}")
        seen.add(key)
    return [r for r in routes if routers is None or r.router in routers]
