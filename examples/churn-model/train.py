"""Train the example churn model and write what ``modelpilot package build`` packages.

Deterministic: the same code gives the same bytes (fixed seed, JSON with sorted keys),
so re-running a pipeline for the same commit builds the same package.

    python train.py --out dist
writes dist/churn/model.json (the model), dist/metrics.json (evaluation metrics) and
dist/reference.csv (reference data for drift monitoring).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

FEATURES = ["tenure_months", "monthly_charges", "support_calls"]


def synthetic(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Customers and whether they churned."""
    x = np.column_stack([rng.integers(0, 72, n), rng.normal(60.0, 15.0, n), rng.poisson(1.5, n)]).astype(float)
    logit = -0.05 * x[:, 0] + 0.03 * x[:, 1] + 0.6 * x[:, 2] - 2.0
    y = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(float)
    return x, y


def fit(x: np.ndarray, y: np.ndarray, steps: int = 400, rate: float = 0.1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logistic regression by gradient descent on standardised features."""
    mean, scale = x.mean(axis=0), x.std(axis=0)
    z = (x - mean) / scale
    w = np.zeros(z.shape[1] + 1)
    design = np.column_stack([np.ones(len(z)), z])
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-design @ w))
        w -= rate * design.T @ (p - y) / len(y)
    return w, mean, scale


def auc(scores: np.ndarray, y: np.ndarray) -> float:
    """Area under the ROC curve (rank statistic)."""
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    ranks[order] = np.arange(1, len(scores) + 1)
    positives = y == 1
    n_pos, n_neg = positives.sum(), (~positives).sum()
    return float((ranks[positives].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="dist")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    x_train, y_train = synthetic(rng, 4000)
    x_test, y_test = synthetic(rng, 1000)
    w, mean, scale = fit(x_train, y_train)
    scores = np.column_stack([np.ones(len(x_test)), (x_test - mean) / scale]) @ w
    out = Path(args.out)
    (out / "churn").mkdir(parents=True, exist_ok=True)
    model = {
        "features": FEATURES,
        "intercept": w[0],
        "coefficients": w[1:].tolist(),
        "mean": mean.tolist(),
        "scale": scale.tolist(),
    }
    (out / "churn" / "model.json").write_text(json.dumps(model, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    accuracy = float(((scores > 0) == (y_test == 1)).mean())
    metrics = {"auc": round(auc(scores, y_test), 4), "accuracy": round(accuracy, 4)}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    rows = ["tenure_months,monthly_charges,support_calls"]
    rows += [f"{int(a)},{b:.2f},{int(c)}" for a, b, c in x_train[:500]]
    (out / "reference.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    print(f"trained churn: auc={metrics['auc']} accuracy={metrics['accuracy']} -> {out}")


if __name__ == "__main__":
    main()
