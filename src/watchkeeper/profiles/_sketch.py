"""Mergeable summaries of one column: quantiles, moments, category counts, calibration bins.

Every summary has ``zero()`` (the identity of ``merge``), ``merge(other)`` (a new summary of the
union of both samples), ``to_dict()`` and ``from_dict()``. Windows, shards and days are then the
same operation: a profile of a week is the merge of seven daily profiles.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

OTHER = "__other__"
"""Category under which counts beyond ``max_categories`` are pooled."""


@dataclass(frozen=True)
class QuantileSketch:
    """Relative-error quantile sketch (logarithmic buckets, as in DDSketch).

    A value ``x > 0`` falls in bucket ``ceil(log(x) / log(gamma))`` with
    ``gamma = (1 + accuracy) / (1 - accuracy)``; every quantile is then returned within a relative
    error ``accuracy`` of a value of the sample. Buckets are counts, so two sketches merge exactly
    by adding counts, whatever order the data came in.

    Parameters
    ----------
    accuracy
        Relative accuracy of the quantiles.
    positive, negative
        Bucket index -> count for positive values and for the magnitudes of negative values.
    zeros
        Count of values whose magnitude is below ``1e-12``.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(10, 1, 10_000)
    >>> s = QuantileSketch.of(x[:5000]).merge(QuantileSketch.of(x[5000:]))
    >>> abs(s.quantile(0.5) - np.median(x)) / np.median(x) < 0.011
    np.True_
    """

    accuracy: float = 0.01
    positive: dict[int, int] = field(default_factory=dict)
    negative: dict[int, int] = field(default_factory=dict)
    zeros: int = 0

    @property
    def _gamma(self) -> float:
        return (1 + self.accuracy) / (1 - self.accuracy)

    @classmethod
    def of(cls, values: np.ndarray, accuracy: float = 0.01) -> QuantileSketch:
        """Sketch the finite values of ``values`` (vectorised: one ``np.unique`` per sign)."""
        if not 0 < accuracy < 1:
            raise ValueError(f"accuracy must be in (0, 1), got {accuracy}")
        v = np.asarray(values, dtype=np.float64)
        v = v[np.isfinite(v)]
        log_gamma = math.log((1 + accuracy) / (1 - accuracy))
        small = np.abs(v) < 1e-12

        def buckets(mags: np.ndarray) -> dict[int, int]:
            if mags.size == 0:
                return {}
            idx = np.ceil(np.log(mags) * (1.0 / log_gamma)).astype(np.int64)
            low = int(idx.min())
            # Bucket indices span at most a few thousand values (log range / log gamma):
            # counting them is one pass, no sort.
            counts = np.bincount(idx - low)
            keys = np.flatnonzero(counts)
            return dict(zip((keys + low).tolist(), counts[keys].tolist(), strict=True))

        return cls(
            accuracy=accuracy,
            positive=buckets(v[(v > 0) & ~small]),
            negative=buckets(-v[(v < 0) & ~small]),
            zeros=int(small.sum()),
        )

    @property
    def count(self) -> int:
        """Number of values sketched."""
        return self.zeros + sum(self.positive.values()) + sum(self.negative.values())

    def zero(self) -> QuantileSketch:
        """The empty sketch with the same accuracy."""
        return QuantileSketch(self.accuracy)

    def merge(self, other: QuantileSketch) -> QuantileSketch:
        """Sketch of both samples together (counts add, so merge is exact and associative)."""
        if other.accuracy != self.accuracy:
            raise ValueError(
                f"accuracy: cannot merge sketches of {self.accuracy} and {other.accuracy}"
            )

        def add(a: dict[int, int], b: dict[int, int]) -> dict[int, int]:
            out = dict(a)
            for k, c in b.items():
                out[k] = out.get(k, 0) + c
            return out

        return QuantileSketch(
            self.accuracy,
            add(self.positive, other.positive),
            add(self.negative, other.negative),
            self.zeros + other.zeros,
        )

    def _ordered(self) -> tuple[np.ndarray, np.ndarray]:
        """Representative values and their counts, in increasing order of value."""
        g = self._gamma
        neg_k = np.array(sorted(self.negative, reverse=True), dtype=np.int64)
        pos_k = np.array(sorted(self.positive), dtype=np.int64)
        # The representative of bucket i is 2 g^i / (g + 1): within `accuracy` of every member.
        neg_v = -2.0 * g ** neg_k.astype(np.float64) / (g + 1)
        pos_v = 2.0 * g ** pos_k.astype(np.float64) / (g + 1)
        values = np.concatenate([neg_v, [0.0] if self.zeros else [], pos_v])
        counts = np.concatenate(
            [
                [self.negative[int(k)] for k in neg_k],
                [self.zeros] if self.zeros else [],
                [self.positive[int(k)] for k in pos_k],
            ]
        ).astype(np.float64)
        return values, counts

    def quantiles(self, qs: np.ndarray | list[float]) -> np.ndarray:
        """Quantiles ``qs`` (each in [0, 1]); NaN for an empty sketch."""
        q = np.asarray(qs, dtype=np.float64)
        values, counts = self._ordered()
        if counts.sum() == 0:
            return np.full(q.shape, np.nan)
        cum = np.cumsum(counts)
        rank = q * (cum[-1] - 1)
        out: np.ndarray = values[np.searchsorted(cum, rank, side="right")]
        return out

    def quantile(self, q: float) -> float:
        """One quantile ``q`` in [0, 1]."""
        return float(self.quantiles([q])[0])

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """Approximate share of the sketched values ``<= x``."""
        values, counts = self._ordered()
        total = counts.sum()
        if total == 0:
            return np.full(np.shape(x), np.nan)
        cum = np.concatenate([[0.0], np.cumsum(counts)])
        where = np.searchsorted(values, np.asarray(x, dtype=np.float64), side="right")
        share: np.ndarray = cum[where] / total
        return share

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON (bucket keys become strings)."""
        return {
            "accuracy": self.accuracy,
            "positive": {str(k): v for k, v in self.positive.items()},
            "negative": {str(k): v for k, v in self.negative.items()},
            "zeros": self.zeros,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantileSketch:
        """Inverse of :meth:`to_dict`."""
        return cls(
            float(d["accuracy"]),
            {int(k): int(v) for k, v in d.get("positive", {}).items()},
            {int(k): int(v) for k, v in d.get("negative", {}).items()},
            int(d.get("zeros", 0)),
        )


def _nan_to_none(x: float) -> float | None:
    return None if not math.isfinite(x) else x


@dataclass(frozen=True)
class NumericSummary:
    """Count, missing, moments, range, integrality and a quantile sketch of a numeric column.

    Examples
    --------
    >>> a = NumericSummary.of(np.array([1.0, 2.0, np.nan]))
    >>> b = NumericSummary.of(np.array([3.0]))
    >>> m = a.merge(b)
    >>> m.count, m.missing, m.min, m.max, m.mean
    (3, 1, 1.0, 3.0, 2.0)
    """

    count: int = 0
    missing: int = 0
    sum: float = 0.0
    sumsq: float = 0.0
    m2: float = 0.0
    """Sum of squared deviations from the mean, merged with Chan et al.'s update: the variance
    from ``sumsq - sum**2 / count`` cancels catastrophically when the mean dwarfs the spread
    (timestamps, prices), and then depends on how the rows were split into parts."""
    min: float = math.inf
    max: float = -math.inf
    integral: bool = True
    sketch: QuantileSketch = field(default_factory=QuantileSketch)

    @classmethod
    def of(cls, values: np.ndarray, accuracy: float = 0.01) -> NumericSummary:
        """Summarise a float column (NaN counts as missing; infinities are not values)."""
        v = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(v)
        x = v[finite]
        mean = float(x.mean()) if x.size else 0.0
        return cls(
            count=int(x.size),
            missing=int(np.isnan(v).sum()),
            sum=float(x.sum()),
            sumsq=float(np.square(x).sum()),
            m2=float(np.square(x - mean).sum()),
            min=float(x.min()) if x.size else math.inf,
            max=float(x.max()) if x.size else -math.inf,
            integral=bool(np.all(x == np.round(x))),
            sketch=QuantileSketch.of(x, accuracy),
        )

    @property
    def total(self) -> int:
        """Rows seen, missing included."""
        return self.count + self.missing

    @property
    def missing_rate(self) -> float:
        """Share of missing values (NaN when no rows were seen)."""
        return self.missing / self.total if self.total else math.nan

    @property
    def mean(self) -> float:
        """Mean of the finite values."""
        return self.sum / self.count if self.count else math.nan

    @property
    def std(self) -> float:
        """Sample standard deviation of the finite values."""
        if self.count < 2:
            return math.nan
        return math.sqrt(max(self.m2, 0.0) / (self.count - 1))

    def zero(self) -> NumericSummary:
        """The empty summary."""
        return NumericSummary(sketch=self.sketch.zero())

    def merge(self, other: NumericSummary) -> NumericSummary:
        """Summary of both samples together."""
        n = self.count + other.count
        m2 = self.m2 + other.m2
        if self.count and other.count:
            delta = other.sum / other.count - self.sum / self.count
            m2 += delta * delta * (self.count * other.count / n)
        return NumericSummary(
            count=n,
            missing=self.missing + other.missing,
            sum=self.sum + other.sum,
            sumsq=self.sumsq + other.sumsq,
            m2=m2,
            min=min(self.min, other.min),
            max=max(self.max, other.max),
            integral=self.integral and other.integral,
            sketch=self.sketch.merge(other.sketch),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON, with derived figures (mean, std, quantiles) for readers."""
        qs = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
        return {
            "count": self.count,
            "missing": self.missing,
            "sum": self.sum,
            "sumsq": self.sumsq,
            "m2": self.m2,
            "min": _nan_to_none(self.min),
            "max": _nan_to_none(self.max),
            "integral": self.integral,
            "mean": _nan_to_none(self.mean),
            "std": _nan_to_none(self.std),
            "missing_rate": _nan_to_none(self.missing_rate),
            "quantiles": {
                str(q): _nan_to_none(float(v))
                for q, v in zip(qs, self.sketch.quantiles(qs), strict=True)
            },
            "sketch": self.sketch.to_dict(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NumericSummary:
        """Inverse of :meth:`to_dict` (derived figures are recomputed, not read)."""
        return cls(
            count=int(d["count"]),
            missing=int(d["missing"]),
            sum=float(d["sum"]),
            sumsq=float(d["sumsq"]),
            # profiles written before m2 was kept: recovered from the raw sums
            m2=float(d["m2"]) if "m2" in d else max(
                float(d["sumsq"]) - float(d["sum"]) ** 2 / max(int(d["count"]), 1), 0.0),
            min=math.inf if d.get("min") is None else float(d["min"]),
            max=-math.inf if d.get("max") is None else float(d["max"]),
            integral=bool(d.get("integral", True)),
            sketch=QuantileSketch.from_dict(d["sketch"]),
        )


def missing_mask(values: np.ndarray) -> np.ndarray:
    """``True`` where a value is missing (``None`` or NaN), vectorised in C by pandas."""
    import pandas as pd

    return np.asarray(pd.isna(np.asarray(values, dtype=object)), dtype=bool)


def _as_category_keys(values: np.ndarray) -> tuple[np.ndarray, int]:
    """String keys of the non-missing values, and the number of missing ones."""
    v = np.asarray(values, dtype=object)
    present = ~missing_mask(v)
    return v[present].astype(str), int((~present).sum())


@dataclass(frozen=True)
class CategoricalSummary:
    """Counts per category (at most ``max_categories``; the rest pooled under ``__other__``).

    Examples
    --------
    >>> a = CategoricalSummary.of(np.array(["a", "b", None], dtype=object))
    >>> m = a.merge(CategoricalSummary.of(np.array(["a"], dtype=object)))
    >>> m.counts, m.missing
    ({'a': 2, 'b': 1}, 1)
    """

    counts: dict[str, int] = field(default_factory=dict)
    missing: int = 0
    max_categories: int = 1000

    @classmethod
    def of(cls, values: np.ndarray, max_categories: int = 1000) -> CategoricalSummary:
        """Count the categories of an ``object`` column (``None`` and NaN are missing)."""
        keys, missing = _as_category_keys(values)
        uniq, counts = np.unique(keys, return_counts=True)
        out = dict(zip(uniq.tolist(), counts.tolist(), strict=True))
        return cls(counts=out, missing=missing, max_categories=max_categories)._capped()

    @classmethod
    def of_counts(
        cls, counts: Mapping[str, int], missing: int = 0, max_categories: int = 1000
    ) -> CategoricalSummary:
        """A summary from counts already made (e.g. by Arrow's ``value_counts``).

        Examples
        --------
        >>> CategoricalSummary.of_counts({"a": 2, "b": 1}, missing=1).missing_rate
        0.25
        """
        bad = [k for k, c in counts.items() if int(c) < 0]
        if bad or missing < 0:
            raise ValueError(f"counts: negative counts for {bad or ['missing']}")
        return cls(
            {str(k): int(c) for k, c in counts.items() if int(c) > 0}, int(missing), max_categories
        )._capped()

    def _capped(self) -> CategoricalSummary:
        if len(self.counts) <= self.max_categories:
            return self
        ranked = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        keep = dict(ranked[: self.max_categories - 1])
        rest = sum(c for _, c in ranked[self.max_categories - 1 :])
        keep[OTHER] = keep.get(OTHER, 0) + rest
        return CategoricalSummary(keep, self.missing, self.max_categories)

    @property
    def count(self) -> int:
        """Non-missing values seen."""
        return sum(self.counts.values())

    @property
    def total(self) -> int:
        """Rows seen, missing included."""
        return self.count + self.missing

    @property
    def missing_rate(self) -> float:
        """Share of missing values (NaN when no rows were seen)."""
        return self.missing / self.total if self.total else math.nan

    def frequencies(self) -> dict[str, float]:
        """Share of each category among the non-missing values."""
        n = self.count
        return {k: c / n for k, c in self.counts.items()} if n else {}

    def zero(self) -> CategoricalSummary:
        """The empty summary."""
        return CategoricalSummary(max_categories=self.max_categories)

    def merge(self, other: CategoricalSummary) -> CategoricalSummary:
        """Summary of both samples together (exact while under ``max_categories``)."""
        counts = dict(self.counts)
        for k, c in other.counts.items():
            counts[k] = counts.get(k, 0) + c
        return CategoricalSummary(
            counts, self.missing + other.missing, max(self.max_categories, other.max_categories)
        )._capped()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        return {
            "counts": dict(self.counts),
            "missing": self.missing,
            "max_categories": self.max_categories,
            "missing_rate": _nan_to_none(self.missing_rate),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CategoricalSummary:
        """Inverse of :meth:`to_dict`."""
        return cls(
            {str(k): int(v) for k, v in d["counts"].items()},
            int(d["missing"]),
            int(d.get("max_categories", 1000)),
        )


def binary_labels(labels: np.ndarray, positive: object = None) -> np.ndarray:
    """Labels as floats 1.0 (positive), 0.0 (negative), NaN (unknown), vectorised.

    With ``positive`` given, a label equal to it (compared as strings) is positive. Without,
    labels that read as numbers are positive when non-zero (``1``, ``"1"``, ``True``), and
    other labels are positive when equal to the larger of exactly two distinct values.

    Examples
    --------
    >>> binary_labels(np.array([1, "0", None, True], dtype=object)).tolist()
    [1.0, 0.0, nan, 1.0]
    >>> binary_labels(np.array(["fraud", "ok", None], dtype=object), positive="fraud").tolist()
    [1.0, 0.0, nan]
    """
    keys = np.asarray(labels, dtype=object)
    out = np.full(keys.shape, np.nan)
    if keys.size == 0:
        return out
    present = ~missing_mask(keys)
    text = keys[present].astype(str)
    if positive is not None:
        out[present] = (text == str(positive)).astype(np.float64)
        return out
    lowered = np.char.lower(text.astype(np.str_))
    lowered = np.where(lowered == "true", "1", np.where(lowered == "false", "0", lowered))
    try:
        out[present] = (lowered.astype(np.float64) != 0).astype(np.float64)
        return out
    except ValueError:
        pass
    distinct = np.unique(text)
    if distinct.size > 2:
        raise ValueError(
            f"labels: {distinct.size} distinct values; pass positive= to say which is positive"
        )
    out[present] = (text == distinct[-1]).astype(np.float64)
    return out


@dataclass(frozen=True)
class CalibrationSketch:
    """Per score bin: events, sum of scores, positives — the calibration curve, mergeable.

    Parameters
    ----------
    bins
        Number of equal-width bins over [0, 1].
    count, score_sum, positives
        One entry per bin.

    Examples
    --------
    >>> s = np.array([0.05, 0.15, 0.95, 0.9]); y = np.array([0.0, 0.0, 1.0, 1.0])
    >>> c = CalibrationSketch.of(s, y, bins=10)
    >>> round(c.ece(), 4)
    0.0875
    """

    bins: int = 10
    count: tuple[int, ...] = ()
    score_sum: tuple[float, ...] = ()
    positives: tuple[int, ...] = ()

    @classmethod
    def of(cls, scores: np.ndarray, labels01: np.ndarray, bins: int = 10) -> CalibrationSketch:
        """Bin events with a finite score in [0, 1] and a known 0/1 label."""
        s = np.asarray(scores, dtype=np.float64)
        y = np.asarray(labels01, dtype=np.float64)
        ok = np.isfinite(s) & np.isfinite(y) & (s >= 0) & (s <= 1)
        s, y = s[ok], y[ok]
        idx = np.minimum((s * bins).astype(np.int64), bins - 1)
        return cls(
            bins,
            tuple(np.bincount(idx, minlength=bins).tolist()),
            tuple(np.bincount(idx, weights=s, minlength=bins).tolist()),
            tuple(int(c) for c in np.bincount(idx, weights=y, minlength=bins).round()),
        )

    def _arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = np.asarray(self.count or [0] * self.bins, dtype=np.float64)
        s = np.asarray(self.score_sum or [0.0] * self.bins, dtype=np.float64)
        p = np.asarray(self.positives or [0] * self.bins, dtype=np.float64)
        return n, s, p

    @property
    def total(self) -> int:
        """Labelled events binned."""
        return int(sum(self.count))

    def curve(self) -> dict[str, list[float | None]]:
        """Mean score and observed positive rate per bin (None for empty bins)."""
        n, s, p = self._arrays()
        with np.errstate(invalid="ignore", divide="ignore"):
            mean, rate = s / n, p / n
        return {
            "count": n.tolist(),
            "mean_score": [None if not np.isfinite(v) else float(v) for v in mean],
            "positive_rate": [None if not np.isfinite(v) else float(v) for v in rate],
        }

    def ece(self) -> float:
        """Expected calibration error: bin-weighted mean |mean score - positive rate|."""
        n, s, p = self._arrays()
        total = n.sum()
        if total == 0:
            return math.nan
        return float(np.abs(s - p).sum() / total)

    def zero(self) -> CalibrationSketch:
        """The empty sketch with the same bins."""
        return CalibrationSketch(self.bins)

    def merge(self, other: CalibrationSketch) -> CalibrationSketch:
        """Both samples together."""
        if other.bins != self.bins:
            raise ValueError(f"bins: cannot merge {self.bins} and {other.bins} bins")
        a, b = self._arrays(), other._arrays()
        return CalibrationSketch(
            self.bins,
            tuple(int(v) for v in a[0] + b[0]),
            tuple(float(v) for v in a[1] + b[1]),
            tuple(int(v) for v in a[2] + b[2]),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON, with the curve and the ECE for readers."""
        return {
            "bins": self.bins,
            "count": list(self.count),
            "score_sum": list(self.score_sum),
            "positives": list(self.positives),
            "ece": _nan_to_none(self.ece()),
            "curve": self.curve(),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CalibrationSketch:
        """Inverse of :meth:`to_dict`."""
        return cls(
            int(d["bins"]),
            tuple(int(v) for v in d["count"]),
            tuple(float(v) for v in d["score_sum"]),
            tuple(int(v) for v in d["positives"]),
        )
