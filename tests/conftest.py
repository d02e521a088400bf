"""Shared fixtures: package builders on disk, a local-backend bus in a temporary home."""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import pytest

from modelpilot.package.builder import write_package

EVENTS = Path(__file__).parent / "events"

# The tests index the function app with every optional function on (the Durable drift fan-out is off by default);
# tests/entrypoints/test_azure_drift_durable.py checks the default in a fresh interpreter.
os.environ["MODELPILOT_AZURE_DURABLE_DRIFT"] = "true"


@pytest.fixture(autouse=True)
def _isolated_modelpilot_logger():
    """Undo what a test did to the ``modelpilot`` logger (Powertools attaches a stdout handler on AWS),
    so one test's logging never leaks into another test's captured output."""
    root = logging.getLogger("modelpilot")
    saved = dict(vars(root))
    saved["handlers"] = list(root.handlers)
    yield
    changed = list(root.handlers) != saved["handlers"] or vars(root).keys() != saved.keys()
    root.__dict__.clear()
    root.__dict__.update(saved)
    module = sys.modules.get("modelpilot.entrypoints.aws.runtime")
    if changed and module is not None and hasattr(getattr(module, "logger", None), "cache_clear"):
        module.logger.cache_clear()  # the next test builds (and attaches) a fresh Powertools logger


def load_event(name: str) -> Any:
    """Return a JSON fixture from tests/events."""
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


@pytest.fixture
def make_package(tmp_path: Path):
    """Return a function that writes a valid package folder and returns its path."""
    counter = {"n": 0}

    def make(name: str = "churn", *, auc: float = 0.85, folder: str | None = None, **extra: Any) -> Path:
        counter["n"] += 1
        root = tmp_path / (folder or f"pkg-{name}-{counter['n']}")
        metrics = {"auc": auc, **extra.pop("metrics", {})}
        write_package(
            root,
            files={"model.bin": f"weights-{name}-{auc}-{counter['n']}".encode()},
            name=name,
            framework="numpy-logreg",
            metrics=metrics,
            lineage={"run_id": f"run-{counter['n']}", "code_revision": "abc"},
            features=[{"name": "x", "type": "numeric", "minimum": 0}],
            **extra,
        )
        return root

    return make


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory):
    """A real ``mlflow server`` (SQLite, 127.0.0.1, an ephemeral port) for the session; fails if mlflow is missing."""
    from tests.support.mlflow_server import CLIENT_ENV, MlflowServer, require_mlflow

    require_mlflow()
    with pytest.MonkeyPatch.context() as mp:
        for name, value in CLIENT_ENV.items():
            mp.setenv(name, value)
        server = MlflowServer(tmp_path_factory.mktemp("mlflow"))
        server.start()
        try:
            yield server
        finally:
            server.stop()
