"""One window's quality numbers, accumulated in bounded memory: predictions chunk by chunk, labels chunk by
chunk, the hash join partition by partition, then ROC AUC score bucket by score bucket.

Nothing here reads or writes the artifact store: :mod:`.batch` feeds it chunks and turns the result into the
report. Local scratch files (the join's partitions and the score buckets) live in a temporary folder that is
removed when the window is done.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpilot.drift.builder import ProfileAccumulator
from modelpilot.drift.frames import Categorical, Chunk, to_float
from modelpilot.quality.attribution import AttributionAccumulator
from modelpilot.quality.auc import SCORE_BUCKETS, AucAccumulator, score_bucket
from modelpilot.quality.cbpe import CbpeAccumulator, band_check
from modelpilot.quality.metrics import ClassificationAccumulator, ClassIndex, RegressionAccumulator, label_text
from modelpilot.service.quality.join import HashJoin, Spill, id_bytes
from modelpilot.service.quality.store import binary_codes, object_values

if TYPE_CHECKING:
    from modelpilot.policy.quality import QualityPolicy
    from modelpilot.service.quality.store import QualityReference

__all__ = ["VersionNumbers", "WindowAccumulator"]

OTHER = "(other)"
MISSING = "(missing)"


def _new_realised(task: str) -> ClassificationAccumulator | RegressionAccumulator:
    if task == "regression":
        return RegressionAccumulator()
    return ClassificationAccumulator(positive=1 if task == "binary" else None)


@dataclass
class VersionNumbers:
    """The accumulators of one model version in one window."""

    version: int | None
    task: str
    predictions: int = 0
    labels_without_prediction_value: int = 0
    realised: ClassificationAccumulator | RegressionAccumulator = field(init=False)
    slices: dict[tuple[int, int], ClassificationAccumulator | RegressionAccumulator] = field(default_factory=dict)
    slice_predictions: dict[tuple[int, int], int] = field(default_factory=dict)
    cbpe_all: CbpeAccumulator = field(default_factory=CbpeAccumulator)
    cbpe_labelled: CbpeAccumulator = field(default_factory=CbpeAccumulator)
    auc: AucAccumulator = field(default_factory=AucAccumulator)
    auc_estimated: AucAccumulator = field(default_factory=AucAccumulator)
    auc_estimated_labelled: AucAccumulator = field(default_factory=AucAccumulator)
    slice_auc: dict[tuple[int, int], AucAccumulator] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.realised = _new_realised(self.task)

    def slice_acc(self, key: tuple[int, int]) -> ClassificationAccumulator | RegressionAccumulator:
        found = self.slices.get(key)
        if found is None:
            found = self.slices[key] = _new_realised(self.task)
        return found


class WindowAccumulator:
    """Feed :meth:`add_predictions` and :meth:`add_labels`, then call :meth:`finish` once."""

    def __init__(
        self,
        policy: QualityPolicy,
        reference: QualityReference,
        live_version: int,
        *,
        scratch: str | None = None,
        partitions: int = 64,
        max_partition_rows: int = 1 << 18,
    ) -> None:
        self.policy, self.reference, self.live = policy, reference, live_version
        self.task = policy.task
        self.cols = policy.columns
        self.classes = ClassIndex()
        self.groups: dict[int, VersionNumbers] = {}
        self.slice_names = list(policy.slices)
        self.slice_values: list[dict[str, int]] = [{} for _ in self.slice_names]
        self.attribution = AttributionAccumulator()
        self.prediction_profile = (
            ProfileAccumulator(reference.prediction_profile) if reference.prediction_profile is not None else None
        )
        self.rows = 0
        self.corrupt_rows = 0
        self.missing_ids = 0
        self.labels_read = 0
        self.labels_missing_value = 0
        self.labels_missing_id = 0
        self.scored = False
        self._tmp = tempfile.TemporaryDirectory(prefix="modelpilot-quality-", dir=scratch)
        self.join = HashJoin(self._tmp.name, partitions=partitions, max_rows=max_partition_rows)
        self.buckets = Spill(self._tmp.name, 3 * SCORE_BUCKETS, "b") if self.task == "binary" else None
        self.sample: list[dict[str, Any]] = []

    def close(self) -> None:
        """Remove the scratch files."""
        self.join.close()
        if self.buckets is not None:
            self.buckets.close()
        self._tmp.cleanup()

    def group(self, version: int) -> VersionNumbers:
        found = self.groups.get(version)
        if found is None:
            found = self.groups[version] = VersionNumbers(version, self.task)
        return found

    # -- predictions ---------------------------------------------------------------
    def _slice_codes(self, index: int, values: Any, n: int) -> np.ndarray:
        if values is None:
            return np.full(n, self._slice_code(index, MISSING), dtype=np.int64)
        if isinstance(values, Categorical):
            table = np.asarray([self._slice_code(index, label_text(c) or MISSING) for c in values.categories] or [0])
            codes = table[np.clip(values.codes, 0, None)]
            return np.where(values.codes >= 0, codes, self._slice_code(index, MISSING)).astype(np.int64)
        arr = values if isinstance(values, np.ndarray) else np.asarray(values, dtype=object)
        uniques, inverse = np.unique(arr.astype(str) if arr.dtype.kind != "f" else arr, return_inverse=True)
        table = np.asarray(
            [self._slice_code(index, label_text(u.item() if hasattr(u, "item") else u) or MISSING) for u in uniques]
            or [0],
            dtype=np.int64,
        )
        return table[inverse.reshape(-1)] if len(uniques) else np.zeros(0, dtype=np.int64)

    def _slice_code(self, index: int, text: str) -> int:
        values = self.slice_values[index]
        code = values.get(text)
        if code is None:
            if len(values) >= self.policy.max_slice_values and text != OTHER:
                return self._slice_code(index, OTHER)
            code = values[text] = len(values)
        return code

    def _predicted(self, cols: dict[str, Any], score: np.ndarray, n: int) -> np.ndarray:
        """Predicted class codes (classifiers; -1 unknown) or predicted values (regression; NaN unknown)."""
        raw = cols.get(self.cols.prediction)
        if self.task == "regression":
            return to_float(raw)[0] if raw is not None else np.full(n, np.nan)
        if self.task == "multiclass":
            return self.classes.encode(object_values(raw)).astype(np.float64) if raw is not None else np.full(n, -1.0)
        if raw is not None:
            pred = binary_codes(object_values(raw), self.policy.positive_label)
        else:
            pred = np.full(n, -1, dtype=np.int64)
        from_score = (pred < 0) & np.isfinite(score)
        pred[from_score] = (score[from_score] >= self.policy.decision_threshold).astype(np.int64)
        return pred.astype(np.float64)

    def add_predictions(self, chunk: Chunk) -> None:
        """Add one chunk of captured predictions."""
        n = chunk.rows
        cols = chunk.columns
        self.rows += n
        self.corrupt_rows += chunk.corrupt_rows
        if not n:
            return
        if self.prediction_profile is not None:
            self.prediction_profile.add(chunk)
        for name, values in cols.items():
            if name.startswith(self.cols.attribution_prefix):
                self.attribution.add(name[len(self.cols.attribution_prefix) :], to_float(values)[0])
        if self.cols.version in cols:
            raw_versions = to_float(cols[self.cols.version])[0]
            versions = np.where(np.isfinite(raw_versions), raw_versions, self.live).astype(np.int64)
        else:
            versions = np.full(n, self.live, dtype=np.int64)
        score = to_float(cols[self.cols.score])[0] if self.cols.score in cols else np.full(n, np.nan)
        self.scored = self.scored or bool(np.isfinite(score).any())
        pred = self._predicted(cols, score, n)
        slices = {f"s{i}": self._slice_codes(i, cols.get(name), n) for i, name in enumerate(self.slice_names)}
        for v in np.unique(versions).tolist():
            mask = versions == v
            group = self.group(int(v))
            group.predictions += int(np.count_nonzero(mask))
            for i in range(len(self.slice_names)):
                codes, counts = np.unique(slices[f"s{i}"][mask], return_counts=True)
                for c, k in zip(codes.tolist(), counts.tolist(), strict=True):
                    group.slice_predictions[(i, c)] = group.slice_predictions.get((i, c), 0) + k
            self._estimate(group, score[mask], pred[mask], labelled=False)
        if self.cols.id in cols:
            ids, present = id_bytes(cols[self.cols.id])
        else:
            ids, present = np.zeros(n, dtype="S1"), np.zeros(n, dtype=bool)
        self.missing_ids += int(n - np.count_nonzero(present))
        rows = {"version": versions, "score": score, "pred": pred, **slices}
        self.join.add_predictions({"id": ids[present], **{k: v[present] for k, v in rows.items()}})
        if not present.all():
            absent = ~present
            self._bucket({k: v[absent] for k, v in rows.items()}, np.full(int(np.count_nonzero(absent)), np.nan))

    def _estimate(self, group: VersionNumbers, score: np.ndarray, pred: np.ndarray, *, labelled: bool) -> None:
        calibration = self.reference.calibration
        if self.task != "binary" or calibration is None or not self.policy.estimate:
            return
        usable = np.isfinite(score) & (pred >= 0)
        if not usable.any():
            return
        s = score[usable]
        target = group.cbpe_labelled if labelled else group.cbpe_all
        target.add(
            calibration.apply(s), pred[usable] == 1, 0 if labelled else calibration.unsupported(s), calibration.bins(s)
        )

    def _bucket(self, rows: dict[str, np.ndarray], y: np.ndarray) -> None:
        if self.buckets is None:
            return
        score = rows["score"]
        finite = np.isfinite(score)
        if not finite.any():
            return
        columns = {k: v[finite] for k, v in rows.items() if k != "pred"}
        columns["y"] = y[finite]
        self.buckets.scatter(score_bucket(score[finite]), columns)

    # -- labels ----------------------------------------------------------------------
    def add_labels(self, chunk: Chunk) -> None:
        """Add one chunk of feedback (id and label columns)."""
        cols = chunk.columns
        n = chunk.rows
        self.labels_read += n
        if not n:
            return
        if self.cols.id not in cols:
            self.labels_missing_id += n
            return
        ids, present = id_bytes(cols[self.cols.id])
        raw = cols.get(self.cols.label)
        if raw is None:
            self.labels_missing_value += n
            return
        if self.task == "regression":
            y = to_float(raw)[0]
            has = np.isfinite(y)
        elif self.task == "binary":
            codes = binary_codes(object_values(raw), self.policy.positive_label)
            y, has = codes.astype(np.float64), codes >= 0
        else:
            codes = self.classes.encode(object_values(raw))
            y, has = codes.astype(np.float64), codes >= 0
        self.labels_missing_id += int(np.count_nonzero(~present))
        self.labels_missing_value += int(np.count_nonzero(present & ~has))
        keep = present & has
        self.join.add_labels(ids[keep], y[keep])

    # -- the join and the score pass -------------------------------------------------
    def finish(self) -> None:
        """Join the window, then compute the AUCs bucket by bucket."""
        for part in self.join.results():
            y = part["y"]
            versions = part["version"]
            for v in np.unique(versions).tolist():
                mask = versions == v
                self._labelled(self.group(int(v)), {k: a[mask] for k, a in part.items()}, y[mask])
            self._bucket({k: a for k, a in part.items() if k not in ("id", "y")}, y)
        if self.buckets is not None:
            self._score_pass(self.buckets)

    def _labelled(self, group: VersionNumbers, part: dict[str, np.ndarray], y: np.ndarray) -> None:
        pred = part["pred"]
        known = ~np.isnan(y)
        if self.task == "regression":
            usable = known & np.isfinite(pred)
            group.labels_without_prediction_value += int(np.count_nonzero(known & ~usable))
            acc = group.realised
            assert isinstance(acc, RegressionAccumulator)
            acc.add(y[usable], pred[usable])
            self._slices(group, part, usable, y, pred)
            return
        usable = known & (pred >= 0)
        group.labels_without_prediction_value += int(np.count_nonzero(known & ~usable))
        score = part["score"]
        cacc = group.realised
        assert isinstance(cacc, ClassificationAccumulator)
        cacc.add(y[usable].astype(np.int64), pred[usable].astype(np.int64), score[usable])
        self._slices(group, part, usable, y, pred)
        self._estimate(group, score[usable], pred[usable], labelled=True)

    def _slices(
        self, group: VersionNumbers, part: dict[str, np.ndarray], usable: np.ndarray, y: np.ndarray, pred: np.ndarray
    ) -> None:
        for i in range(len(self.slice_names)):
            codes = part[f"s{i}"]
            for c in np.unique(codes[usable]).tolist():
                m = usable & (codes == c)
                acc = group.slice_acc((i, int(c)))
                if isinstance(acc, RegressionAccumulator):
                    acc.add(y[m], pred[m])
                else:
                    acc.add(y[m].astype(np.int64), pred[m].astype(np.int64), part["score"][m])

    def _score_pass(self, buckets: Spill) -> None:
        calibration = self.reference.calibration
        for b in range(buckets.parts):
            chunks = list(buckets.read(b))
            buckets.drop(b)
            if not chunks:
                continue
            rows = {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}
            score, y, versions = rows["score"], rows["y"], rows["version"]
            p = calibration.apply(score) if calibration is not None else None
            for v in np.unique(versions).tolist():
                group = self.group(int(v))
                mv = versions == v
                lab = mv & ~np.isnan(y)
                group.auc.add_block(score[lab], (y[lab] == 1).astype(np.float64), (y[lab] == 0).astype(np.float64))
                if p is not None:
                    group.auc_estimated.add_block(score[mv], p[mv], 1.0 - p[mv])
                    group.auc_estimated_labelled.add_block(score[lab], p[lab], 1.0 - p[lab])
                for i in range(len(self.slice_names)):
                    codes = rows[f"s{i}"]
                    for c in np.unique(codes[lab]).tolist():
                        m = lab & (codes == c)
                        acc = group.slice_auc.setdefault((i, int(c)), AucAccumulator())
                        acc.add_block(score[m], (y[m] == 1).astype(np.float64), (y[m] == 0).astype(np.float64))

    # -- the numbers -------------------------------------------------------------------
    def version_numbers(self, group: VersionNumbers) -> dict[str, Any]:
        """The report's section of one version."""
        policy = self.policy
        metrics = dict(group.realised.metrics())
        if self.task == "binary":
            metrics["roc_auc"] = group.auc.value()
        labelled = group.realised.rows
        out: dict[str, Any] = {
            "version": group.version,
            "predictions": group.predictions,
            "labelled": labelled,
            "coverage": labelled / group.predictions if group.predictions else None,
            "enough_labels": labelled >= policy.min_labelled_rows,
            "metrics": metrics,
            "labels_without_prediction": group.labels_without_prediction_value,
        }
        if isinstance(group.realised, ClassificationAccumulator):
            out["correct"] = group.realised.correct
            if self.task == "binary":
                out["calibration_curve"] = group.realised.calibration_curve()
        out["slices"] = self._slice_sections(group)
        if self.task == "binary" and self.reference.calibration is not None and policy.estimate:
            out.update(self._estimates(group))
        return out

    def _slice_sections(self, group: VersionNumbers) -> list[dict[str, Any]]:
        sections = []
        for (i, code), predictions in sorted(group.slice_predictions.items()):
            names = {c: t for t, c in self.slice_values[i].items()}
            acc = group.slices.get((i, code))
            metrics = dict(acc.metrics()) if acc is not None else dict(_new_realised(self.task).metrics())
            if self.task == "binary":
                auc = group.slice_auc.get((i, code))
                metrics["roc_auc"] = auc.value() if auc is not None else None
            labelled = acc.rows if acc is not None else 0
            sections.append(
                {
                    "column": self.slice_names[i],
                    "value": names.get(code, MISSING),
                    "predictions": predictions,
                    "labelled": labelled,
                    "enough_labels": labelled >= self.policy.min_labelled_rows,
                    "metrics": metrics,
                }
            )
        return sections

    def _estimates(self, group: VersionNumbers) -> dict[str, Any]:
        policy = self.policy
        z = policy.band_z
        calibration = self.reference.calibration
        estimated = group.cbpe_all.estimate(z=z, auc=group.auc_estimated.value(), calibration=calibration)
        reasons: list[str] = []
        if calibration is not None and calibration.rows < policy.min_labelled_rows:
            reasons.append(f"the calibration rests on {calibration.rows} reference rows")
        share = group.cbpe_all.unsupported_share
        if share > policy.max_unsupported_share:
            reasons.append(
                f"{share:.1%} of the scores fall where the reference had almost no rows (calibration extrapolated)"
            )
        check: dict[str, Any] = {}
        labelled = group.realised.rows
        if labelled:
            on_labelled = group.cbpe_labelled.estimate(
                z=z, auc=group.auc_estimated_labelled.value(), calibration=calibration
            )
            realised = group.realised.metrics()
            real_auc = group.auc.value()
            for metric, band in on_labelled.items():
                value = real_auc if metric == "roc_auc" else realised.get(metric)
                within = band_check(band, value) if labelled >= policy.min_labelled_rows else None
                check[metric] = {"estimate": band, "realised": value, "within": within}
            missed = [m for m, c in check.items() if c["within"] is False]
            if missed:
                reasons.append(f"realised {', '.join(missed)} outside the band estimated for the same rows")
        return {
            "estimated": estimated,
            "estimate_check": check,
            "estimate_reliability": {
                "reliable": not reasons,
                "reasons": reasons,
                "unsupported_share": share,
                "z": z,
            },
        }
