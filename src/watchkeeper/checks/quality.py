"""Data quality against the reference profile: types, ranges, categories, missing values, ids.

Each check compares a window with the :class:`~watchkeeper.profiles.Profile` of the reference
and returns one :class:`Finding` per feature it could judge. The decision rules are rates with
bounds (``threshold``), because a schema violation is a fact to count, not a hypothesis to test:
``drift=True`` means the rate exceeded what the configuration allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from watchkeeper.checks._finding import Finding, finding
from watchkeeper.profiles import (
    OTHER,
    CategoricalSummary,
    NumericSummary,
    Profile,
    missing_mask,
    profile,
)
from watchkeeper.window import Window


def _opt(options: Mapping[str, Any] | None, key: str, default: Any) -> Any:
    return default if options is None else options.get(key, default)


def _numeric_view(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Values as floats, and a mask of present values that are not numbers (vectorised)."""
    import pandas as pd

    v = np.asarray(values)
    if v.dtype.kind in "biuf":
        return v.astype(np.float64), np.zeros(v.shape, dtype=bool)
    missing = missing_mask(v)
    as_num = pd.to_numeric(pd.Series(v, dtype=object), errors="coerce").to_numpy(np.float64)
    return as_num, np.isnan(as_num) & ~missing


def check_types(
    reference: Profile, window: Window, options: Mapping[str, Any] | None = None
) -> list[Finding]:
    """Wrong types: text where the reference had numbers, numbers where it had categories,
    and features of the reference absent from the window.

    Examples
    --------
    >>> ref = profile(Window.from_columns(features={"x": [1.0, 2.0]}))
    >>> w = Window.from_columns(features={"x": np.array([1.0, "oops"], dtype=object)})
    >>> [(f.subject, f.statistic, f.drift) for f in check_types(ref, w)]
    [('x', 0.5, True)]
    """
    bound = float(_opt(options, "max_wrong_type_rate", 0.0))
    severity = str(_opt(options, "severity", "critical"))
    out = []
    for name, summary in reference.features.items():
        col = window.features.get(name)
        if col is None:
            out.append(
                finding(
                    "data_quality.type",
                    name,
                    "wrong_type_rate",
                    1.0,
                    len(window) > 0,
                    window=window,
                    threshold=bound,
                    severity=severity,
                    details={"reason": "missing column"},
                )
            )
            continue
        n = len(col)
        expected = "numeric" if isinstance(summary, NumericSummary) else "categorical"
        if expected == "numeric":
            _, bad = _numeric_view(col)
            wrong = int(bad.sum())
        else:
            wrong = 0 if col.dtype == object else int(np.isfinite(col.astype(np.float64)).sum())
        rate = wrong / n if n else 0.0
        out.append(
            finding(
                "data_quality.type",
                name,
                "wrong_type_rate",
                rate,
                rate > bound,
                window=window,
                threshold=bound,
                severity=severity,
                details={"expected": expected, "wrong": wrong, "n": n},
            )
        )
    return out


def check_ranges(
    reference: Profile, window: Window, options: Mapping[str, Any] | None = None
) -> list[Finding]:
    """Numeric values outside the reference range widened by ``range_margin`` of its span.

    Examples
    --------
    >>> ref = profile(Window.from_columns(features={"x": [0.0, 10.0]}))
    >>> w = Window.from_columns(features={"x": [5.0, 11.0, -1.0, 2.0]})
    >>> [(f.subject, f.statistic, f.drift) for f in check_ranges(ref, w)]
    [('x', 0.5, True)]
    """
    bound = float(_opt(options, "max_out_of_range_rate", 0.01))
    margin = float(_opt(options, "range_margin", 0.0))
    severity = str(_opt(options, "severity", "critical"))
    out = []
    for name, summary in reference.features.items():
        col = window.features.get(name)
        if not isinstance(summary, NumericSummary) or col is None or summary.count == 0:
            continue
        x, _ = _numeric_view(col)
        x = x[np.isfinite(x)]
        span = summary.max - summary.min
        lo, hi = summary.min - margin * span, summary.max + margin * span
        outside = int(((x < lo) | (x > hi)).sum())
        rate = outside / x.size if x.size else 0.0
        out.append(
            finding(
                "data_quality.range",
                name,
                "out_of_range_rate",
                rate,
                rate > bound,
                window=window,
                threshold=bound,
                severity=severity,
                details={"low": lo, "high": hi, "outside": outside, "n": int(x.size)},
            )
        )
    return out


def check_categories(
    reference: Profile, window: Window, options: Mapping[str, Any] | None = None
) -> list[Finding]:
    """Share of categorical values never seen in the reference, and which ones.

    Examples
    --------
    >>> ref = profile(Window.from_columns(features={"c": ["a", "b"]}))
    >>> w = Window.from_columns(features={"c": ["a", "z", "z", "b"]})
    >>> f = check_categories(ref, w)[0]
    >>> f.statistic, f.drift, f.details["new"]
    (0.5, True, {'z': 2})
    """
    bound = float(_opt(options, "max_new_category_rate", 0.01))
    severity = str(_opt(options, "severity", "critical"))
    out = []
    for name, summary in reference.features.items():
        col = window.features.get(name)
        if not isinstance(summary, CategoricalSummary) or col is None or OTHER in summary.counts:
            # With pooled categories the reference no longer knows every value it saw.
            continue
        keys = np.asarray(col, dtype=object)
        keys = keys[~missing_mask(keys)].astype(str)
        known = np.array(sorted(summary.counts), dtype=str)
        new_mask = ~np.isin(keys, known)
        new_values, new_counts = np.unique(keys[new_mask], return_counts=True)
        order = np.argsort(-new_counts)[:20]
        rate = float(new_mask.mean()) if keys.size else 0.0
        out.append(
            finding(
                "data_quality.new_category",
                name,
                "new_category_rate",
                rate,
                rate > bound,
                window=window,
                threshold=bound,
                severity=severity,
                details={
                    "new": dict(
                        zip(new_values[order].tolist(), new_counts[order].tolist(), strict=True)
                    ),
                    "n": int(keys.size),
                },
            )
        )
    return out


def check_missing(
    reference: Profile, window: Window, options: Mapping[str, Any] | None = None
) -> list[Finding]:
    """Missing-rate jumps: window rate minus reference rate above ``max_missing_rate_increase``.

    Examples
    --------
    >>> ref = profile(Window.from_columns(features={"x": [1.0, 2.0, 3.0, 4.0]}))
    >>> w = Window.from_columns(features={"x": [1.0, None, None, 4.0]})
    >>> f = check_missing(ref, w)[0]
    >>> f.statistic, f.drift
    (0.5, True)
    """
    bound = float(_opt(options, "max_missing_rate_increase", 0.1))
    severity = str(_opt(options, "severity", "critical"))
    out = []
    for name, summary in reference.features.items():
        col = window.features.get(name)
        if col is None or len(col) == 0:
            continue
        rate = float(missing_mask(col).mean())
        ref_rate = summary.missing_rate if summary.total else 0.0
        jump = rate - ref_rate
        out.append(
            finding(
                "data_quality.missing_rate",
                name,
                "missing_rate_increase",
                jump,
                jump > bound,
                window=window,
                threshold=bound,
                severity=severity,
                details={"missing_rate": rate, "reference_missing_rate": ref_rate},
            )
        )
    return out


def check_duplicates(window: Window, options: Mapping[str, Any] | None = None) -> list[Finding]:
    """Share of events whose id occurs more than once in the window.

    Examples
    --------
    >>> w = Window.from_columns(ids=["a", "b", "a", "c"], features={"x": [1, 2, 3, 4]})
    >>> f = check_duplicates(w)[0]
    >>> f.statistic, f.drift
    (0.25, True)
    """
    bound = float(_opt(options, "max_duplicate_rate", 0.0))
    severity = str(_opt(options, "severity", "critical"))
    n = len(window)
    ids = window.ids.astype(str)
    unique = int(np.unique(ids).size) if n else 0
    rate = (n - unique) / n if n else 0.0
    return [
        finding(
            "data_quality.duplicate_ids",
            "id",
            "duplicate_rate",
            rate,
            rate > bound,
            window=window,
            threshold=bound,
            severity=severity,
            details={"n": n, "unique": unique},
        )
    ]


def check_constant(
    reference: Profile, window: Window, options: Mapping[str, Any] | None = None
) -> list[Finding]:
    """Features that take one value throughout the window though they varied in the reference
    (a stuck sensor, a default filled in upstream).

    Examples
    --------
    >>> ref = profile(Window.from_columns(features={"x": [1.0, 2.0, 3.0]}))
    >>> w = Window.from_columns(features={"x": [7.0] * 20})
    >>> [(f.subject, f.drift) for f in check_constant(ref, w)]
    [('x', True)]
    """
    severity = str(_opt(options, "severity", "critical"))
    min_events = int(_opt(options, "min_events", 10))
    out = []
    for name, summary in reference.features.items():
        col = window.features.get(name)
        if col is None:
            continue
        values = np.asarray(col)
        values = values[~missing_mask(values)]
        if values.size < min_events:
            continue
        if isinstance(summary, NumericSummary):
            x, _ = _numeric_view(values)
            x = x[np.isfinite(x)]
            if x.size < min_events:
                continue
            distinct = 1 if np.all(x == x[0]) else 2
            ref_constant = summary.min == summary.max
        else:
            distinct = int(np.unique(values.astype(str)).size)
            ref_constant = len(summary.counts) <= 1
        is_constant = distinct <= 1
        out.append(
            finding(
                "data_quality.constant",
                name,
                "constant",
                float(is_constant),
                is_constant and not ref_constant,
                window=window,
                threshold=0.5,
                severity=severity,
                details={"value": str(values[0]) if is_constant else None},
            )
        )
    return out


def data_quality(
    reference: Window | Profile,
    window: Window,
    options: Mapping[str, Any] | None = None,
    *,
    reference_profile: Profile | None = None,
) -> list[Finding]:
    """Every data-quality check of this module on one window.

    Parameters
    ----------
    reference
        The reference window, or directly its profile.
    window
        The production window.
    options
        The ``data_quality`` options of :class:`~watchkeeper.checks.MonitorConfig`.
    reference_profile
        The stored profile of the reference, to avoid recomputing it.
    """
    if reference_profile is None:
        reference_profile = reference if isinstance(reference, Profile) else profile(reference)
    if len(window) == 0:
        return []
    return [
        *check_types(reference_profile, window, options),
        *check_ranges(reference_profile, window, options),
        *check_categories(reference_profile, window, options),
        *check_missing(reference_profile, window, options),
        *check_duplicates(window, options),
        *check_constant(reference_profile, window, options),
    ]
