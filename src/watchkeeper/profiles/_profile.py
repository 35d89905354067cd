"""The profile of a window: schema, ranges, categories, missing rates, quantiles, calibration."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from watchkeeper.profiles._sketch import (
    CalibrationSketch,
    CategoricalSummary,
    NumericSummary,
    binary_labels,
)
from watchkeeper.stats._mmd import RFFSummary
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
class RFFMap:
    """A fixed random-Fourier feature map for embeddings of dimension ``dim``.

    ``φ(x) = sqrt(2 / n_features) cos(W x + b)`` with ``W ~ N(0, 1/bandwidth²)`` and
    ``b ~ U(0, 2π)`` drawn from ``seed``: the map is its four numbers, so every worker (and
    every later profile compared with this one) rebuilds the same map. Mean feature vectors
    then approximate the kernel mean embedding of a Gaussian kernel of width ``bandwidth``,
    and MMD is a distance between means of mergeable sums.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> m = RFFMap.from_sample(rng.normal(size=(500, 4)), n_features=32)
    >>> m.dim, m.n_features, m.features(rng.normal(size=(3, 4))).shape
    (4, 32, (3, 32))
    """

    dim: int
    bandwidth: float
    n_features: int = 128
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("dim", "n_features", "seed"):
            value = getattr(self, name)
            if int(value) != value or value < (0 if name == "seed" else 1):
                raise ValueError(f"embedding_map.{name}: must be a positive integer, "
                                 f"got {value!r}")
        if self.n_features > MAX_RFF_FEATURES:
            raise ValueError(f"embedding_map.n_features: at most {MAX_RFF_FEATURES}, "
                             f"got {self.n_features}")
        if not (math.isfinite(self.bandwidth) and self.bandwidth > 0):
            raise ValueError(f"embedding_map.bandwidth: must be positive, got {self.bandwidth!r}")

    @classmethod
    def from_sample(cls, sample: np.ndarray, *, n_features: int = 128,
                    seed: int = 0) -> RFFMap:
        """The map with the median-heuristic bandwidth of a sample of embeddings."""
        from watchkeeper.stats._mmd import median_bandwidth

        x = np.asarray(sample, dtype=np.float64)
        if x.ndim != 2 or x.shape[0] < 2:
            raise ValueError("embeddings: need a 2-d sample of at least 2 rows for the map")
        x = x[np.isfinite(x).all(axis=1)]
        if x.shape[0] < 2:
            raise ValueError("embeddings: fewer than 2 finite rows to choose the bandwidth")
        return cls(int(x.shape[1]), median_bandwidth(x, seed=seed), n_features, seed)

    def _weights(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(self.seed)
        w = rng.normal(scale=1.0 / self.bandwidth, size=(self.dim, self.n_features))
        return w, rng.uniform(0.0, 2.0 * math.pi, size=self.n_features)

    def features(self, x: np.ndarray) -> np.ndarray:
        """Random Fourier features of the rows of ``x`` (``(n, dim)``, finite)."""
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"embeddings: dimension {x.shape[-1]}, the map's is {self.dim}")
        w, b = self._weights()
        phi: np.ndarray = np.asarray(x @ w)
        phi += b
        np.cos(phi, out=phi)
        phi *= math.sqrt(2.0 / self.n_features)
        return phi

    def summarize(self, x: np.ndarray) -> RFFSummary:
        """The mergeable sums of the features of the rows of ``x``."""
        phi = self.features(x)
        # A transposed copy, not ``phi.T @ phi``: OpenBLAS' syrk is slower at these shapes.
        return RFFSummary(phi.shape[0], phi.sum(axis=0), np.ascontiguousarray(phi.T) @ phi)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {"dim": self.dim, "bandwidth": self.bandwidth, "n_features": self.n_features,
                "seed": self.seed}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RFFMap:
        """Inverse of :meth:`to_dict`."""
        return cls(int(d["dim"]), float(d["bandwidth"]), int(d["n_features"]), int(d["seed"]))


MAX_RFF_FEATURES = 1024
"""Bound on random features: the summary keeps an ``n_features²`` matrix."""


@dataclass(frozen=True, eq=False)
class EmbeddingSummary:
    """Count, dimension, per-dimension sums and sums of squares of the embeddings, and (with a
    :class:`RFFMap`) the random-Fourier sums an MMD test between two profiles needs.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(1000, 4))
    >>> m = RFFMap.from_sample(x, n_features=16)
    >>> whole = EmbeddingSummary.of(x, m)
    >>> parts = EmbeddingSummary.of(x[:300], m).merge(EmbeddingSummary.of(x[300:], m))
    >>> parts.count, bool(np.allclose(parts.rff.outer, whole.rff.outer))
    (1000, True)
    """

    count: int = 0
    missing: int = 0
    dim: int = 0
    sum: tuple[float, ...] = ()
    sumsq: tuple[float, ...] = ()
    rff_map: RFFMap | None = None
    rff: RFFSummary | None = None

    @classmethod
    def of(cls, embeddings: np.ndarray, rff_map: RFFMap | None = None) -> EmbeddingSummary:
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
            rff_map,
            None if rff_map is None else rff_map.summarize(x),
        )

    @property
    def mean(self) -> np.ndarray:
        """Per-dimension mean."""
        return np.asarray(self.sum) / max(self.count, 1)

    def zero(self) -> EmbeddingSummary:
        """The empty summary."""
        return EmbeddingSummary()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EmbeddingSummary):
            return NotImplemented
        same_rff = (self.rff is None and other.rff is None) or (
            self.rff is not None and other.rff is not None
            and self.rff.count == other.rff.count
            and np.array_equal(self.rff.total, other.rff.total)
            and np.array_equal(self.rff.outer, other.rff.outer))
        return (self.count, self.missing, self.dim, self.sum, self.sumsq, self.rff_map) == (
            other.count, other.missing, other.dim, other.sum, other.sumsq, other.rff_map
        ) and same_rff

    __hash__ = None  # type: ignore[assignment]

    def merge(self, other: EmbeddingSummary) -> EmbeddingSummary:
        """Both samples together (the random-Fourier sums too: they add)."""
        if not self.dim or not other.dim:
            # A part whose rows were all missing has no dimension; its missing rows still count.
            full, empty = (other, self) if not self.dim else (self, other)
            return replace(full, missing=full.missing + empty.missing)
        if other.dim != self.dim:
            raise ValueError(f"embeddings: cannot merge dimensions {self.dim} and {other.dim}")
        if self.rff_map != other.rff_map:
            raise ValueError("embeddings: cannot merge summaries made with different random-"
                             f"Fourier maps ({self.rff_map} and {other.rff_map})")
        rff = None
        if self.rff is not None and other.rff is not None:
            rff = self.rff.merge(other.rff)
        return EmbeddingSummary(
            self.count + other.count,
            self.missing + other.missing,
            self.dim,
            tuple((np.asarray(self.sum) + np.asarray(other.sum)).tolist()),
            tuple((np.asarray(self.sumsq) + np.asarray(other.sumsq)).tolist()),
            self.rff_map,
            rff,
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        out: dict[str, Any] = {
            "count": self.count,
            "missing": self.missing,
            "dim": self.dim,
            "sum": list(self.sum),
            "sumsq": list(self.sumsq),
        }
        if self.rff_map is not None and self.rff is not None:
            out["rff_map"] = self.rff_map.to_dict()
            out["rff"] = self.rff.to_dict()
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmbeddingSummary:
        """Inverse of :meth:`to_dict`."""
        rff_map = RFFMap.from_dict(d["rff_map"]) if d.get("rff_map") else None
        rff = RFFSummary.from_dict(d["rff"]) if rff_map is not None else None
        if rff is not None and rff_map is not None and rff.total.size != rff_map.n_features:
            raise ValueError("embeddings.rff: its size differs from embeddings.rff_map")
        return cls(
            int(d["count"]),
            int(d["missing"]),
            int(d["dim"]),
            tuple(float(v) for v in d["sum"]),
            tuple(float(v) for v in d["sumsq"]),
            rff_map,
            rff,
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
    embedding_map: RFFMap | str | None = None,
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
    embedding_map
        A :class:`RFFMap` (or ``"auto"``: one chosen from these embeddings by the median
        heuristic) to keep the random-Fourier sums of the embeddings, which
        :func:`~watchkeeper.profiles.compare_profiles` tests by MMD. Profiles compared must
        share the map: pass the reference's, ``reference.embeddings.rff_map``.

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
        embeddings=None if w.embeddings is None else EmbeddingSummary.of(
            w.embeddings, _embedding_map(w.embeddings, embedding_map)),
        ts_min=float(ts.min()) if ts.size else math.inf,
        ts_max=float(ts.max()) if ts.size else -math.inf,
    )


def _embedding_map(embeddings: np.ndarray, chosen: RFFMap | str | None) -> RFFMap | None:
    if chosen is None or isinstance(chosen, RFFMap):
        return chosen
    if chosen != "auto":
        raise ValueError(f"embedding_map: an RFFMap, 'auto' or None, got {chosen!r}")
    return RFFMap.from_sample(np.asarray(embeddings, dtype=np.float64))
