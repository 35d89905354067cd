"""Calibration drift: does a score of 0.8 still mean an 80% chance, as it did in validation?

Expected calibration error (ECE) over time is reported as the statistic; the decision is a
test. Under the null hypothesis that each score bin's positive rate is the reference's, the
window's positives per bin are binomial with that rate, and
``sum_b (O_b - E_b)^2 / (E_b (1 - r_b))`` is approximately chi-squared with one degree of
freedom per non-empty bin (Hosmer-Lemeshow against the reference rather than the diagonal, so a
model that was imperfectly calibrated in validation does not alarm for that alone).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from watchkeeper.checks._finding import Finding, finding
from watchkeeper.profiles import CalibrationSketch, Profile, binary_labels
from watchkeeper.window import Window


def _opt(options: Mapping[str, Any] | None, key: str, default: Any) -> Any:
    value = default if options is None else options.get(key, default)
    return default if value is None else value


def _scores(w: Window) -> np.ndarray | None:
    if w.scores is not None:
        return w.scores
    if w.probs is not None and w.probs.ndim == 2 and w.probs.shape[1] == 2:
        return w.probs[:, 1]
    return None


def calibration_drift(
    reference: Window | Profile | CalibrationSketch,
    window: Window,
    options: Mapping[str, Any] | None = None,
    *,
    positive_label: object = None,
) -> list[Finding]:
    """Compare the window's calibration with the reference's (labelled events only).

    Parameters
    ----------
    reference
        The reference window, its profile, or its calibration sketch.
    window
        The production window; only events with a label and a score count.
    options
        ``bins``, ``alpha``, ``min_labels``, ``severity``.
    positive_label
        Which label is positive, when labels are not 0/1-like.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> s = rng.uniform(size=4000)
    >>> ref = Window.from_columns(scores=s, labels=(rng.uniform(size=4000) < s).astype(int))
    >>> ok = Window.from_columns(scores=s, labels=(rng.uniform(size=4000) < s).astype(int))
    >>> bad = Window.from_columns(scores=s, labels=(rng.uniform(size=4000) < s**3).astype(int))
    >>> calibration_drift(ref, ok)[0].drift, calibration_drift(ref, bad)[0].drift
    (False, True)
    """
    bins = int(_opt(options, "bins", 10))
    alpha = float(_opt(options, "alpha", 0.01))
    min_labels = int(_opt(options, "min_labels", 100))
    severity = str(_opt(options, "severity", "warning"))
    if isinstance(reference, CalibrationSketch):
        ref = reference
    elif isinstance(reference, Profile):
        if reference.calibration is None:
            return []
        ref = reference.calibration
    else:
        rs = _scores(reference)
        if rs is None or reference.labels is None:
            return []
        ref = CalibrationSketch.of(rs, binary_labels(reference.labels, positive_label), bins)
    scores = _scores(window)
    if scores is None or window.labels is None:
        return []
    cur = CalibrationSketch.of(scores, binary_labels(window.labels, positive_label), ref.bins)
    if cur.total < min_labels or ref.total == 0:
        return []
    from scipy import stats

    n_ref, _, p_ref = (np.asarray(a, dtype=np.float64) for a in ref._arrays())
    n, _, pos = (np.asarray(a, dtype=np.float64) for a in cur._arrays())
    # Shrink the reference rate towards 1/2 by half an event so empty or pure bins keep a
    # finite variance.
    rate = (p_ref + 0.5) / (n_ref + 1.0)
    used = n > 0
    expected = n * rate
    chi2 = float((np.square(pos - expected)[used] / (expected[used] * (1 - rate[used]))).sum())
    df = int(used.sum())
    p_value = float(stats.chi2.sf(chi2, df)) if df else 1.0
    ece = cur.ece()
    return [
        finding(
            "calibration",
            "score",
            "ece",
            ece,
            p_value < alpha,
            window=window,
            p_value=p_value,
            alpha=alpha,
            severity=severity,
            details={
                "ece_reference": ref.ece(),
                "chi2": chi2,
                "df": df,
                "labelled": cur.total,
                "curve": cur.curve(),
            },
        )
    ]
