"""Outlier scorers for tabular features: Mahalanobis with a shrunk covariance, isolation forest."""

from __future__ import annotations

from typing import Any

import numpy as np

from watchkeeper.outliers._conformal import ConformalScorer


def ledoit_wolf(x: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit–Wolf shrinkage of the sample covariance towards ``mu * I``.

    Returns the shrunk covariance and the shrinkage intensity (Ledoit & Wolf, 2004).

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(30, 20))
    >>> cov, shrink = ledoit_wolf(x)
    >>> 0 < shrink < 1, bool(np.all(np.linalg.eigvalsh(cov) > 0))
    (True, True)
    """
    n, d = x.shape
    xc = x - x.mean(axis=0)
    s = xc.T @ xc / n
    mu = float(np.trace(s)) / d
    delta = float(((s - mu * np.eye(d)) ** 2).sum()) / d
    x2 = xc**2
    beta_sum = float(((x2.T @ x2) / n - s**2).sum()) / (d * n)
    beta = min(beta_sum, delta)
    shrink = 0.0 if delta == 0 else beta / delta
    cov = (1.0 - shrink) * s
    cov[np.diag_indices(d)] += shrink * mu
    return cov, shrink


class MahalanobisScorer(ConformalScorer):
    """Mahalanobis distance to the reference mean under a Ledoit–Wolf shrunk covariance.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> scorer = MahalanobisScorer().fit(rng.normal(size=(1000, 5)))
    >>> scorer.score(np.array([[0.0] * 5, [8.0] * 5]), alpha=0.01).outlier.tolist()
    [False, True]
    """

    method = "mahalanobis"

    def _fit(self, x: np.ndarray) -> None:
        self.mean_ = x.mean(axis=0)
        cov, self.shrinkage_ = ledoit_wolf(x)
        scale = float(np.trace(cov)) / cov.shape[0]
        # A constant column has zero variance: a floor keeps the factorisation defined.
        cov[np.diag_indices(cov.shape[0])] += max(scale, 1.0) * 1e-9
        self.whiten_ = np.linalg.cholesky(np.linalg.inv(cov))

    def _score(self, x: np.ndarray) -> np.ndarray:
        z = (x - self.mean_) @ self.whiten_
        out: np.ndarray = np.sqrt(np.einsum("ij,ij->i", z, z))
        return out

    def _details(self) -> dict[str, Any]:
        return {"shrinkage": float(self.shrinkage_)}


class IsolationForestScorer(ConformalScorer):
    """scikit-learn's isolation forest: the score is minus ``score_samples`` (larger = rarer).

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> scorer = IsolationForestScorer(n_estimators=50).fit(rng.normal(size=(1000, 4)))
    >>> scorer.score(np.array([[0.0] * 4, [7.0] * 4]), alpha=0.02).outlier.tolist()
    [False, True]
    """

    method = "isolation_forest"

    def __init__(
        self,
        n_estimators: int = 100,
        *,
        max_samples: int | str = "auto",
        calibration_share: float = 0.25,
        seed: int | None = 0,
    ) -> None:
        super().__init__(calibration_share=calibration_share, seed=seed)
        self.n_estimators = n_estimators
        self.max_samples = max_samples

    def _fit(self, x: np.ndarray) -> None:
        from sklearn.ensemble import IsolationForest

        if not isinstance(self.n_estimators, int) or not 1 <= self.n_estimators <= 10_000:
            raise ValueError(f"n_estimators: an integer in [1, 10000], got {self.n_estimators!r}")
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators, max_samples=self.max_samples, random_state=self.seed
        ).fit(x)

    def _score(self, x: np.ndarray) -> np.ndarray:
        return -np.asarray(self.forest_.score_samples(x), dtype=np.float64)
