"""Multi-class operating point: expected predicted-class counts from a validation confusion
matrix, and the class mix recovered from production predictions (black-box shift estimation).

With ``M[i, j] = P(predicted i | true j)`` measured on validation and production class mix
``pi``, the predicted-class shares are ``q = M pi``. Forward, that gives the expected count of
each predicted class and its band (a sum of binomials per predicted class). Backward, under a
prior shift ``M`` is unchanged, so ``pi = M^-1 q̂`` recovers the class mix from predictions
alone (Lipton, Wang and Smola, 2018), here solved as least squares on the simplex.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from watchkeeper.stats._result import _plain

__all__ = ["ClassCountExpectation", "ClassMixEstimate", "bbse", "expect_class_counts"]


def _confusion(confusion: Any) -> np.ndarray:
    c = np.asarray(confusion, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] < 2:
        raise ValueError(f"confusion: expected a square k×k matrix (k >= 2), got {c.shape}")
    if not np.isfinite(c).all() or (c < 0).any():
        raise ValueError("confusion: counts must be finite and non-negative")
    if (c.sum(axis=0) == 0).any():
        raise ValueError("confusion: every true class (column) needs validation events")
    return c


@dataclass(frozen=True, slots=True)
class ClassCountExpectation:
    """Expected count of each predicted class in a window, its sigma and band."""

    expected: np.ndarray
    sigma: np.ndarray
    low: np.ndarray
    high: np.ndarray
    coverage: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        out: dict[str, Any] = _plain(
            {
                "expected": self.expected,
                "sigma": self.sigma,
                "low": self.low,
                "high": self.high,
                "coverage": self.coverage,
            }
        )
        return out


def expect_class_counts(
    confusion: Any, priors: Any, volume: float, *, coverage: float = 0.95
) -> ClassCountExpectation:
    """Expected counts of each predicted class among ``volume`` events with class mix ``priors``.

    ``confusion[i, j]`` counts validation events predicted ``i`` whose true class is ``j``.
    The count of predicted class ``i`` is a sum over true classes of
    ``Bin(volume·priors[j], M[i, j])``; its band comes from the exact convolution.

    Examples
    --------
    >>> conf = [[90, 5], [10, 95]]  # binary: TPR 0.95, FPR 0.10 for class 1
    >>> e = expect_class_counts(conf, [0.8, 0.2], 1000)
    >>> e.expected.tolist(), e.low.tolist(), e.high.tolist()
    ([730.0, 270.0], [712, 253], [747, 288])
    """
    from watchkeeper.estimation._operating import (
        EXACT_SUPPORT,
        OperatingPoint,
        _cornish_fisher_band,
        _coverage,
        _cumulants,
        _flag_pmf,
        _volume,
    )

    c = _confusion(confusion)
    k = c.shape[0]
    pi = np.asarray(priors, dtype=np.float64)
    if pi.shape != (k,) or (pi < 0).any() or abs(pi.sum() - 1) > 1e-6:
        raise ValueError(f"priors: expected {k} non-negative shares summing to 1")
    n = _volume(volume)
    cov = _coverage(coverage)
    m = c / c.sum(axis=0, keepdims=True)
    counts = n * pi
    expected = m @ counts
    sigma = np.sqrt((m * (1 - m)) @ counts)
    low, high = np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)
    tail = (1 - cov) / 2
    for i in range(k):  # per class, not per row: k is small
        cumulants = [_cumulants(float(counts[j]), float(m[i, j]), None) for j in range(k)]
        if 28 * sum(np.sqrt(c[1]) for c in cumulants) + 21 * k > EXACT_SUPPORT:
            # past the exact cut-off the cost must not grow with the volume
            sd = float(np.sqrt(sum(c[1] for c in cumulants)))
            skew = sum(c[2] for c in cumulants) / sd**3
            kurt = sum(c[3] for c in cumulants) / sd**4
            low[i], high[i] = _cornish_fisher_band(float(expected[i]), sd, skew, kurt, cov, n)
            continue
        # predicted-i count = sum over true classes: convolve their binomials pairwise
        offset, pmf = 0, np.ones(1)
        for j in range(k):
            rate = float(m[i, j])
            op = OperatingPoint(None, max(rate, 1e-12), 0.0)
            o, p = _flag_pmf(op, 1.0, round(counts[j]), False) if rate > 0 else (0, np.ones(1))
            pmf = np.convolve(pmf, p)
            offset += o
        cdf = np.cumsum(pmf / pmf.sum())
        low[i] = offset + int(np.searchsorted(cdf, tail, side="right"))
        high[i] = offset + min(len(cdf) - 1, int(np.searchsorted(cdf, 1 - tail - 1e-12)))
    return ClassCountExpectation(expected, sigma, low, high, cov)


@dataclass(frozen=True, slots=True)
class ClassMixEstimate:
    """Production class mix recovered from predictions, with percentile intervals."""

    priors: np.ndarray
    low: np.ndarray
    high: np.ndarray
    coverage: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        out: dict[str, Any] = _plain(
            {"priors": self.priors, "low": self.low, "high": self.high, "coverage": self.coverage}
        )
        return out


def _simplex_lstsq(m: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``argmin ||M pi - q||`` over the simplex, for a stack of ``(M, q)`` pairs.

    Projected gradient with a step from the largest singular value; the problems are tiny
    (k classes) and all replicates move together.
    """
    k = m.shape[-1]
    pi = np.full(q.shape, 1.0 / k)
    step = 1.0 / np.maximum(np.linalg.norm(m, ord=2, axis=(-2, -1)) ** 2, 1e-12)
    for _ in range(1000):
        grad = np.einsum("...ji,...j->...i", m, np.einsum("...ij,...j->...i", m, pi) - q)
        pi = _project_simplex(pi - step[..., None] * grad)
    return pi


def _project_simplex(v: np.ndarray) -> np.ndarray:
    k = v.shape[-1]
    u = -np.sort(-v, axis=-1)
    css = np.cumsum(u, axis=-1) - 1
    ind = np.arange(1, k + 1)
    cond = u - css / ind > 0
    rho = k - 1 - np.argmax(cond[..., ::-1], axis=-1)
    theta = np.take_along_axis(css, rho[..., None], axis=-1) / (rho[..., None] + 1)
    return np.asarray(np.maximum(v - theta, 0))


def bbse(
    confusion: Any,
    predicted: Any,
    *,
    coverage: float = 0.95,
    n_bootstrap: int = 300,
    random_state: int = 0,
) -> ClassMixEstimate:
    """Class mix of a production window from its predicted classes (black-box shift estimation).

    Parameters
    ----------
    confusion
        Validation confusion matrix, ``confusion[i, j]`` = events predicted ``i``, true ``j``.
    predicted
        Predicted class indices (integers) of the window, or its counts per predicted class
        as a float array of length ``k``.
    coverage
        Interval coverage; the bootstrap redraws the validation columns and the window.

    Examples
    --------
    >>> conf = np.array([[80, 10, 5], [15, 85, 5], [5, 5, 90]])
    >>> m = conf / conf.sum(0)
    >>> counts = m @ np.array([0.2, 0.3, 0.5]) * 10_000
    >>> bbse(conf, counts).priors.round(2).tolist()
    [0.2, 0.3, 0.5]
    """
    c = _confusion(confusion)
    k = c.shape[0]
    pred = np.asarray(predicted)
    if pred.ndim == 1 and len(pred) == k and pred.dtype.kind == "f":
        counts = pred.astype(np.float64)
    else:
        idx = pred.astype(np.int64)
        if idx.ndim != 1 or (idx < 0).any() or (idx >= k).any():
            raise ValueError(f"predicted: expected class indices in [0, {k}) or {k} counts")
        counts = np.bincount(idx, minlength=k).astype(np.float64)
    if counts.sum() <= 0 or (counts < 0).any():
        raise ValueError("predicted: the window is empty")
    cov = float(coverage)
    if not 0 < cov < 1:
        raise ValueError(f"coverage must be strictly between 0 and 1, got {coverage!r}")
    m = c / c.sum(axis=0, keepdims=True)
    q = counts / counts.sum()
    point = _simplex_lstsq(m[None], q[None])[0]
    rng = np.random.default_rng(random_state)
    nb = int(n_bootstrap)
    cols = c.sum(axis=0).astype(np.int64)
    boot_m = (
        np.stack([rng.multinomial(cols[j], m[:, j], size=nb) for j in range(k)], axis=-1).astype(
            np.float64
        )
        / cols
    )
    boot_q = rng.multinomial(round(counts.sum()), q, size=nb) / counts.sum()
    boot = _simplex_lstsq(boot_m, boot_q)
    tail = (1 - cov) / 2
    low, high = np.quantile(boot, [tail, 1 - tail], axis=0)
    return ClassMixEstimate(point, np.minimum(low, point), np.maximum(high, point), cov)
