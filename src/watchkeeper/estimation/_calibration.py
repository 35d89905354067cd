"""Calibrating scores into probabilities: isotonic or Platt, chosen by held-out log loss."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from watchkeeper.estimation._operating import _binary_labels

__all__ = ["Calibrator"]

_EPS = 1e-4


def _platt_feature(s: np.ndarray, on_unit: bool) -> np.ndarray:
    # Scores in [0, 1] are probabilities of some kind: the logit makes Platt's sigmoid able to
    # express any monotone power of them; other scores (margins, logits) are used as they are.
    if on_unit:
        c = np.clip(s, 1e-7, 1 - 1e-7)
        return np.asarray(np.log(c / (1 - c)), dtype=np.float64)
    return s


def _fit_platt(x: np.ndarray, y: np.ndarray, sw: np.ndarray) -> tuple[float, float]:
    """Weighted logistic regression of ``y`` on ``x`` with Platt's smoothed targets (Newton)."""
    n1, n0 = float(sw[y].sum()), float(sw[~y].sum())
    t = np.where(y, (n1 + 1) / (n1 + 2), 1 / (n0 + 2))
    a, b = 1.0, math.log((n1 + 1) / (n0 + 1))
    for _ in range(100):
        z = np.clip(a * x + b, -500, 500)
        p = 1 / (1 + np.exp(-z))
        g = sw * (p - t)
        w = sw * np.maximum(p * (1 - p), 1e-12)
        h11, h12, h22 = (w * x * x).sum() + 1e-9, (w * x).sum(), w.sum() + 1e-9
        g1, g2 = (g * x).sum(), g.sum()
        det = h11 * h22 - h12 * h12
        if det <= 0:
            break
        da = (h22 * g1 - h12 * g2) / det
        db = (h11 * g2 - h12 * g1) / det
        a, b = a - da, b - db
        if abs(da) + abs(db) < 1e-10:
            break
    return float(a), float(b)


def _log_loss(p: np.ndarray, y: np.ndarray, sw: np.ndarray) -> float:
    p = np.clip(p, _EPS, 1 - _EPS)
    return float(-np.average(np.where(y, np.log(p), np.log(1 - p)), weights=sw))


class Calibrator:
    """Map binary scores to probabilities of the positive class.

    Parameters
    ----------
    method
        ``"isotonic"``, ``"platt"`` or ``"auto"``: fit both on part of the data and keep the one
        with the lower log loss on the rest (``folds``-fold cross-validation), then refit it on
        everything.
    folds
        Folds for the ``"auto"`` choice.
    random_state
        Seed of the fold assignment.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 4000)
    >>> s = 1 / (1 + np.exp(-(3 * y - 1.5 + rng.normal(0, 1, 4000))))
    >>> cal = Calibrator().fit(s, y)
    >>> cal.method_ in ("isotonic", "platt"), bool(abs(cal.predict(s).mean() - y.mean()) < 0.01)
    (True, True)
    """

    def __init__(self, method: str = "auto", folds: int = 3, random_state: int = 0) -> None:
        self.method = method
        self.folds = folds
        self.random_state = random_state

    def _fit_one(self, method: str, s: np.ndarray, y: np.ndarray, sw: np.ndarray) -> Any:
        if method == "platt":
            return _fit_platt(_platt_feature(s, self.on_unit_), y, sw)
        from sklearn.isotonic import IsotonicRegression

        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        iso.fit(s, y.astype(np.float64), sample_weight=sw)
        return iso

    def _predict_one(self, method: str, model: Any, s: np.ndarray) -> np.ndarray:
        if method == "platt":
            a, b = model
            z = np.clip(a * _platt_feature(s, self.on_unit_) + b, -500, 500)
            return np.asarray(1 / (1 + np.exp(-z)), dtype=np.float64)
        return np.asarray(model.predict(s), dtype=np.float64)

    def fit(self, scores: Any, labels: Any, sample_weight: Any = None) -> Calibrator:
        """Fit on reference scores and 0/1 labels, optionally weighted per event (importance
        weights that make the reference look like production, for instance)."""
        if self.method not in ("auto", "isotonic", "platt"):
            raise ValueError(f"method must be 'auto', 'isotonic' or 'platt', got {self.method!r}")
        s = np.asarray(scores, dtype=np.float64)
        y = _binary_labels(labels, "labels")
        if s.ndim != 1 or len(s) != len(y):
            raise ValueError(f"scores: expected a 1-D array of {len(y)} values, got {s.shape}")
        if not np.isfinite(s).all():
            raise ValueError("scores contain NaN or infinite values")
        if y.all() or not y.any():
            raise ValueError("labels: both classes must be present to calibrate")
        if sample_weight is None:
            sw = np.ones(len(s))
        else:
            sw = np.asarray(sample_weight, dtype=np.float64)
            if sw.shape != s.shape or not np.isfinite(sw).all() or (sw < 0).any():
                raise ValueError("sample_weight: one finite non-negative weight per score")
            if sw.sum() <= 0:
                raise ValueError("sample_weight: all weights are zero")
        self.on_unit_ = bool(s.min() >= 0 and s.max() <= 1)
        self.log_loss_: dict[str, float] = {}
        method = self.method
        if method == "auto":
            folds = int(self.folds)
            if folds < 2:
                raise ValueError(f"folds must be at least 2, got {self.folds!r}")
            rng = np.random.default_rng(self.random_state)
            fold = rng.permutation(len(s)) % folds
            for m in ("isotonic", "platt"):
                losses = []
                for f in range(folds):
                    tr, te = fold != f, fold == f
                    if y[tr].all() or not y[tr].any() or sw[te].sum() <= 0:
                        continue
                    model = self._fit_one(m, s[tr], y[tr], sw[tr])
                    pred = self._predict_one(m, model, s[te])
                    losses.append(_log_loss(pred, y[te], sw[te]))
                self.log_loss_[m] = float(np.mean(losses)) if losses else math.inf
            method = min(self.log_loss_, key=lambda k: self.log_loss_[k])
        self.method_ = method
        self.model_ = self._fit_one(method, s, y, sw)
        return self

    def predict(self, scores: Any) -> np.ndarray:
        """Calibrated probability of the positive class, clipped away from 0 and 1."""
        s = np.asarray(scores, dtype=np.float64)
        if np.isnan(s).any():
            raise ValueError("scores contain NaN")
        out = np.clip(self._predict_one(self.method_, self.model_, s), _EPS, 1 - _EPS)
        return np.asarray(out, dtype=np.float64)
