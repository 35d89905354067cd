"""The one result type every two-sample test, distance and check returns."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any


def _plain(value: Any) -> Any:
    """Turn numpy scalars, arrays and nested mappings into JSON-ready Python values."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else (1e308 if value > 0 else -1e308)
    return value


@dataclass(frozen=True, slots=True)
class DriftResult:
    """Outcome of comparing a current sample with a reference sample.

    The decision rule is stated by which bound is set: a test with a p-value decides
    ``drift = p_value < alpha``; a distance decides ``drift = statistic > threshold``.
    ``threshold`` is therefore always a bound on ``statistic`` and ``alpha`` always a level
    for ``p_value``: neither changes meaning from one method to another.

    Parameters
    ----------
    method
        Short name of the test or distance, e.g. ``"ks"`` or ``"psi"``.
    statistic
        The test statistic or the distance.
    p_value
        The p-value under the method's null hypothesis; ``None`` for pure distances.
    drift
        ``True`` always means "changed".
    alpha
        Significance level the p-value was compared with, when the decision used one.
    threshold
        Bound on ``statistic`` the decision used, when it used one.
    details
        Method-specific extras (sample sizes, bins, per-feature contributions, ...).

    Examples
    --------
    >>> r = DriftResult("ks", statistic=0.031, p_value=0.2, drift=False, alpha=0.05)
    >>> r.to_dict()["p_value"]
    0.2
    >>> r.details["anything"] = 1
    Traceback (most recent call last):
    ...
    TypeError: 'mappingproxy' object does not support item assignment
    """

    method: str
    statistic: float
    p_value: float | None
    drift: bool
    alpha: float | None = None
    threshold: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Freeze the details too, so a frozen result cannot be mutated through its parts.
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict (non-finite floats become ``None`` or ±1e308)."""
        return {
            "method": self.method,
            "statistic": _plain(float(self.statistic)),
            "p_value": None if self.p_value is None else _plain(float(self.p_value)),
            "alpha": self.alpha,
            "threshold": self.threshold,
            "drift": bool(self.drift),
            "details": _plain(dict(self.details)),
        }
