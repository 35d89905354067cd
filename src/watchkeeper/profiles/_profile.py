"""The profile of a window: schema, ranges, categories, missing rates, quantiles, calibration."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from watchkeeper.profiles._sketch import (
    CalibrationSketch,
    CategoricalSummary,
    NumericSummary,
    binary_labels,
)
from watchkeeper.window import Window

Summary = NumericSummary | CategoricalSummary


def infer_type(summary: Summary) -> str:
    """The schema type of a column: ``"float"``, ``"integer"``, ``"boolean"`` or ``"string"``.

    Examples
    --------
    >>> infer_type(NumericSummary.of(np.array([0.0, 1.0, 1.0])))
    'boolean'
    >>> infer_type(NumericSummary.of(np.array([0.5, 3.0])))
    'float'
    """
    if isinstance(summary, CategoricalSummary):
        return "string"
    if summary.count and summary.integral:
        return "boolean" if summary.min >= 0 and summary.max <= 1 else "integer"
    return "float"


def _summary_to_dict(s: Summary) -> dict[str, Any]:
    kind = "categorical" if isinstance(s, CategoricalSummary) else "numeric"
    return {"kind": kind, "type": infer_type(s), **s.to_dict()}


def _summary_from_dict(d: dict[str, Any]) -> Summary:
    if d["kind"] == "categorical":
        return CategoricalSummary.from_dict(d)
    return NumericSummary.from_dict(d)


def _merge_maps(a: Mapping[str, Summary], b: Mapping[str, Summary]) -> dict[str, Summary]:
    out: dict[str, Summary] = dict(a)
    for k, v in b.items():
        mine = out.get(k)
        if mine is None:
            out[k] = v
        elif type(mine) is type(v):
            out[k] = mine.merge(v)  # type: ignore[arg-type]
        else:
            # The same column numeric in one part and text in another: text wins, so a later
            # check can report the wrong type rather than the profile silently dropping it. A
            # part holding only missing values looks numeric; its missing values still count.
            text, number = (v, mine) if isinstance(v, CategoricalSummary) else (mine, v)
            if isinstance(text, CategoricalSummary) and getattr(number, "count", 1) == 0:
                missing = CategoricalSummary.of_counts(
                    {}, int(getattr(number, "missing", 0)), text.max_categories
                )
                text = text.merge(missing)
            out[k] = text
    return out


@dataclass(frozen=True)
class EmbeddingSummary:
    """Count, dimension, and per-dimension sums and sums of squares of the embeddings."""

    count: int = 0
    missing: int = 0
    dim: int = 0
    sum: tuple[float, ...] = ()
    sumsq: tuple[float, ...] = ()

    @classmethod
    def of(cls, embeddings: np.ndarray) -> EmbeddingSummary:
        """Summarise an ``(n, d)`` array (rows holding any NaN count as missing)."""
        e = np.asarray(embeddings, dtype=np.float64)
        ok = np.isfinite(e).all(axis=1)
        x = e[ok]
        return cls(
            int(x.shape[0]),
            int((~ok).sum()),
            int(e.shape[1]),
            tuple(x.sum(axis=0).tolist()),
            tuple(np.square(x).sum(axis=0).tolist()),
        )

    @property
    def mean(self) -> np.ndarray:
        """Per-dimension mean."""
        return np.asarray(self.sum) / max(self.count, 1)

    def zero(self) -> EmbeddingSummary:
        """The empty summary."""
        return EmbeddingSummary()

    def merge(self, other: EmbeddingSummary) -> EmbeddingSummary:
        """Both samples together."""
        if not self.dim:
            return other
        if not other.dim:
            return self
        if other.dim != self.dim:
            raise ValueError(f"embeddings: cannot merge dimensions {self.dim} and {other.dim}")
        return EmbeddingSummary(
            self.count + other.count,
            self.missing + other.missing,
            self.dim,
            tuple((np.asarray(self.sum) + np.asarray(other.sum)).tolist()),
            tuple((np.asarray(self.sumsq) + np.asarray(other.sumsq)).tolist()),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "count": self.count,
            "missing": self.missing,
            "dim": self.dim,
            "sum": list(self.sum),
            "sumsq": list(self.sumsq),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmbeddingSummary:
        """Inverse of :meth:`to_dict`."""
        return cls(
            int(d["count"]),
            int(d["missing"]),
            int(d["dim"]),
            tuple(float(v) for v in d["sum"]),
            tuple(float(v) for v in d["sumsq"]),
        )


@dataclass(frozen=True)
class Profile:
    """Mergeable summary of a window or a reference set.

    Parameters
    ----------
    n
        Events summarised.
    features, tags
        Column name -> :class:`NumericSummary` or :class:`CategoricalSummary`.
    scores, latency_ms
        Numeric summaries of the score and latency columns, when present.
    labels, predicted, versions
        Category counts of the labels, predicted labels and model versions.
    calibration
        Calibration bins of scores against labels, when both are present.
    embeddings
        Moments of the embeddings, when present.
    ts_min, ts_max
        Earliest and latest event time.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> w = Window.from_columns(features={"x": rng.normal(size=100), "c": ["a", "b"] * 50})
    >>> p = profile(w)
    >>> p.schema()
    {'c': 'string', 'x': 'float'}
    >>> Profile.from_dict(p.to_dict()).merge(p).n
    200
    """

    n: int = 0
    features: Mapping[str, Summary] = field(default_factory=dict)
    tags: Mapping[str, Summary] = field(default_factory=dict)
    scores: NumericSummary | None = None
    latency_ms: NumericSummary | None = None
    labels: CategoricalSummary | None = None
    predicted: CategoricalSummary | None = None
    versions: CategoricalSummary | None = None
    calibration: CalibrationSketch | None = None
    embeddings: EmbeddingSummary | None = None
    ts_min: float = math.inf
    ts_max: float = -math.inf

    def schema(self) -> dict[str, str]:
        """Feature name -> inferred type, sorted by name."""
        return {k: infer_type(self.features[k]) for k in sorted(self.features)}

    @staticmethod
    def zero() -> Profile:
        """The empty profile: ``p.merge(Profile.zero())`` equals ``p``."""
        return Profile()

    def merge(self, other: Profile) -> Profile:
        """Profile of both windows together."""

        def opt(a: Any, b: Any) -> Any:
            if a is None:
                return b
            if b is None:
                return a
            return a.merge(b)

        return Profile(
            n=self.n + other.n,
            features=_merge_maps(self.features, other.features),
            tags=_merge_maps(self.tags, other.tags),
            scores=opt(self.scores, other.scores),
            latency_ms=opt(self.latency_ms, other.latency_ms),
            labels=opt(self.labels, other.labels),
            predicted=opt(self.predicted, other.predicted),
            versions=opt(self.versions, other.versions),
            calibration=opt(self.calibration, other.calibration),
            embeddings=opt(self.embeddings, other.embeddings),
            ts_min=min(self.ts_min, other.ts_min),
            ts_max=max(self.ts_max, other.ts_max),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON, stored with a reference by ``Store.put_reference``."""

        def opt(x: Any) -> Any:
            return None if x is None else x.to_dict()

        return {
            "n": self.n,
            "schema": self.schema(),
            "features": {k: _summary_to_dict(v) for k, v in self.features.items()},
            "tags": {k: _summary_to_dict(v) for k, v in self.tags.items()},
            "scores": opt(self.scores),
            "latency_ms": opt(self.latency_ms),
            "labels": opt(self.labels),
            "predicted": opt(self.predicted),
            "versions": opt(self.versions),
            "calibration": opt(self.calibration),
            "embeddings": opt(self.embeddings),
            "ts_min": None if not math.isfinite(self.ts_min) else self.ts_min,
            "ts_max": None if not math.isfinite(self.ts_max) else self.ts_max,
        }

    def to_bytes(self) -> bytes:
        """Compact bytes (zlib-compressed JSON of :meth:`to_dict`), e.g. to ship from a worker.

        Examples
        --------
        >>> p = profile({"x": [1.0, 2.0, 3.0]})
        >>> Profile.from_bytes(p.to_bytes()) == p
        True
        """
        import json
        import zlib

        return zlib.compress(json.dumps(self.to_dict(), separators=(",", ":")).encode(), 1)

    @classmethod
    def from_bytes(cls, data: bytes) -> Profile:
        """Inverse of :meth:`to_bytes`."""
        import json
        import zlib

        return cls.from_dict(json.loads(zlib.decompress(data)))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Profile:
        """Inverse of :meth:`to_dict`."""

        def opt(kind: Any, x: Any) -> Any:
            return None if x is None else kind.from_dict(x)

        return cls(
            n=int(d["n"]),
            features={k: _summary_from_dict(v) for k, v in d.get("features", {}).items()},
            tags={k: _summary_from_dict(v) for k, v in d.get("tags", {}).items()},
            scores=opt(NumericSummary, d.get("scores")),
            latency_ms=opt(NumericSummary, d.get("latency_ms")),
            labels=opt(CategoricalSummary, d.get("labels")),
            predicted=opt(CategoricalSummary, d.get("predicted")),
            versions=opt(CategoricalSummary, d.get("versions")),
            calibration=opt(CalibrationSketch, d.get("calibration")),
            embeddings=opt(EmbeddingSummary, d.get("embeddings")),
            ts_min=math.inf if d.get("ts_min") is None else float(d["ts_min"]),
            ts_max=-math.inf if d.get("ts_max") is None else float(d["ts_max"]),
        )


def summarise_column(values: np.ndarray, *, accuracy: float = 0.01) -> Summary:
    """A numeric summary for a float column, a categorical one for anything else."""
    a = np.asarray(values)
    if a.dtype.kind in "biuf":
        return NumericSummary.of(a.astype(np.float64), accuracy)
    return CategoricalSummary.of(a.astype(object))


def profile(
    data: Window | Mapping[str, Any] | Any,
    *,
    accuracy: float = 0.01,
    calibration_bins: int = 10,
    positive_label: object = None,
) -> Profile:
    """Profile a window (or anything ``Window.from_columns(features=...)`` accepts as features).

    Parameters
    ----------
    data
        A :class:`~watchkeeper.window.Window`, a mapping of column name -> values, or a
        DataFrame (its columns become features).
    accuracy
        Relative accuracy of the quantile sketches.
    calibration_bins
        Equal-width score bins of the calibration curve.
    positive_label
        Which label is the positive class, when labels are not 0/1-like.

    Returns
    -------
    Profile
    """
    if not isinstance(data, Window):
        if hasattr(data, "columns") and not isinstance(data, Mapping):
            data = {str(c): np.asarray(data[c]) for c in data.columns}
        data = Window.from_columns(features=dict(data))
    w = data
    scores = w.scores
    if scores is None and w.probs is not None and w.probs.ndim == 2 and w.probs.shape[1] == 2:
        scores = w.probs[:, 1]
    calibration = None
    if scores is not None and w.labels is not None:
        y = binary_labels(w.labels, positive_label)
        calibration = CalibrationSketch.of(scores, y, calibration_bins)
    ts = w.ts[np.isfinite(w.ts)] if len(w) else w.ts
    return Profile(
        n=len(w),
        features={k: summarise_column(v, accuracy=accuracy) for k, v in w.features.items()},
        tags={k: summarise_column(v, accuracy=accuracy) for k, v in w.tags.items()},
        scores=None if scores is None else NumericSummary.of(scores, accuracy),
        latency_ms=None if w.latency_ms is None else NumericSummary.of(w.latency_ms, accuracy),
        labels=None if w.labels is None else CategoricalSummary.of(w.labels),
        predicted=None if w.predicted is None else CategoricalSummary.of(w.predicted),
        versions=None if w.versions is None else CategoricalSummary.of(w.versions),
        calibration=calibration,
        embeddings=None if w.embeddings is None else EmbeddingSummary.of(w.embeddings),
        ts_min=float(ts.min()) if ts.size else math.inf,
        ts_max=float(ts.max()) if ts.size else -math.inf,
    )
