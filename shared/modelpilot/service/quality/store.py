"""Where the quality batch keeps things, and the quality reference of a version.

Layout under ``Services.data_root``::

    captures/<model>/<env>/YYYY/MM/DD/HH/...          captured predictions (the drift batch reads them too)
    feedback/<model>/<env>/YYYY/MM/DD/HH/...          labels of the predictions made in that hour
    profiles/<model>/v<N>/quality-reference.json      calibration, reference metrics and attributions
    profiles/<model>/v<N>/prediction-profile.json     the reference score / prediction distribution
    quality/<model>/<env>/<report id>.json | .html    one report per window and set of inputs (write-once)
    quality/<model>/<env>/windows/<window end>.json   the latest numbers of each window (the quality SLIs)

The quality reference is built from the version's reference data set (the manifest's ``reference_data_uri``)
when that data carries the model's outputs and labels: the score (binary), the prediction, the label and
optionally ``<attribution prefix><feature>`` columns. Without them the batch still joins and measures; only
what needs the reference (estimation, relative thresholds, prediction and attribution drift) is left out, and
the report says why.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np

from modelpilot.domain.model import FeatureSpec
from modelpilot.drift.builder import build_reference
from modelpilot.drift.frames import to_float
from modelpilot.drift.io.readers import ReadStats, read_capture
from modelpilot.drift.profile import Profile
from modelpilot.exceptions import ArtifactMissing, DataError, InvalidInput
from modelpilot.quality.attribution import AttributionAccumulator
from modelpilot.quality.auc import roc_auc
from modelpilot.quality.cbpe import Calibration, fit_calibration
from modelpilot.quality.metrics import ClassificationAccumulator, ClassIndex, RegressionAccumulator, label_text
from modelpilot.service.drift.store import _resolve, checked

if TYPE_CHECKING:
    from modelpilot.domain.model import ModelVersion
    from modelpilot.policy.quality import AttributionPolicy, QualityPolicy
    from modelpilot.service.messagebus import Services

__all__ = [
    "QualityReference",
    "attribution_policy",
    "binary_codes",
    "build_quality_reference",
    "hour_prefixes",
    "load_quality_reference",
    "object_values",
    "quality_policy",
    "report_uris",
    "window_summary_uri",
]

REFERENCE_FORMAT = "modelpilot.quality.reference"


def quality_policy(svc: Services, model: str) -> QualityPolicy:
    """Return the model's ``quality`` block; raise ``InvalidInput`` when the policy has none."""
    block = svc.policy.model_policy(model).quality
    if block is None:
        raise InvalidInput(f"the policy has no quality block for {model}", model=model)
    return block


def attribution_policy(svc: Services, model: str) -> AttributionPolicy | None:
    """Return the model's ``attribution`` block (None: attribution drift is not judged)."""
    return svc.policy.model_policy(model).attribution


def hour_prefixes(svc: Services, kind: str, model: str, environment: str, start: datetime, end: datetime) -> list[str]:
    """Return the hourly prefixes of ``kind`` (``captures`` or ``feedback``) covering ``[start, end)``."""
    hour = start.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    out = []
    while hour < end:
        out.append(
            svc.artifacts.join(svc.data_root, kind, model, environment, *hour.strftime("%Y/%m/%d/%H").split("/"))
        )
        hour += timedelta(hours=1)
    return out


def report_uris(svc: Services, model: str, environment: str, rid: str) -> tuple[str, str]:
    """Return the JSON and HTML URIs of a quality report."""
    base = svc.artifacts.join(svc.data_root, "quality", model, environment)
    return svc.artifacts.join(base, f"{rid}.json"), svc.artifacts.join(base, f"{rid}.html")


def window_summary_uri(svc: Services, model: str, environment: str, window_end: datetime) -> str:
    """Return where the latest numbers of one window live."""
    stamp = window_end.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return svc.artifacts.join(svc.data_root, "quality", model, environment, "windows", f"{stamp}.json")


def _reference_uri(svc: Services, model: str, version: int, name: str) -> str:
    return svc.artifacts.join(svc.data_root, "profiles", model, f"v{version}", name)


@dataclass
class QualityReference:
    """What the batch compares a window with; every part may be missing (``notes`` says why)."""

    task: str
    rows: int = 0
    labelled: int = 0
    metrics: dict[str, float | None] = field(default_factory=dict)
    calibration: Calibration | None = None
    attribution: dict[str, float] = field(default_factory=dict)
    prediction_profile: Profile | None = None
    profile_uri: str | None = None
    source: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> bytes:
        """Return the stored form (the prediction profile is stored beside it)."""
        doc = {
            "format": REFERENCE_FORMAT,
            "version": 1,
            "task": self.task,
            "rows": self.rows,
            "labelled": self.labelled,
            "metrics": self.metrics,
            "calibration": self.calibration.to_dict() if self.calibration else None,
            "attribution": self.attribution,
            "prediction_profile": self.profile_uri,
            "source": self.source,
            "notes": self.notes,
        }
        return json.dumps(doc, sort_keys=True, allow_nan=False).encode()

    @classmethod
    def from_json(cls, data: bytes, profile: Profile | None) -> QualityReference:
        """Parse the stored form."""
        doc = json.loads(data)
        if doc.get("format") != REFERENCE_FORMAT:
            raise DataError("not a quality reference")
        return cls(
            task=doc["task"],
            rows=doc["rows"],
            labelled=doc["labelled"],
            metrics=doc["metrics"],
            calibration=Calibration.from_dict(doc["calibration"]) if doc.get("calibration") else None,
            attribution=doc.get("attribution") or {},
            prediction_profile=profile,
            profile_uri=doc.get("prediction_profile"),
            source=doc.get("source"),
            notes=list(doc.get("notes") or []),
        )


def build_quality_reference(svc: Services, version: ModelVersion, policy: QualityPolicy) -> QualityReference:
    """Build and store a version's quality reference from its reference data set."""
    ref = QualityReference(task=policy.task)
    source = version.manifest.reference_data_uri
    if not source:
        ref.notes.append("the manifest names no reference data (reference_data_uri)")
        return _store(svc, version, ref)
    uri = _resolve(svc, version, source)
    ref.source = uri
    cols = policy.columns
    wanted = {cols.score, cols.prediction, cols.label}
    parts: dict[str, list[np.ndarray]] = {}
    stats = ReadStats()
    names = [f.name for f in version.manifest.features]
    for chunk in checked(read_capture(svc.artifacts, uri, names, stats), stats, policy.max_corrupt_share, uri):
        ref.rows += chunk.rows
        for name, values in chunk.columns.items():
            if name in wanted:
                parts.setdefault(name, []).append(object_values(values))
            elif name.startswith(cols.attribution_prefix):
                parts.setdefault(name, []).append(to_float(values)[0])
    frame = {name: np.concatenate(chunks) for name, chunks in parts.items()}
    _reference_metrics(ref, frame, policy)
    attribution = AttributionAccumulator()
    for name, values in frame.items():
        if name.startswith(cols.attribution_prefix):
            attribution.add(name[len(cols.attribution_prefix) :], values)
    ref.attribution = attribution.importances()
    if not ref.attribution:
        ref.notes.append(f"the reference data has no {cols.attribution_prefix}<feature> columns")
    _prediction_profile(svc, version, ref, frame, policy)
    return _store(svc, version, ref)


def object_values(values: Any) -> np.ndarray:
    """Return a column (array, :class:`Categorical` or list) as an array of Python values (None = missing);
    float arrays stay float."""
    from modelpilot.drift.frames import Categorical

    out: np.ndarray
    if isinstance(values, Categorical):
        out = np.asarray([*values.categories, None], dtype=object)[values.codes]
    elif isinstance(values, np.ndarray):
        out = values if values.dtype.kind in "fO" else values.astype(object)
    else:
        out = np.asarray(values, dtype=object)
    return out


def _reference_metrics(ref: QualityReference, frame: dict[str, np.ndarray], policy: QualityPolicy) -> None:
    cols = policy.columns
    labels = frame.get(cols.label)
    if labels is None:
        ref.notes.append(f"the reference data has no label column {cols.label!r}")
        return
    if policy.task == "regression":
        y, _ = to_float(labels)
        pred = to_float(frame[cols.prediction])[0] if cols.prediction in frame else None
        if pred is None:
            ref.notes.append(f"the reference data has no prediction column {cols.prediction!r}")
            return
        keep = np.isfinite(y) & np.isfinite(pred)
        racc = RegressionAccumulator()
        racc.add(y[keep], pred[keep])
        ref.labelled = racc.rows
        ref.metrics = dict(racc.metrics())
        return
    score = to_float(frame[cols.score])[0] if cols.score in frame else None
    if policy.task == "binary":
        y = binary_codes(labels, policy.positive_label)
        if cols.prediction in frame:
            pred = binary_codes(frame[cols.prediction], policy.positive_label)
        elif score is not None:
            pred = np.where(np.isfinite(score), (score >= policy.decision_threshold).astype(np.int64), -1)
        else:
            ref.notes.append(f"the reference data has neither {cols.score!r} nor {cols.prediction!r}")
            return
        keep = (y >= 0) & (pred >= 0)
        acc = ClassificationAccumulator(positive=1)
        acc.add(y[keep], pred[keep], score[keep] if score is not None else None)
        ref.labelled = acc.rows
        ref.metrics = dict(acc.metrics())
        if score is not None:
            usable = keep & np.isfinite(score)
            ref.metrics["roc_auc"] = roc_auc(score[usable], y[usable] == 1)
            if usable.any():
                ref.calibration = fit_calibration(score[usable], (y[usable] == 1).astype(np.float64))
        else:
            ref.notes.append(f"the reference data has no score column {cols.score!r}: no estimation")
        return
    if cols.prediction not in frame:
        ref.notes.append(f"the reference data has no prediction column {cols.prediction!r}")
        return
    index = ClassIndex()
    y_codes, p_codes = index.encode(labels), index.encode(frame[cols.prediction])
    keep = (y_codes >= 0) & (p_codes >= 0)
    macc = ClassificationAccumulator()
    macc.add(y_codes[keep], p_codes[keep])
    ref.labelled = macc.rows
    ref.metrics = dict(macc.metrics())


def binary_codes(values: Any, positive: str) -> np.ndarray:
    """1 where a label or predicted class is ``positive``, 0 where it is another class, -1 where missing."""
    arr = object_values(values)
    if arr.dtype.kind == "f":
        out = np.full(len(arr), -1, dtype=np.int64)
        present = ~np.isnan(arr)
        uniques, inverse = np.unique(arr[present], return_inverse=True)
        table = np.asarray([1 if label_text(float(u)) == positive else 0 for u in uniques], dtype=np.int64)
        if len(uniques):
            out[present] = table[inverse]
        return out
    cache: dict[Any, int] = {}
    out = np.empty(len(arr), dtype=np.int64)
    for i, value in enumerate(arr.tolist()):
        code = cache.get(value)
        if code is None:
            text = label_text(value)
            code = cache[value] = -1 if text is None else int(text == positive)
        out[i] = code
    return out


def _prediction_profile(
    svc: Services, version: ModelVersion, ref: QualityReference, frame: dict[str, np.ndarray], policy: QualityPolicy
) -> None:
    cols = policy.columns
    if policy.task == "binary" and cols.score in frame:
        spec = FeatureSpec(cols.score, "numeric")
    elif cols.prediction in frame:
        spec = FeatureSpec(cols.prediction, "numeric" if policy.task == "regression" else "categorical")
    else:
        ref.notes.append("the reference data has no score or prediction: no prediction drift")
        return
    try:
        profile = build_reference({spec.name: frame[spec.name]}, [spec], meta={"model": version.model})
    except DataError as exc:
        ref.notes.append(f"no prediction profile: {exc.message}")
        return
    uri = _reference_uri(svc, version.model, version.version, "prediction-profile.json")
    svc.artifacts.write_bytes(uri, profile.to_json(), content_type="application/json")
    ref.prediction_profile, ref.profile_uri = profile, uri


def _store(svc: Services, version: ModelVersion, ref: QualityReference) -> QualityReference:
    uri = _reference_uri(svc, version.model, version.version, "quality-reference.json")
    svc.artifacts.write_bytes(uri, ref.to_json(), content_type="application/json")
    return ref


def load_quality_reference(svc: Services, version: ModelVersion, policy: QualityPolicy) -> QualityReference:
    """Return the stored quality reference of a version, building it when missing."""
    uri = _reference_uri(svc, version.model, version.version, "quality-reference.json")
    try:
        data = svc.artifacts.read_bytes(uri, max_bytes=64 * 1024 * 1024)
    except ArtifactMissing:
        return build_quality_reference(svc, version, policy)
    stored = json.loads(data)
    profile = None
    if stored.get("prediction_profile"):
        try:
            profile = Profile.from_json(svc.artifacts.read_bytes(stored["prediction_profile"], max_bytes=64 << 20))
        except ArtifactMissing:
            profile = None
    ref = QualityReference.from_json(data, profile)
    if ref.task != policy.task:
        return build_quality_reference(svc, version, policy)
    return ref
