"""The demo's tiny real models: synthetic churn data, logistic regression with numpy, their packages."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    import numpy as np

    from modelpilot.demo.context import DemoContext

__all__ = ["CATEGORICAL", "FEATURES", "auc", "build_package", "synthetic_churn", "train_logreg"]

FEATURES = ["tenure_months", "monthly_charges", "support_calls", "usage_gb"]
CATEGORICAL = {"plan": ["basic", "standard", "pro"], "region": ["eu", "us", "apac"]}


def synthetic_churn(
    n: int, rng: np.random.Generator, *, shift: dict[str, float] | None = None
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Return (numeric features, labels, categorical columns) of a synthetic churn data set."""
    import numpy as np

    shift = shift or {}
    tenure = rng.gamma(2.0, 12.0, n) + shift.get("tenure_months", 0.0)
    charges = rng.normal(70, 20, n) + shift.get("monthly_charges", 0.0)
    calls = rng.poisson(1.5 + shift.get("support_calls", 0.0), n).astype(float)
    usage = rng.lognormal(3.0, 0.5, n) + shift.get("usage_gb", 0.0)
    x = np.column_stack([tenure, charges, calls, usage])
    logit = -0.06 * tenure + 0.03 * charges + 0.7 * calls - 0.01 * usage - 1.5
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    cats = {name: rng.choice(values, n) for name, values in CATEGORICAL.items()}
    return x, y, cats


def train_logreg(
    x: np.ndarray, y: np.ndarray, *, steps: int = 300, lr: float = 0.5
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fit logistic regression by gradient descent on standardised features; return (w, mean, std)."""
    import numpy as np

    mean, std = x.mean(axis=0), x.std(axis=0) + 1e-9
    z = np.column_stack([np.ones(len(x)), (x - mean) / std])
    w = np.zeros(z.shape[1])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-z @ w))
        w -= lr * z.T @ (p - y) / len(y)
    return w, mean, std


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Return the ROC AUC (Mann-Whitney U with average ranks for ties)."""
    import numpy as np

    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    pos = labels == 1
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def build_package(ctx: DemoContext, version: int, *, features: list[int], label_noise: float, steps: int) -> Path:
    """Train one model and write its package (weights, reference data, manifest)."""
    import time

    import numpy as np

    from modelpilot.package.builder import write_package

    rng = np.random.default_rng(100 + version)
    x, y, cats = synthetic_churn(6000, rng)
    train, test = slice(0, 4000), slice(4000, 6000)
    y_train = y[train].copy()
    flip = rng.random(len(y_train)) < label_noise
    y_train[flip] = 1 - y_train[flip]
    t0 = time.perf_counter()
    w, mean, std = train_logreg(x[train][:, features], y_train, steps=steps)
    z = np.column_stack([np.ones(2000), (x[test][:, features] - mean) / std])
    scores = 1 / (1 + np.exp(-z @ w))
    latency_ms = (time.perf_counter() - t0) * 1000 / steps
    metrics = {
        "auc": round(auc(scores, y[test]), 4),
        "accuracy": round(float(((scores > 0.5) == (y[test] == 1)).mean()), 4),
        "latency_p95_ms": round(latency_ms, 3),
    }
    weights = io.BytesIO()
    np.savez(weights, w=w, mean=mean, std=std, features=np.array(features))
    reference = io.StringIO()
    reference.write(",".join(FEATURES + list(CATEGORICAL)) + "\n")
    for row in range(2000):
        nums = ",".join(f"{v:.4f}" for v in x[test][row])
        reference.write(nums + "," + ",".join(str(cats[c][4000 + row]) for c in CATEGORICAL) + "\n")
    root = ctx.home / "packages" / f"churn-v{version}"
    write_package(
        root,
        files={"model.npz": weights.getvalue(), "reference.csv": reference.getvalue().encode()},
        artifacts=["model.npz"],
        name="churn",
        framework="numpy-logreg",
        metrics=metrics,
        lineage={"run_id": f"demo-run-{version}", "code_revision": "demo", "training_data_uri": "synthetic://churn"},
        features=[
            {"name": "tenure_months", "type": "numeric", "minimum": 0},
            {"name": "monthly_charges", "type": "numeric"},
            {"name": "support_calls", "type": "numeric", "minimum": 0},
            {"name": "usage_gb", "type": "numeric", "minimum": 0},
            {"name": "plan", "type": "categorical", "allowed_values": CATEGORICAL["plan"]},
            {"name": "region", "type": "categorical", "allowed_values": CATEGORICAL["region"]},
        ],
        reference_data_uri="reference.csv",
    )
    ctx.packages[version] = root
    ctx.data.setdefault("metrics", {})[version] = metrics
    return root
