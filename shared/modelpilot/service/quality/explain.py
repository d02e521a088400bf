"""Attributions computed on a sample, for models whose server logs none: SHAP behind the ``shap`` extra.

The ``attribution.hook`` of the policy names a function ``module:function`` installed with the model's code;
the quality batch calls it with a uniform sample of the window's feature rows::

    def explain(frame: dict[str, numpy.ndarray], *, model: str, version: int) -> dict[str, numpy.ndarray]:
        ...  # one attribution per row and feature

A hook may compute them any way it likes; :func:`shap_attributions` does it with SHAP's model-agnostic
explainer. ``shap`` is imported only when called, so it is never part of the default install or the Lambda
layer (``pip install 'modelpilot[shap]'`` where a hook needs it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpilot.exceptions import InvalidInput

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["shap_attributions"]


def shap_attributions(
    predict: Callable[[np.ndarray], np.ndarray],
    frame: dict[str, np.ndarray],
    background: dict[str, np.ndarray],
    *,
    max_evals: int | None = None,
) -> dict[str, np.ndarray]:
    """SHAP values of ``predict`` (rows → scores) for the rows of ``frame``, against ``background`` rows.

    Raises ``InvalidInput`` naming the extra when ``shap`` is not installed.
    """
    try:
        shap: Any = importlib.import_module("shap")
    except ImportError:
        raise InvalidInput(
            "attributions by SHAP need the shap package: pip install 'modelpilot[shap]'", extra="shap"
        ) from None
    names = list(frame)
    rows = np.column_stack([np.asarray(frame[n], dtype=np.float64) for n in names])
    base = np.column_stack([np.asarray(background[n], dtype=np.float64) for n in names])
    explainer = shap.Explainer(predict, base)
    explanation = explainer(rows, max_evals=max_evals) if max_evals else explainer(rows)
    values = np.asarray(explanation.values, dtype=np.float64)
    if values.ndim == 3:  # one set per output: keep the positive class (the last output)
        values = values[:, :, -1]
    return {name: values[:, i] for i, name in enumerate(names)}
