"""The serving manifest and the traffic routers: where model servers learn what to serve.

After every saved canary change, promotion and rollback, :func:`write_manifest` writes
``serving/<model>/<environment>.json`` below the serving root (``Services.serving_root``: locally the data
root; in the cloud where ``MODELPILOT_SERVING_ROOT`` points, nowhere when it is unset)::

    {"model": "churn", "environment": "prod", "updated_at": "...",
     "alias": {"version": 3, "revision": 7},
     "canary": {"state": "running", "revision": 2, "step": 1, "weight": 25,
                "stable_version": 3, "candidate_version": 4} | null,
     "weights": {"3": 75, "4": 25},
     "versions": [{"version": 3, "role": "stable", "weight": 75, "package_uri": "...",
                   "manifest_digest": "...", "artifacts": [{"path": "...", "uri": "...",
                   "sha256": "...", "size": 123}]}, ...]}

The manifest is derived from the registry (the truth), so writing it again is harmless.
:func:`apply_routers` hands the same split to every configured ``TrafficRouter``; a router
that fails is logged and reported, never raised: the canary's state is already saved, and
the next ``AdvanceCanaries`` tick applies the split again (routers are idempotent).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from modelpilot import telemetry
from modelpilot.domain.canary import TrafficSplit

if TYPE_CHECKING:
    from modelpilot.domain.canary import Canary
    from modelpilot.service.messagebus import Services

__all__ = ["apply_routers", "current_split", "manifest_uri", "publish", "write_manifest"]

log = telemetry.get_logger("modelpilot.serving")


def manifest_uri(svc: Services, model: str, environment: str) -> str | None:
    """Return the URI of the serving manifest of ``model`` in ``environment`` (None: no serving root is set)."""
    if not svc.serving_root:
        return None
    return svc.artifacts.join(svc.serving_root, "serving", model, f"{environment}.json")


def current_split(svc: Services, model: str, environment: str, canary: Canary | None) -> TrafficSplit | None:
    """Return what serves now: an active canary's split, else the alias alone (None: nothing is deployed)."""
    if canary is not None and canary.active:
        return canary.split()
    alias = svc.registry.get_alias(model, environment)
    return None if alias is None else TrafficSplit(model, environment, alias.version)


def write_manifest(svc: Services, model: str, environment: str, canary: Canary | None = None) -> dict[str, Any] | None:
    """Write the serving manifest of ``model`` in ``environment`` and return it (None: nothing deployed,
    or no serving root is configured).

    ``canary`` is the canary just saved; without it the stored one is read (shown only while active).
    """
    uri = manifest_uri(svc, model, environment)
    if uri is None:
        return None
    if canary is None:
        stored = svc.registry.get_canary(model, environment)
        canary = stored if stored is not None and stored.active else None
    split = current_split(svc, model, environment, canary)
    if split is None:
        return None
    alias = svc.registry.get_alias(model, environment)
    versions = []
    for number, weight in split.weights().items():
        version = svc.registry.get_version(model, number)
        role = "candidate" if number == split.candidate_version else "stable"
        versions.append(
            {
                "version": number,
                "role": role,
                "weight": weight,
                "package_uri": version.package_uri,
                "manifest_digest": version.manifest_digest,
                "artifacts": [
                    {
                        "path": a.path,
                        "uri": svc.artifacts.join(version.package_uri, a.path),
                        "sha256": a.sha256,
                        "size": a.size,
                    }
                    for a in version.manifest.artifacts
                ],
            }
        )
    document: dict[str, Any] = {
        "model": model,
        "environment": environment,
        "updated_at": svc.clock().isoformat(),
        "alias": {"version": alias.version, "revision": alias.revision} if alias else None,
        "canary": _canary_view(canary),
        "weights": {str(v): w for v, w in split.weights().items()},
        "versions": versions,
    }
    data = json.dumps(document, indent=2, sort_keys=True).encode()
    svc.artifacts.write_bytes(uri, data, content_type="application/json")
    return document


def _canary_view(canary: Canary | None) -> dict[str, Any] | None:
    if canary is None:
        return None
    return {
        "state": canary.state,
        "revision": canary.revision,
        "step": canary.step,
        "weight": canary.weight,
        "stable_version": canary.stable_version,
        "candidate_version": canary.candidate_version,
    }


def apply_routers(svc: Services, split: TrafficSplit) -> dict[str, Any]:
    """Apply ``split`` with every router; return ``{"applied": n, "failed": [reasons]}`` (failures are logged)."""
    applied, failed = 0, []
    for router in svc.traffic_routers:
        try:
            router.apply(split)
        except Exception as exc:  # the state is saved; the next tick applies the split again
            failed.append(f"{type(router).__name__}: {exc}")
            telemetry.counter_add("modelpilot.canary.router_failures", 1, {"model": split.model})
            log.warning(
                "traffic router %s failed for %s %s: %s", type(router).__name__, split.model, split.environment, exc
            )
        else:
            applied += 1
    return {"applied": applied, "failed": failed}


def publish(svc: Services, model: str, environment: str, canary: Canary | None = None) -> dict[str, Any]:
    """Write the manifest and apply the split to the routers; return what happened (never raises on I/O).

    A failure is logged and reported in the result: the state change it follows is already committed,
    and the manifest and routes are derived from that state, so the next write repairs them.
    """
    result: dict[str, Any] = {"manifest": None, "routing": {"applied": 0, "failed": []}}
    try:
        written = write_manifest(svc, model, environment, canary)
        result["manifest"] = manifest_uri(svc, model, environment) if written else None
        if svc.serving_root is None:
            result["manifest_skipped"] = "no serving root is configured (MODELPILOT_SERVING_ROOT)"
    except Exception as exc:  # reported; the next change or tick writes it again
        result["manifest_error"] = str(exc)
        log.warning("serving manifest of %s %s not written: %s", model, environment, exc)
    if svc.traffic_routers:
        try:
            split = current_split(svc, model, environment, canary)
        except Exception as exc:  # the next tick reads it again
            log.warning("split of %s %s not read: %s", model, environment, exc)
            split = None
        if split is not None:
            result["routing"] = apply_routers(svc, split)
    return result
