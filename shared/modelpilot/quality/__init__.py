"""Model quality maths: realised metrics, performance estimated without labels, attribution drift.

Pure numpy on in-memory arrays, no I/O. Every accumulator takes rows chunk by chunk and merges by
addition, so the service layer can feed it a window of any length in bounded memory:

* :mod:`.metrics` — confusion counts (accuracy, precision, recall, F1), log loss, expected calibration
  error, and MAE / RMSE / MAPE, with scikit-learn's definitions;
* :mod:`.auc` — exact ROC AUC (ties count one half) from score-ordered blocks;
* :mod:`.cbpe` — isotonic calibration on the reference and confidence-based performance estimation
  with its band (NannyML's CBPE for binary classifiers);
* :mod:`.attribution` — mean |attribution| rankings and their NDCG (SageMaker Clarify's and Azure ML's
  feature-attribution drift);
* :mod:`.verdict` — thresholds, absolute or relative to the reference, into breaches and a severity;
* :mod:`.report` — the versioned JSON quality report.
"""

from __future__ import annotations
