"""Multiple-testing corrections across the columns (or projections) of one comparison."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

CORRECTIONS = ("holm", "bonferroni", "bh", "none")


def adjust_p_values(p_values: Any, correction: str = "holm") -> np.ndarray:
    """Adjusted p-values: compare each with the family's ``alpha`` directly.

    ``"bonferroni"`` and ``"holm"`` control the family-wise error rate (Holm is uniformly
    more powerful); ``"bh"`` (Benjamini–Hochberg) controls the false discovery rate under
    independence or positive dependence; ``"none"`` returns the p-values unchanged.

    Parameters
    ----------
    p_values
        1-D array of p-values in [0, 1].
    correction
        One of ``"holm"``, ``"bonferroni"``, ``"bh"``, ``"none"``.

    Examples
    --------
    >>> adjust_p_values([0.01, 0.04, 0.03], "holm").round(3).tolist()
    [0.03, 0.06, 0.06]
    >>> adjust_p_values([0.01, 0.04, 0.03], "bh").round(3).tolist()
    [0.03, 0.04, 0.04]
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError(f"p_values must be one-dimensional, got shape {p.shape}")
    if p.size and (np.isnan(p).any() or p.min() < 0 or p.max() > 1):
        raise ValueError("p_values must lie in [0, 1]")
    m = p.size
    if correction == "none" or m == 0:
        return p.copy()
    if correction == "bonferroni":
        return np.minimum(p * m, 1.0)
    order = np.argsort(p, kind="stable")
    ranked = p[order]
    if correction == "holm":
        adj = np.maximum.accumulate(ranked * (m - np.arange(m)))
    elif correction == "bh":
        adj = np.minimum.accumulate((ranked * m / np.arange(1, m + 1))[::-1])[::-1]
    else:
        raise ValueError(f"correction must be one of {CORRECTIONS}, got {correction!r}")
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


COMBINATIONS = ("cauchy", "harmonic", "bonferroni")


def combine_p_values(
    p_values: Any, method: str = "cauchy", weights: Any = None
) -> float:
    """One p-value for "none of these nulls is false", from p-values of dependent tests.

    ``"cauchy"`` is the Cauchy combination (Liu and Xie, 2020): ``T = sum w_i tan((0.5 -
    p_i)·pi)`` is standard Cauchy under the null whatever the dependence between the tests,
    asymptotically in the tail, so the combined p-value ``0.5 - arctan(T)/pi`` keeps its level
    for correlated tests (p-values above 0.9 count as 0.9, so a discrete test's p = 1 cannot
    swamp the others; checked by simulation for the default deep-model monitor). It adds up
    evidence that several tests hold and, with one strong test, costs about what Bonferroni
    does. ``"harmonic"`` is the harmonic-mean p-value (Wilson, 2019; the simple
    ``min(1, e·log(m)·HMP)`` bound, valid under any dependence); ``"bonferroni"`` is
    ``min(1, m·min p)``.

    Parameters
    ----------
    p_values
        1-D p-values in [0, 1] (at least one).
    method
        ``"cauchy"``, ``"harmonic"`` or ``"bonferroni"``.
    weights
        Non-negative weights summing to one (Cauchy and harmonic); default equal.

    Examples
    --------
    >>> round(combine_p_values([0.01, 0.02, 0.5]), 4)
    0.02
    >>> round(combine_p_values([0.01, 0.02, 0.5], "bonferroni"), 2)
    0.03
    >>> combine_p_values([1.0, 1.0])
    1.0
    """
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or p.size == 0:
        raise ValueError(f"p_values: expected a non-empty 1-D array, got shape {p.shape}")
    if np.isnan(p).any() or p.min() < 0 or p.max() > 1:
        raise ValueError("p_values must lie in [0, 1]")
    m = p.size
    if weights is None:
        w = np.full(m, 1.0 / m)
    else:
        w = np.asarray(weights, dtype=np.float64)
        if w.shape != (m,) or (w < 0).any() or abs(w.sum() - 1) > 1e-9:
            raise ValueError(f"weights: {m} non-negative values summing to 1 expected")
    if method == "bonferroni":
        return float(min(1.0, m * p.min()))
    if method == "harmonic":
        hmp = 1.0 / float((w / np.maximum(p, 1e-300)).sum())
        return float(min(1.0, hmp * (math.e * math.log(m) if m > 1 else 1.0)))
    if method != "cauchy":
        raise ValueError(f"method must be one of {COMBINATIONS}, got {method!r}")
    if p.min() == 0.0:
        return 0.0
    # p-values near 1 (a discrete test, a capped correction) would add huge negative terms
    # and swamp real evidence; capping them at 0.9 keeps the level within half a point of
    # alpha = 0.05 for independent and for positively correlated tests (by simulation).
    p = np.minimum(p, 0.9)
    # tan((0.5 - p)·pi) = 1 / tan(p·pi); for tiny p use 1/(p·pi) to avoid overflow
    small = p < 1e-15
    terms = np.where(small, 1.0 / (np.maximum(p, 1e-300) * math.pi), np.tan((0.5 - p) * math.pi))
    t = float((w * terms).sum())
    if t > 1e15:
        return float(min(1.0, 1.0 / (t * math.pi)))
    return float(min(1.0, max(0.0, 0.5 - math.atan(t) / math.pi)))
