"""Multiple-testing corrections across the columns (or projections) of one comparison."""

from __future__ import annotations

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
