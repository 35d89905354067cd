"""Checks on a profile instead of a window: for batch jobs whose data never leaves the engine.

A Spark or Dask job profiles a day of predictions (``watchkeeper.spark.profile``); these checks
compare that profile with the reference's and return the same findings, under the same check
names and options, as the window checks of :mod:`watchkeeper.checks.quality` and
:func:`watchkeeper.checks.feature_drift`, so alert rules and the console treat a batch day like
any window. Where a profile knows a figure only to its sketch's resolution (values outside the
reference range), ``details["approximate"]`` says so.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from watchkeeper.checks._finding import Finding, finding
from watchkeeper.profiles import OTHER, CategoricalSummary, NumericSummary, Profile


def _opt(options: Mapping[str, Any] | None, key: str, default: Any) -> Any:
    value = default if options is None else options.get(key, default)
    return default if value is None else value


def _numeric_key(key: str) -> bool:
    try:
        float(key)
    except ValueError:
        return False
    return True


def profile_quality(
    reference: Profile, current: Profile, options: Mapping[str, Any] | None = None
) -> list[Finding]:
    """Types, ranges, new categories, missing-rate jumps and stuck columns, from two profiles.

    Options and check names are those of :func:`watchkeeper.checks.data_quality`
    (``max_wrong_type_rate``, ``max_out_of_range_rate``, ``range_margin``,
    ``max_new_category_rate``, ``max_missing_rate_increase``, ``min_events``, ``severity``).

    Examples
    --------
    >>> from watchkeeper.profiles import profile
    >>> ref = profile({"x": [0.0, 10.0], "c": ["a", "b"]})
    >>> cur = profile({"x": [5.0, 11.0, None, 2.0], "c": ["a", "z", "z", "b"]})
    >>> for f in profile_quality(ref, cur):
    ...     if f.drift:
    ...         print(f.check, f.subject, round(f.statistic, 2))
    data_quality.range x 0.33
    data_quality.new_category c 0.5
    data_quality.missing_rate x 0.25
    """
    severity = str(_opt(options, "severity", "critical"))
    out: list[Finding] = []
    out += _types(reference, current, options, severity)
    out += _ranges(reference, current, options, severity)
    out += _categories(reference, current, options, severity)
    out += _missing(reference, current, options, severity)
    out += _constant(reference, current, options, severity)
    return out


def _types(ref: Profile, cur: Profile, options: Mapping[str, Any] | None,
           severity: str) -> list[Finding]:
    bound = float(_opt(options, "max_wrong_type_rate", 0.0))
    out = []
    for name, summary in ref.features.items():
        got = cur.features.get(name)
        if got is None:
            out.append(finding("data_quality.type", name, "wrong_type_rate", 1.0, cur.n > 0,
                               threshold=bound, severity=severity,
                               details={"reason": "missing column"}))
            continue
        rate, n = 0.0, got.count
        if isinstance(summary, NumericSummary) and isinstance(got, CategoricalSummary):
            wrong = sum(c for k, c in got.counts.items() if not _numeric_key(k))
            rate = wrong / n if n else 0.0
        out.append(finding("data_quality.type", name, "wrong_type_rate", rate, rate > bound,
                           threshold=bound, severity=severity, details={"n": n}))
    return out


def _ranges(ref: Profile, cur: Profile, options: Mapping[str, Any] | None,
            severity: str) -> list[Finding]:
    bound = float(_opt(options, "max_out_of_range_rate", 0.01))
    margin = float(_opt(options, "range_margin", 0.0))
    out = []
    for name, summary in ref.features.items():
        got = cur.features.get(name)
        if (not isinstance(summary, NumericSummary) or not isinstance(got, NumericSummary)
                or summary.count == 0 or got.count == 0):
            continue
        span = summary.max - summary.min
        lo, hi = summary.min - margin * span, summary.max + margin * span
        approximate = False
        if got.min >= lo and got.max <= hi:
            outside = 0
        else:
            # Bucket counts either side of the bounds: exact unless a bound splits a bucket.
            below = float(got.sketch.cdf(np.array([lo]))[0]) if got.min < lo else 0.0
            above = 1.0 - float(got.sketch.cdf(np.array([hi]))[0]) if got.max > hi else 0.0
            outside = max(round((below + above) * got.count), 1)
            approximate = True
        rate = outside / got.count
        out.append(finding("data_quality.range", name, "out_of_range_rate", rate, rate > bound,
                           threshold=bound, severity=severity,
                           details={"low": lo, "high": hi, "outside": outside, "n": got.count,
                                    "min": got.min, "max": got.max,
                                    "approximate": approximate}))
    return out


def _categories(ref: Profile, cur: Profile, options: Mapping[str, Any] | None,
                severity: str) -> list[Finding]:
    bound = float(_opt(options, "max_new_category_rate", 0.01))
    out = []
    for name, summary in ref.features.items():
        got = cur.features.get(name)
        if (not isinstance(summary, CategoricalSummary) or not isinstance(got, CategoricalSummary)
                or OTHER in summary.counts):
            continue  # with pooled categories the reference no longer knows every value
        new = {k: c for k, c in got.counts.items() if k not in summary.counts}
        rate = sum(new.values()) / got.count if got.count else 0.0
        top = dict(sorted(new.items(), key=lambda kv: (-kv[1], kv[0]))[:20])
        out.append(finding("data_quality.new_category", name, "new_category_rate", rate,
                           rate > bound, threshold=bound, severity=severity,
                           details={"new": top, "n": got.count,
                                    "pooled_other": OTHER in got.counts}))
    return out


def _missing(ref: Profile, cur: Profile, options: Mapping[str, Any] | None,
             severity: str) -> list[Finding]:
    bound = float(_opt(options, "max_missing_rate_increase", 0.1))
    out = []
    for name, summary in ref.features.items():
        got = cur.features.get(name)
        if got is None or got.total == 0:
            continue
        rate = got.missing_rate
        ref_rate = summary.missing_rate if summary.total else 0.0
        jump = rate - ref_rate
        out.append(finding("data_quality.missing_rate", name, "missing_rate_increase", jump,
                           jump > bound, threshold=bound, severity=severity,
                           details={"missing_rate": rate, "reference_missing_rate": ref_rate}))
    return out


def _constant(ref: Profile, cur: Profile, options: Mapping[str, Any] | None,
              severity: str) -> list[Finding]:
    min_events = int(_opt(options, "min_events", 10))
    out = []
    for name, summary in ref.features.items():
        got = cur.features.get(name)
        if got is None or got.count < min_events or type(got) is not type(summary):
            continue
        value: object
        if isinstance(got, NumericSummary):
            is_constant, value = got.min == got.max, got.min
            ref_constant = isinstance(summary, NumericSummary) and summary.min == summary.max
        else:
            is_constant = len(got.counts) <= 1 and OTHER not in got.counts
            value = next(iter(got.counts), None)
            ref_constant = len(summary.counts) <= 1  # type: ignore[union-attr]
        out.append(finding("data_quality.constant", name, "constant", float(is_constant),
                           is_constant and not ref_constant, threshold=0.5, severity=severity,
                           details={"value": str(value) if is_constant else None}))
    return out


def profile_drift(
    reference: Profile, current: Profile, options: Mapping[str, Any] | None = None
) -> list[Finding]:
    """Per-feature drift from two profiles, and one finding for the model (subject ``"*"``).

    The options are ``feature_drift``'s (``features``, ``methods``, ``alpha``, ``correction``,
    ``severity``) plus ``large_n`` and ``thresholds``; the tests are those of
    :func:`watchkeeper.profiles.compare_profiles`.

    Examples
    --------
    >>> from watchkeeper.profiles import profile
    >>> rng = np.random.default_rng(3)
    >>> ref = profile({"a": rng.normal(size=500), "b": rng.normal(size=500)})
    >>> cur = profile({"a": rng.normal(1, 1, 300), "b": rng.normal(size=300)})
    >>> [(f.subject, f.drift) for f in profile_drift(ref, cur)]
    [('a', True), ('b', False), ('*', True)]
    """
    from watchkeeper.profiles import compare_profiles

    if not reference.features or current.n == 0:
        return []
    features = _opt(options, "features", None)
    report = compare_profiles(
        reference,
        current,
        methods=_opt(options, "methods", None),
        alpha=float(_opt(options, "alpha", 0.05)),
        correction=str(_opt(options, "correction", "holm")),
        large_n=int(_opt(options, "large_n", 2000)),
        thresholds=_opt(options, "thresholds", None),
        columns=None if features is None else list(features),
    )
    severity = str(_opt(options, "severity", "warning"))
    out = [Finding.from_result("feature_drift", name, r, severity=severity)
           for name, r in report.columns.items()]
    ps = [r.p_value for r in report.columns.values() if r.p_value is not None]
    out.append(finding("feature_drift", "*", f"dataset_{report.method}",
                       float(report.details.get("n_drifted", 0)), bool(report.drift),
                       p_value=min(ps) if ps else None,
                       alpha=float(_opt(options, "alpha", 0.05)), severity=severity,
                       details={"drifted": report.drifted, **dict(report.details)}))
    return out


def check_profile(
    reference: Profile,
    current: Profile,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    *,
    start: float | None = None,
    end: float | None = None,
) -> list[Finding]:
    """Data quality and feature drift of ``current`` against ``reference``, dated.

    Parameters
    ----------
    reference, current
        Profiles of the reference and of the batch (a day, say).
    options
        ``{"data_quality": {...}, "feature_drift": {...}}``, as in a monitor configuration.
    start, end
        The batch's time range (seconds since the epoch), stored with every finding.
    """
    opts = options or {}
    found = [*profile_quality(reference, current, opts.get("data_quality")),
             *profile_drift(reference, current, opts.get("feature_drift"))]
    if start is None and end is None:
        return found
    if start is not None and end is not None and not (math.isfinite(start) and start <= end):
        raise ValueError(f"start, end: need start <= end, got {start} and {end}")
    return [dataclasses.replace(f, window_start=start, window_end=end) for f in found]
