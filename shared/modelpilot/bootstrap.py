"""The composition root: settings → the backend's adapters → typed ``Services`` → message bus.

The only place where adapters are assembled into the service layer. Each backend's
``adapters/<backend>/wiring.py`` builds its adapters (one shared client
configuration per cloud) and returns them as :class:`~modelpilot.ports.Adapters`;
this module adds the policy loader and the clock and hands the result to the bus.

Built once and cached per process (one Lambda or Functions container). Inside a
function runtime, :func:`prepare` builds it while the handler module is imported —
the platform's init phase, which runs with a CPU boost and before the first event —
together with everything a first invocation would otherwise build (clients, handler
modules, the policy), so the first call costs about what a warm call does. Anywhere
else (tests, the CLI) importing a handler builds nothing and opens no connection.
Tests and the CLI call :func:`bootstrap` with overrides (fakes, a simulated clock).
"""

from __future__ import annotations

import dataclasses
import importlib
import threading
from typing import TYPE_CHECKING, Any

from modelpilot.config import Settings, in_function_runtime

if TYPE_CHECKING:
    from collections.abc import Iterable

    from modelpilot.ports import Adapters, MlflowRegistry, PackageUploader
    from modelpilot.service.messagebus import MessageBus, Services

__all__ = [
    "Settings",
    "bootstrap",
    "build_adapters",
    "build_services",
    "build_uploader",
    "caller_identity",
    "get_bus",
    "prepare",
    "reset",
]

_BACKENDS = {
    "local": "modelpilot.adapters.local.wiring",
    "aws": "modelpilot.adapters.aws.wiring",
    "azure": "modelpilot.adapters.azure.wiring",
}
#: the MLflow registry adapter (any backend), built when MODELPILOT_MLFLOW_TRACKING_URI is set
_MLFLOW = "modelpilot.adapters.mlflow"
#: keyword options a backend's ``build_adapters`` takes (not adapters): boto3 clients, an Azure credential
_BACKEND_OPTIONS = {"local": frozenset(), "aws": frozenset({"clients"}), "azure": frozenset({"credential"})}
_lock = threading.Lock()
_bus: MessageBus | None = None


def build_adapters(settings: Settings, **options: Any) -> Adapters:
    """Return the adapters of ``settings.backend`` (``options``: that backend's client options)."""
    module_name = _BACKENDS.get(settings.backend)
    if module_name is None:
        from modelpilot.exceptions import InvalidInput

        raise InvalidInput(f"unknown backend {settings.backend!r}; use one of {', '.join(_BACKENDS)}")
    adapters: Adapters = importlib.import_module(module_name).build_adapters(settings, **options)
    return adapters


def build_uploader(settings: Settings, **options: Any) -> PackageUploader:
    """Return only the package uploader of ``settings.backend`` (``modelpilot push`` needs no registry)."""
    module_name = _BACKENDS.get(settings.backend)
    if module_name is None:
        from modelpilot.exceptions import InvalidInput

        raise InvalidInput(f"unknown backend {settings.backend!r}; use one of {', '.join(_BACKENDS)}")
    uploader: PackageUploader = importlib.import_module(module_name).build_uploader(settings, **options)
    return uploader


def caller_identity(settings: Settings, **options: Any) -> str | None:
    """Return who the backend's credentials belong to (canonical), or None on the local backend."""
    module_name = _BACKENDS.get(settings.backend)
    if module_name is None:
        from modelpilot.exceptions import InvalidInput

        raise InvalidInput(f"unknown backend {settings.backend!r}; use one of {', '.join(_BACKENDS)}")
    who: str | None = importlib.import_module(module_name).caller_identity(settings, **options)
    return who


def build_services(settings: Settings, **overrides: Any) -> Services:
    """Build the :class:`Services` of ``settings.backend``.

    ``overrides`` replace adapters (``registry=…``, ``notifier=…``) or set a Services
    field (``clock=…``, ``policy_loader=…``); a backend's client options
    (``clients`` on AWS, ``credential`` on Azure) are passed to its wiring.
    """
    from modelpilot.policy.loader import PolicyLoader
    from modelpilot.ports import Adapters
    from modelpilot.service.messagebus import Services

    options = {k: overrides.pop(k) for k in list(overrides) if k in _BACKEND_OPTIONS.get(settings.backend, ())}
    adapters = build_adapters(settings, **options)
    for f in dataclasses.fields(Adapters):
        if f.name in overrides:
            setattr(adapters, f.name, overrides.pop(f.name))
    if adapters.mlflow is None and settings.mlflow_tracking_uri:
        adapters.mlflow = _mlflow(settings, adapters)
    loader = overrides.pop("policy_loader", None) or PolicyLoader(
        adapters.artifacts,
        named=adapters.policy_location,
        conventional=adapters.default_policy_location,
        ttl_seconds=settings.policy_ttl_seconds,
    )
    services = Services(
        registry=adapters.registry,
        artifacts=adapters.artifacts,
        publisher=adapters.publisher,
        notifier=adapters.notifier,
        policy_loader=loader,
        idempotency=adapters.idempotency,
        secrets=adapters.secrets,
        metrics_sources=dict(adapters.metrics_sources),
        alarm_tags=adapters.alarm_tags,
        telemetry_ingest=adapters.telemetry_ingest,
        mlflow=adapters.mlflow,
        lifecycle_sync=dict(adapters.lifecycle_sync),
        data_root=adapters.data_root,
        serving_root=adapters.serving_root,
        drift_fanout=adapters.drift_fanout,
        traffic_routers=list(adapters.traffic_routers),
        **overrides,
    )
    from modelpilot.service.quality.sli import QualityWindowsSource

    # quality SLIs read the quality batch's windows through the artifact store, on every backend
    services.metrics_sources.setdefault("quality", QualityWindowsSource(services))
    return services


def _mlflow(settings: Settings, adapters: Adapters) -> MlflowRegistry:
    """The MLflow registry of ``MODELPILOT_MLFLOW_TRACKING_URI``, with credentials from the secret store if named."""
    module = importlib.import_module(_MLFLOW)  # cloud-neutral, like the backends: loaded by name
    authorization = None
    if settings.mlflow_token_secret:
        if adapters.secrets is None:
            from modelpilot.exceptions import InvalidInput

            raise InvalidInput("MODELPILOT_MLFLOW_TOKEN_SECRET names a secret but this backend has no secret store")
        authorization = module.secret_authorization(adapters.secrets, settings.mlflow_token_secret)
    registry: MlflowRegistry = module.MlflowRestRegistry(str(settings.mlflow_tracking_uri), authorization=authorization)
    return registry


def bootstrap(settings: Settings | None = None, *, react: bool = True, **overrides: Any) -> MessageBus:
    """Return a new message bus wired for ``settings`` (default: from the environment)."""
    from modelpilot.service.messagebus import MessageBus

    return MessageBus(build_services(settings or Settings.from_env(), **overrides), react=react)


def get_bus() -> MessageBus:
    """Return this process's bus, building it on first call (thread-safe)."""
    global _bus
    if _bus is None:
        with _lock:
            if _bus is None:
                _bus = bootstrap()
    return _bus


def prepare(
    commands: Iterable[str] = (),
    *,
    modules: Iterable[str] = (),
    alarm_tags: bool = False,
    metrics_sources: bool = False,
    force: bool = False,
) -> MessageBus | None:
    """Build, in a function's init phase, what its first invocation would otherwise build; return the bus.

    Inside a function runtime (Lambda, an Azure Functions worker; or with ``force``) this builds
    the process's bus (settings, adapters, every client they hold), imports the handlers of
    ``commands`` (command class names), the in-process reactions and ``modules``, builds the
    clients that ``alarm_tags`` and the ``metrics_sources`` would build on first use, and reads
    the policy. Outside a function runtime it does nothing and returns None, so importing a
    handler in a test or the CLI builds nothing.

    Nothing here may stop the function from starting: a failure (a missing setting, a policy that
    does not parse, an unreachable service) is logged and left for the first invocation, which
    meets it again and answers it through the one dispatch path.
    """
    if not (force or in_function_runtime()):
        return None
    from modelpilot import telemetry
    from modelpilot.service.messagebus import COMMAND_HANDLERS, EVENT_HANDLERS

    log = telemetry.get_logger("modelpilot.bootstrap")
    refs = [COMMAND_HANDLERS[name] for name in commands]
    refs += [ref for reactions in EVENT_HANDLERS.values() for ref in reactions]
    try:
        for name in dict.fromkeys([ref.partition(":")[0] for ref in refs] + list(modules)):
            importlib.import_module(name)
        bus = get_bus()
        services = bus.services
        lazy: list[Any] = []
        if alarm_tags:
            lazy.append(services.alarm_tags)
        if metrics_sources:
            lazy.extend(services.metrics_sources.values())
        for adapter in lazy:
            getattr(adapter, "client", None)  # a lazy adapter builds its client on first access
        services.policy_loader()
    except Exception as exc:  # the first invocation meets it again and reports it through the dispatch path
        log.warning("init phase: %s: %s; the first invocation builds it again", type(exc).__name__, exc)
        return None
    return bus


def reset() -> None:
    """Forget the cached bus (tests, or after settings change)."""
    global _bus
    with _lock:
        _bus = None
