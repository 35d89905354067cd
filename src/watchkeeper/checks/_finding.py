"""The one output of every check: a :class:`Finding`, a DriftResult bound to what it measured."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from watchkeeper.stats._result import DriftResult, _plain
from watchkeeper.window import Window

SEVERITIES = ("info", "warning", "critical")
"""Severities in increasing order; a finding without drift is always ``"info"``."""


@dataclass(frozen=True, slots=True)
class Finding:
    """What one check measured on one subject of one window, and its verdict.

    Parameters
    ----------
    check
        The check that produced it, e.g. ``"feature_drift"`` or ``"data_quality.range"``.
    subject
        What was measured: a feature name, ``"score"``, ``"embedding"``, ``"*"`` for the model.
    method, statistic, p_value, drift, alpha, threshold, details
        As in :class:`~watchkeeper.stats.DriftResult`: ``drift=True`` always means "changed",
        ``alpha`` is a level for ``p_value`` and ``threshold`` a bound on ``statistic``.
    severity
        ``"info"``, ``"warning"`` or ``"critical"``.
    window_start, window_end
        The range of the window the finding is about (seconds since the epoch).

    Examples
    --------
    >>> r = DriftResult("ks", statistic=0.2, p_value=0.001, drift=True, alpha=0.05)
    >>> f = Finding.from_result("feature_drift", "age", r, severity="warning")
    >>> f.to_dict()["subject"], f.to_dict()["drift"]
    ('age', True)
    """

    check: str
    subject: str
    method: str
    statistic: float
    p_value: float | None
    drift: bool
    alpha: float | None = None
    threshold: float | None = None
    severity: str = "info"
    window_start: float | None = None
    window_end: float | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {SEVERITIES}, got {self.severity!r}")
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    @classmethod
    def from_result(
        cls,
        check: str,
        subject: str,
        result: DriftResult,
        *,
        severity: str = "warning",
        window: Window | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> Finding:
        """Bind a DriftResult to a check and subject; ``severity`` applies only on drift."""
        start, end = _bounds(window)
        return cls(
            check=check,
            subject=subject,
            method=result.method,
            statistic=float(result.statistic),
            p_value=None if result.p_value is None else float(result.p_value),
            drift=bool(result.drift),
            alpha=result.alpha,
            threshold=result.threshold,
            severity=severity if result.drift else "info",
            window_start=start,
            window_end=end,
            details={**dict(result.details), **dict(details or {})},
        )

    def to_dict(self) -> dict[str, Any]:
        """The store's finding dict (``Store.add_findings``), JSON-ready."""
        return {
            "check": self.check,
            "subject": self.subject,
            "method": self.method,
            "statistic": _plain(float(self.statistic)),
            "p_value": None if self.p_value is None else _plain(float(self.p_value)),
            "alpha": self.alpha,
            "threshold": self.threshold,
            "drift": bool(self.drift),
            "severity": self.severity,
            "window_start": self.window_start,
            "window_end": self.window_end,
            "details": _plain(dict(self.details)),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Finding:
        """Inverse of :meth:`to_dict` (extra keys such as a store id are ignored)."""
        stat = d.get("statistic")
        return cls(
            check=str(d["check"]),
            subject=str(d["subject"]),
            method=str(d.get("method", "")),
            statistic=math.nan if stat is None else float(stat),
            p_value=None if d.get("p_value") is None else float(d["p_value"]),
            drift=bool(d["drift"]),
            alpha=d.get("alpha"),
            threshold=d.get("threshold"),
            severity=str(d.get("severity", "info")),
            window_start=d.get("window_start"),
            window_end=d.get("window_end"),
            details=dict(d.get("details") or {}),
        )


def _bounds(window: Window | None) -> tuple[float | None, float | None]:
    if window is None:
        return None, None
    start, end = window.start, window.end
    if (start is None or end is None) and len(window):
        start = float(window.ts.min()) if start is None else start
        end = float(window.ts.max()) if end is None else end
    return start, end


def finding(
    check: str,
    subject: str,
    method: str,
    statistic: float,
    drift: bool,
    *,
    window: Window | None = None,
    p_value: float | None = None,
    alpha: float | None = None,
    threshold: float | None = None,
    severity: str = "warning",
    details: Mapping[str, Any] | None = None,
) -> Finding:
    """Shorthand used by the checks: ``severity`` applies only when ``drift`` is true."""
    start, end = _bounds(window)
    return Finding(
        check=check,
        subject=subject,
        method=method,
        statistic=float(statistic),
        p_value=p_value,
        drift=bool(drift),
        alpha=alpha,
        threshold=threshold,
        severity=severity if drift else "info",
        window_start=start,
        window_end=end,
        details=dict(details or {}),
    )
