"""Input policy shared by every univariate method: shapes, missing values, infinities.

The policy (written down in docs/drift.md):

* numeric methods drop NaN/None and ±inf before testing and report how many they dropped
  (``missing_*`` and ``infinite_*`` in ``details``); a change in the missing rate is a data
  quality finding, not a distribution shift, and mixing the two would hide which one happened;
* categorical methods keep missing values as a category of their own (``MISSING``): an empty
  string or a null that starts appearing *is* a change of the categorical distribution;
* a side left empty after cleaning gives a result with ``drift=False`` and
  ``details["skipped"]`` saying why, so one bad column never crashes a report.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from watchkeeper.stats._result import DriftResult

MISSING = "<missing>"


def as_1d(values: Any, name: str) -> np.ndarray:
    """Return ``values`` as a 1-D numpy array or raise a ``ValueError`` naming ``name``."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def is_categorical(arr: np.ndarray) -> bool:
    """Whether a column is categorical: strings, objects, booleans and categories are."""
    return arr.dtype.kind not in "iuf"


def numeric_sample(values: Any, name: str) -> tuple[np.ndarray, dict[str, int]]:
    """The finite float64 values of a 1-D sample and the counts of what was dropped."""
    arr = as_1d(values, name)
    if arr.dtype.kind in "iub":
        return arr.astype(np.float64), {f"missing_{name}": 0, f"infinite_{name}": 0}
    if arr.dtype.kind != "f":
        try:
            arr = np.array([np.nan if v is None else v for v in arr], dtype=np.float64)
        except (TypeError, ValueError):
            raise TypeError(
                f"{name} is not numeric (dtype {arr.dtype}); use a categorical method"
            ) from None
    arr = arr.astype(np.float64, copy=False)
    finite = np.isfinite(arr)
    if finite.all():
        return arr, {f"missing_{name}": 0, f"infinite_{name}": 0}
    n_nan = int(np.isnan(arr).sum())
    return arr[finite], {
        f"missing_{name}": n_nan,
        f"infinite_{name}": int(arr.size - finite.sum() - n_nan),
    }


def skipped(method: str, reason: str, alpha: float | None, threshold: float | None,
            details: dict[str, Any]) -> DriftResult:
    """A result for a comparison that could not be made (never drift, reason in details)."""
    return DriftResult(
        method,
        statistic=float("nan"),
        p_value=None,
        drift=False,
        alpha=alpha,
        threshold=threshold,
        details={**details, "skipped": reason},
    )


def check_alpha(alpha: float) -> float:
    """Validate a significance level."""
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    return float(alpha)


def check_threshold(threshold: float) -> float:
    """Validate a bound on a distance."""
    if not np.isfinite(threshold) or threshold < 0:
        raise ValueError(f"threshold must be a finite number >= 0, got {threshold!r}")
    return float(threshold)
