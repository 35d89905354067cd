"""Split-conformal outlier p-values and the one result type every outlier scorer returns.

A scorer is fitted on one part of the reference and scores a held-out *calibration* part with
the same function it later applies to production events. An event's p-value is its rank among
the calibration scores (Bates et al., 2023, marginal conformal p-values)::

    p = (1 + #{calibration scores >= score}) / (n_calibration + 1)

Under exchangeability with the reference it is uniform on ``{1/(n+1), ..., 1}`` whatever the
score function, so ``p <= alpha`` flags at most a share ``alpha`` of normal events from every
scorer: one threshold means the same false-positive rate everywhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from watchkeeper.stats._result import _plain

MIN_CALIBRATION = 50
"""Fewest held-out reference rows a p-value is ranked among (its smallest value is 1/51)."""


def _readonly(a: np.ndarray) -> np.ndarray:
    out = np.array(a, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True, slots=True)
class OutlierResult:
    """Per-event outlier scores of one batch, their conformal p-values and the verdicts.

    Parameters
    ----------
    method
        The scorer, e.g. ``"knn"``, ``"mahalanobis"``, ``"isolation_forest"``.
    scores
        Raw scores (larger is more unusual), ``float64``, NaN for rows that could not be scored.
    p_values
        Conformal p-values, NaN where the score is NaN.
    outlier
        ``p_values <= alpha``.
    alpha
        The level an event's p-value is compared with: the false-positive rate per event.
    details
        Calibration size, fitted parameters, index statistics.

    Examples
    --------
    >>> r = OutlierResult("knn", np.array([0.1, 9.0]), np.array([0.6, 0.01]),
    ...                   np.array([False, True]), alpha=0.05)
    >>> r.n_outliers, r.to_dict()["rate"]
    (1, 0.5)
    >>> r.scores[0] = 3.0
    Traceback (most recent call last):
    ...
    ValueError: assignment destination is read-only
    """

    method: str
    scores: np.ndarray
    p_values: np.ndarray
    outlier: np.ndarray
    alpha: float
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("scores", "p_values", "outlier"):
            object.__setattr__(self, name, _readonly(getattr(self, name)))
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    @property
    def n(self) -> int:
        """Rows scored (NaN rows included)."""
        return int(self.scores.shape[0])

    @property
    def n_outliers(self) -> int:
        """Rows with ``p_value <= alpha``."""
        return int(self.outlier.sum())

    def to_dict(self, *, events: bool = False) -> dict[str, Any]:
        """JSON-ready summary; ``events=True`` adds the per-event scores and p-values."""
        scored = int(np.isfinite(self.p_values).sum())
        out: dict[str, Any] = {
            "method": self.method,
            "alpha": self.alpha,
            "n": self.n,
            "scored": scored,
            "n_outliers": self.n_outliers,
            "rate": self.n_outliers / scored if scored else 0.0,
            "details": _plain(dict(self.details)),
        }
        if events:
            out["scores"] = _plain(self.scores)
            out["p_values"] = _plain(self.p_values)
        return out


def check_matrix(
    data: Any, name: str, *, n_features: int | None = None, dtype: Any = np.float64
) -> np.ndarray:
    """``data`` as a 2-D ``dtype`` array (NaN rows kept), or a ``ValueError`` naming ``name``."""
    arr = np.asarray(data)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name}: expected a 2-D array (events x features), got shape {arr.shape}")
    if arr.dtype.kind not in "iufb":
        raise ValueError(f"{name}: expected numbers, got dtype {arr.dtype}")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(
            f"{name}: {arr.shape[1]} columns, but the scorer was fitted on {n_features}"
        )
    return arr.astype(dtype, copy=False)


def check_alpha_level(alpha: float) -> float:
    """``alpha`` as a float in (0, 1), or a ``ValueError`` naming it."""
    a = float(alpha)
    if not 0.0 < a < 1.0 or math.isnan(a):
        raise ValueError(f"alpha: must be in (0, 1), got {alpha!r}")
    return a


def conformal_p_values(calibration: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Marginal conformal p-values of ``scores`` against sorted ``calibration`` scores.

    Examples
    --------
    >>> cal = np.arange(99, dtype=float)      # 99 calibration scores 0..98
    >>> conformal_p_values(cal, np.array([-1.0, 49.0, 1000.0, np.nan])).tolist()
    [1.0, 0.51, 0.01, nan]
    """
    cal = np.asarray(calibration, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    at_least = cal.size - np.searchsorted(cal, s, side="left")
    p = (1.0 + at_least) / (cal.size + 1.0)
    return np.where(np.isnan(s), np.nan, p)


class ConformalScorer:
    """Base of the outlier scorers: ``fit(reference)`` then ``score(x)``.

    Subclasses implement ``_fit(x)`` and ``_score(x)`` on finite rows of ``dtype`` (``float64``
    unless a subclass computes in ``float32``: then a window is never copied to ``float64``
    and back) returning ``float64`` scores (larger is more unusual). This class splits the
    reference, calibrates and turns scores into p-values.

    Parameters
    ----------
    calibration_share
        Share of the reference held out to calibrate the p-values (at least
        :data:`MIN_CALIBRATION` rows).
    seed
        Seed of the split (and of randomised scorers).
    """

    method = "base"
    dtype: Any = np.float64

    def __init__(self, *, calibration_share: float = 0.25, seed: int | None = 0) -> None:
        self.calibration_share = calibration_share
        self.seed = seed

    # -- to implement -------------------------------------------------------------------
    def _fit(self, x: np.ndarray) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _score(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def _details(self) -> dict[str, Any]:
        return {}

    # -- the contract ---------------------------------------------------------------------
    def fit(self, reference: Any) -> ConformalScorer:
        """Fit on part of ``reference`` (rows with a NaN are dropped) and calibrate on the rest.

        Raises
        ------
        ValueError
            When the reference is too small, not 2-D or not numeric (the message names it).
        """
        share = float(self.calibration_share)
        if not 0.0 < share < 1.0:
            raise ValueError(f"calibration_share: must be in (0, 1), got {self.calibration_share}")
        x = check_matrix(reference, "reference", dtype=self.dtype)
        x = x[np.isfinite(x).all(axis=1)]
        n = x.shape[0]
        n_cal = max(MIN_CALIBRATION, round(share * n))
        if n - n_cal < 2 * MIN_CALIBRATION // 5:
            raise ValueError(
                f"reference: {n} complete rows; need at least {n_cal + 2 * MIN_CALIBRATION // 5} "
                f"({n_cal} to calibrate, the rest to fit)"
            )
        order = np.random.default_rng(self.seed).permutation(n)
        self.n_features_in_ = x.shape[1]
        self._fit(x[order[n_cal:]])
        self.calibration_scores_ = np.sort(self._score(x[order[:n_cal]]))
        return self

    def _checked(self, x: Any, name: str = "x") -> tuple[np.ndarray, np.ndarray]:
        if not hasattr(self, "calibration_scores_"):
            raise RuntimeError(f"{type(self).__name__}: call fit(reference) before scoring")
        arr = check_matrix(x, name, n_features=self.n_features_in_, dtype=self.dtype)
        ok = np.isfinite(arr).all(axis=1)
        return arr, ok

    def score_samples(self, x: Any) -> np.ndarray:
        """Raw scores of the rows of ``x`` (NaN for rows with a NaN)."""
        arr, ok = self._checked(x)
        out = np.full(arr.shape[0], np.nan)
        if ok.any():
            out[ok] = self._score(arr[ok] if not ok.all() else arr)
        return out

    def p_values(self, x: Any) -> np.ndarray:
        """Conformal p-values of the rows of ``x``."""
        return conformal_p_values(self.calibration_scores_, self.score_samples(x))

    def score(self, x: Any, alpha: float = 0.01) -> OutlierResult:
        """Scores, p-values and ``p <= alpha`` verdicts of the rows of ``x``."""
        a = check_alpha_level(alpha)
        s = self.score_samples(x)
        p = conformal_p_values(self.calibration_scores_, s)
        return OutlierResult(
            self.method,
            s,
            p,
            np.nan_to_num(p, nan=1.0) <= a,
            a,
            {"n_calibration": int(self.calibration_scores_.size), **self._details()},
        )

    def __repr__(self) -> str:
        params = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.endswith("_"))
        return f"{type(self).__name__}({params})"
