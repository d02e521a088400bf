"""MLflow's tracking server and model registry as the :class:`MlflowRegistry` port, over its REST API.

Only the standard library is used (``urllib``): the functions need no ``mlflow`` package, and importing this
module is cheap. Artifacts are read through the server's artifact proxy (``mlflow server`` serves artifacts by
default: ``mlflow-artifacts:/…`` URIs, ``/api/2.0/mlflow-artifacts/artifacts``); a model version whose artifacts
live anywhere else is refused with a message that says so.

A server behind authentication (MLflow's basic-auth app, a reverse proxy) takes an ``Authorization`` header built
from a secret read through the ``SecretsProvider`` port (``user:password`` → Basic, anything else → Bearer). The
header is never logged nor put in an error message, and a URL with credentials in it is refused.
"""

from __future__ import annotations

import base64
import json
import posixpath
import urllib.error
import urllib.parse
import urllib.request
from typing import TYPE_CHECKING, Any

from modelpilot.exceptions import InvalidInput, NotAuthorized, NotFound, TransientError
from modelpilot.ports import MlflowFile, MlflowModelVersion, MlflowRegistry, MlflowRun

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from modelpilot.ports import SecretsProvider

__all__ = ["MlflowRestRegistry", "secret_authorization"]

_ARTIFACTS_SCHEME = "mlflow-artifacts:"
_NOT_FOUND = {"RESOURCE_DOES_NOT_EXIST", "NOT_FOUND"}


class MlflowRestRegistry(MlflowRegistry):
    """Reads and writes an MLflow server through ``/api/2.0/mlflow`` (the REST API every MLflow 2.x/3.x serves).

    Parameters
    ----------
    tracking_uri:
        The server's base URL, e.g. ``http://127.0.0.1:5000``.
    timeout:
        Seconds to wait for one HTTP response.
    authorization:
        Returns the ``Authorization`` header of a request, or None to send none.
    """

    def __init__(
        self, tracking_uri: str, *, timeout: float = 30.0, authorization: Callable[[], str | None] | None = None
    ) -> None:
        parsed = urllib.parse.urlparse(tracking_uri)
        if parsed.scheme not in {"http", "https"} or not parsed.netloc:
            raise InvalidInput(f"the MLflow tracking URI must be http(s)://host:port, got {tracking_uri!r}")
        if parsed.username is not None or parsed.password is not None:
            raise InvalidInput(
                "the MLflow tracking URI holds credentials; put them in a secret (MODELPILOT_MLFLOW_TOKEN_SECRET)"
            )
        self.tracking_uri = tracking_uri.rstrip("/")
        self.timeout = timeout
        self._authorization = authorization

    def __repr__(self) -> str:
        return f"MlflowRestRegistry({self.tracking_uri!r}, authorization={'yes' if self._authorization else 'no'})"

    # -- HTTP -------------------------------------------------------------------------
    def _open(self, method: str, path: str, *, params: dict[str, str] | None = None, body: Any = None) -> Any:
        target = f"{self.tracking_uri}{path}"
        if params:
            target += "?" + urllib.parse.urlencode(params)
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        credential = self._authorization() if self._authorization is not None else None
        if credential:
            headers["Authorization"] = credential
        request = urllib.request.Request(target, data=data, method=method, headers=headers)  # noqa: S310
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)  # noqa: S310 - scheme checked
        except urllib.error.HTTPError as exc:
            raise _error(exc, method, path, self.tracking_uri) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise TransientError(f"cannot reach MLflow at {self.tracking_uri}: {exc}", url=self.tracking_uri) from None

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        with self._open(method, path, **kwargs) as reply:
            raw = reply.read()
        try:
            data = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            raise TransientError(f"MLflow at {self.tracking_uri} answered {path} with non-JSON") from None
        if not isinstance(data, dict):
            raise InvalidInput(f"MLflow answered {path} with {type(data).__name__}, expected an object")
        return data

    # -- reads --------------------------------------------------------------------------
    def model_version(self, name: str, version: str) -> MlflowModelVersion:
        data = self._json("GET", "/api/2.0/mlflow/model-versions/get", params={"name": name, "version": version})
        return _version(data.get("model_version") or {})

    def run(self, run_id: str) -> MlflowRun:
        data = self._json("GET", "/api/2.0/mlflow/runs/get", params={"run_id": run_id}).get("run") or {}
        info, body = data.get("info") or {}, data.get("data") or {}
        metrics: dict[str, tuple[int, int, float]] = {}
        for m in body.get("metrics") or []:
            # runs/get returns each metric's latest value; keep the latest (step, timestamp) should one repeat
            order = (int(m.get("step") or 0), int(m.get("timestamp") or 0), float(m["value"]))
            if m["key"] not in metrics or order[:2] >= metrics[m["key"]][:2]:
                metrics[m["key"]] = order
        return MlflowRun(
            run_id=str(info.get("run_id") or run_id),
            experiment_id=str(info.get("experiment_id") or ""),
            user_id=str(info.get("user_id") or ""),
            status=str(info.get("status") or ""),
            metrics={k: v[2] for k, v in sorted(metrics.items())},
            params={p["key"]: str(p.get("value", "")) for p in body.get("params") or []},
            tags={t["key"]: str(t.get("value", "")) for t in body.get("tags") or []},
        )

    def _artifact_root(self, name: str, version: str) -> str:
        params = {"name": name, "version": version}
        uri = str(self._json("GET", "/api/2.0/mlflow/model-versions/get-download-uri", params=params)["artifact_uri"])
        if not uri.startswith(_ARTIFACTS_SCHEME):
            raise InvalidInput(
                f"MLflow model {name} v{version} stores its artifacts at {uri.split(':', 1)[0]}:…, not behind the "
                "server's artifact proxy; run `mlflow server` with artifact serving (the default) so they can be read"
            )
        return uri[len(_ARTIFACTS_SCHEME) :].lstrip("/")

    def artifact_files(self, name: str, version: str) -> list[MlflowFile]:
        root = self._artifact_root(name, version)
        found: list[MlflowFile] = []
        pending = [""]
        while pending:
            folder = pending.pop()
            listing = self._json(
                "GET", "/api/2.0/mlflow-artifacts/artifacts", params={"path": posixpath.join(root, folder)}
            )
            for entry in listing.get("files") or []:
                rel = posixpath.join(folder, str(entry["path"]).rsplit("/", 1)[-1])
                if entry.get("is_dir"):
                    pending.append(rel)
                else:
                    size = entry.get("file_size")
                    found.append(MlflowFile(rel, int(size) if size is not None else None))
        return sorted(found, key=lambda f: f.path)

    def open_artifact(self, name: str, version: str, path: str) -> Iterator[bytes]:
        norm = posixpath.normpath(path)
        if norm.startswith(("..", "/")):
            raise InvalidInput(f"artifact path {path!r} leaves the model's folder")
        quoted = urllib.parse.quote(posixpath.join(self._artifact_root(name, version), norm))
        reply = self._open("GET", f"/api/2.0/mlflow-artifacts/artifacts/{quoted}")
        with reply:
            while chunk := reply.read(1024 * 1024):
                yield chunk

    def alias_version(self, name: str, alias: str) -> str | None:
        try:
            data = self._json("GET", "/api/2.0/mlflow/registered-models/alias", params={"name": name, "alias": alias})
        except NotFound:
            return None
        except InvalidInput as exc:
            # MLflow answers an unset alias with INVALID_PARAMETER_VALUE "... alias ... not found"
            if "not found" in exc.message.lower():
                return None
            raise
        return str((data.get("model_version") or {}).get("version") or "") or None

    # -- writes -------------------------------------------------------------------------
    def set_alias(self, name: str, alias: str, version: str) -> None:
        body = {"name": name, "alias": alias, "version": version}
        self._json("POST", "/api/2.0/mlflow/registered-models/alias", body=body)

    def delete_alias(self, name: str, alias: str) -> None:
        try:
            self._json("DELETE", "/api/2.0/mlflow/registered-models/alias", body={"name": name, "alias": alias})
        except NotFound:
            return

    def set_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        body = {"name": name, "version": version, "key": key, "value": value}
        self._json("POST", "/api/2.0/mlflow/model-versions/set-tag", body=body)


def _version(mv: dict[str, Any]) -> MlflowModelVersion:
    return MlflowModelVersion(
        name=str(mv.get("name", "")),
        version=str(mv.get("version", "")),
        source=str(mv.get("source", "")),
        run_id=str(mv["run_id"]) if mv.get("run_id") else None,
        status=str(mv.get("status", "")),
        tags={t["key"]: str(t.get("value", "")) for t in mv.get("tags") or []},
        aliases=tuple(str(a) for a in mv.get("aliases") or []),
        description=str(mv.get("description") or ""),
        user_id=str(mv.get("user_id") or ""),
    )


def _error(exc: urllib.error.HTTPError, method: str, path: str, url: str) -> Exception:
    """Map an HTTP error of MLflow to the error tree (the body's ``error_code`` and ``message``)."""
    try:
        body = json.loads(exc.read() or b"{}")
    except (json.JSONDecodeError, OSError):
        body = {}
    code = str(body.get("error_code", "")) if isinstance(body, dict) else ""
    message = str(body.get("message", ""))[:500] if isinstance(body, dict) else ""
    where = f"MLflow {method} {path} answered HTTP {exc.code}" + (f" {code}: {message}" if code else "")
    if exc.code in (401, 403):
        return NotAuthorized(f"{where}; check MODELPILOT_MLFLOW_TOKEN_SECRET", url=url)
    if exc.code == 404 or code in _NOT_FOUND:
        return NotFound(where, url=url)
    if exc.code == 429 or exc.code >= 500:
        return TransientError(where, url=url)
    return InvalidInput(where, url=url)


def secret_authorization(secrets: SecretsProvider, name: str) -> Callable[[], str]:
    """Return a function giving the ``Authorization`` header from secret ``name`` (read on each request; the
    provider caches it): ``user:password`` → Basic, anything else → Bearer."""

    def header() -> str:
        value = secrets.get_secret(name).strip()
        if not value:
            raise InvalidInput(f"the MLflow credentials secret {name!r} is empty")
        if ":" in value:
            return "Basic " + base64.b64encode(value.encode()).decode()
        return f"Bearer {value}"

    return header
