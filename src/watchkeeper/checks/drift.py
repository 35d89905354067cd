"""Findings from the statistics and estimation layers: feature, embedding and prediction drift,
the operating-point expectation, estimated and realised performance.

:class:`PreparedReference` fits what can be fitted on the reference once (sorted columns,
calibration, reference performance) so that every window after only pays for its own side.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from watchkeeper.checks._finding import Finding, finding
from watchkeeper.profiles import binary_labels
from watchkeeper.window import Window

METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


def _opt(options: Mapping[str, Any] | None, key: str, default: Any) -> Any:
    value = default if options is None else options.get(key, default)
    return default if value is None else value


def scores_of(w: Window) -> np.ndarray | None:
    """The positive-class score column (``scores``, or ``probs[:, 1]`` for two classes)."""
    if w.scores is not None:
        return w.scores
    if w.probs is not None and w.probs.ndim == 2 and w.probs.shape[1] == 2:
        return w.probs[:, 1]
    return None


def _operating_point(op: Any) -> Any:
    from watchkeeper.estimation import OperatingPoint

    if op is None or isinstance(op, OperatingPoint):
        return op
    return OperatingPoint.from_dict(dict(op))


class PreparedReference:
    """A reference with the per-reference work of the checks done once, lazily.

    Parameters
    ----------
    reference
        The reference window (features, scores, labels, embeddings as available).
    operating_point
        Its :class:`~watchkeeper.estimation.OperatingPoint` or that as a dict.
    positive_label
        Which label is positive, when labels are not 0/1-like.
    """

    def __init__(
        self, reference: Window, operating_point: Any = None, positive_label: object = None
    ) -> None:
        self.reference = reference
        self.operating_point = operating_point
        self.positive_label = positive_label
        self._cache: dict[str, Any] = {}

    @property
    def op(self) -> Any:
        """The operating point as an ``OperatingPoint`` (or None)."""
        if "op" not in self._cache:
            self._cache["op"] = _operating_point(self.operating_point)
        return self._cache["op"]

    def labels01(self) -> np.ndarray | None:
        """Reference labels as 1.0 / 0.0 / NaN."""
        if self.reference.labels is None:
            return None
        if "y" not in self._cache:
            self._cache["y"] = binary_labels(self.reference.labels, self.positive_label)
        out: np.ndarray = self._cache["y"]
        return out

    def reference_scores_labels(self) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
        """Finite reference scores with their 0/1 labels, or ``(None, None)`` when the
        reference lacks either or has only one class (no mixture can be fitted then)."""
        if "scores_labels" not in self._cache:
            scores, y = scores_of(self.reference), self.labels01()
            pair: tuple[Any, Any] = (None, None)
            if scores is not None and y is not None:
                keep = np.isfinite(scores) & np.isfinite(y)
                s, yk = scores[keep], y[keep].astype(np.int64)
                if 0 < int(yk.sum()) < yk.size:
                    pair = (s, yk)
            self._cache["scores_labels"] = pair
        out: tuple[Any, Any] = self._cache["scores_labels"]
        return out

    def column_drift(self, options: Mapping[str, Any] | None) -> Any:
        """A ``ColumnDrift`` fitted on the reference features (cached per options)."""
        from watchkeeper.stats import ColumnDrift

        features = _opt(options, "features", None)
        key = repr(
            (
                "cd",
                features,
                _opt(options, "methods", None),
                _opt(options, "alpha", 0.05),
                _opt(options, "correction", "holm"),
            )
        )
        if key not in self._cache:
            names = list(features) if features is not None else list(self.reference.features)
            missing = [n for n in names if n not in self.reference.features]
            if missing:
                raise ValueError(f"feature_drift.features: not in the reference: {missing}")
            cd = ColumnDrift(
                methods=_opt(options, "methods", None),
                alpha=float(_opt(options, "alpha", 0.05)),
                correction=str(_opt(options, "correction", "holm")),
            )
            self._cache[key] = (cd.fit({n: self.reference.features[n] for n in names}), names)
        return self._cache[key]

    def estimator(self) -> Any:
        """A ``PerformanceEstimator`` calibrated on the reference scores and labels."""
        if "est" not in self._cache:
            from watchkeeper.estimation import PerformanceEstimator

            s, y = self._labelled()
            self._cache["est"] = PerformanceEstimator(threshold=self.op.threshold).fit(s, y)
        return self._cache["est"]

    def reference_performance(self) -> Any:
        """Realised performance of the model on its reference."""
        if "perf" not in self._cache:
            from watchkeeper.estimation import realised_performance

            s, y = self._labelled()
            self._cache["perf"] = realised_performance(s, y, self.op.threshold)
        return self._cache["perf"]

    def _labelled(self) -> tuple[np.ndarray, np.ndarray]:
        s = scores_of(self.reference)
        y = self.labels01()
        if s is None or y is None:
            raise ValueError("reference: scores and labels are needed for performance")
        ok = np.isfinite(s) & np.isfinite(y)
        return s[ok], y[ok]


def _prepared(reference: Window | PreparedReference) -> PreparedReference:
    return reference if isinstance(reference, PreparedReference) else PreparedReference(reference)


def feature_drift(
    reference: Window | PreparedReference,
    window: Window,
    options: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """Per-feature drift (``watchkeeper.stats.ColumnDrift``) and one finding for the model.

    Per-feature p-values are already corrected for multiple testing (``correction``); the
    finding for subject ``"*"`` carries the smallest corrected p-value, a valid p-value for "no
    feature changed", which is what a sequential alert rule should be fed.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> ref = Window.from_columns(features={"a": rng.normal(size=500), "b": rng.normal(size=500)})
    >>> cur = Window.from_columns(features={"a": rng.normal(1, 1, 300), "b": rng.normal(size=300)})
    >>> [(f.subject, f.drift) for f in feature_drift(ref, cur)]
    [('a', True), ('b', False), ('*', True)]
    """
    prep = _prepared(reference)
    if not prep.reference.features or len(window) == 0:
        return []
    cd, names = prep.column_drift(options)
    missing = [n for n in names if n not in window.features]
    if missing:
        # Absent columns are a data-quality finding; test the ones that are there.
        names = [n for n in names if n not in missing]
        if not names:
            return []
        from watchkeeper.stats import ColumnDrift

        cd = ColumnDrift(
            methods={k: v for k, v in (_opt(options, "methods", {}) or {}).items() if k in names}
            or None,
            alpha=float(_opt(options, "alpha", 0.05)),
            correction=str(_opt(options, "correction", "holm")),
        ).fit({n: prep.reference.features[n] for n in names})
    report = cd.test({n: window.features[n] for n in names})
    severity = str(_opt(options, "severity", "warning"))
    out = [
        Finding.from_result("feature_drift", name, result, severity=severity, window=window)
        for name, result in report.columns.items()
    ]
    ps = [r.p_value for r in report.columns.values() if r.p_value is not None]
    out.append(
        finding(
            "feature_drift",
            "*",
            f"dataset_{report.method}",
            float(report.details.get("n_drifted", 0)),
            bool(report.drift),
            window=window,
            p_value=min(ps) if ps else None,
            alpha=float(_opt(options, "alpha", 0.05)),
            severity=severity,
            details={"drifted": report.drifted, **dict(report.details)},
        )
    )
    return out


def prediction_drift(
    reference: Window | PreparedReference,
    window: Window,
    options: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """Drift of what the model outputs: the score distribution (``method`` is any univariate
    ``watchkeeper.stats`` test), each class probability of a multi-class model (corrected
    with Holm), and the predicted-label mix (two-sample chi-squared).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = Window.from_columns(scores=rng.beta(2, 5, 1000))
    >>> prediction_drift(ref, Window.from_columns(scores=rng.beta(5, 2, 500)))[0].drift
    True
    """
    import watchkeeper.stats as st

    prep = _prepared(reference)
    ref = prep.reference
    method = str(_opt(options, "method", "ks"))
    fn = getattr(st, method, None)
    if fn is None or not callable(fn) or method in ("ColumnDrift", "detect_drift"):
        raise ValueError(f"prediction_drift.method: unknown method {method!r}")
    alpha = float(_opt(options, "alpha", 0.05))
    severity = str(_opt(options, "severity", "warning"))

    def test(a: np.ndarray, b: np.ndarray) -> Any:
        a, b = a[np.isfinite(a)], b[np.isfinite(b)]
        try:
            return fn(a, b, alpha=alpha)
        except TypeError:  # a distance: decided by its threshold, not a level
            return fn(a, b)

    out: list[Finding] = []
    rs, ws = scores_of(ref), scores_of(window)
    if rs is not None and ws is not None and np.isfinite(ws).any():
        out.append(
            Finding.from_result(
                "prediction_drift", "score", test(rs, ws), severity=severity, window=window
            )
        )
    elif (
        ref.probs is not None
        and window.probs is not None
        and ref.probs.ndim == 2
        and window.probs.shape[1:] == ref.probs.shape[1:]
        and len(window)
    ):
        results = [test(ref.probs[:, k], window.probs[:, k]) for k in range(ref.probs.shape[1])]
        ps = [r.p_value for r in results]
        adjusted = st.adjust_p_values(ps, "holm") if all(p is not None for p in ps) else ps
        for k, (r, p) in enumerate(zip(results, adjusted, strict=True)):
            drift = bool(p < alpha) if p is not None else bool(r.drift)
            out.append(
                finding(
                    "prediction_drift",
                    f"prob_{k}",
                    r.method,
                    r.statistic,
                    drift,
                    window=window,
                    p_value=None if p is None else float(p),
                    alpha=alpha if p is not None else None,
                    threshold=r.threshold,
                    severity=severity,
                    details={"p_value_raw": r.p_value, "correction": "holm"},
                )
            )
    if ref.predicted is not None and window.predicted is not None and len(window):
        from watchkeeper.profiles import missing_mask

        a = ref.predicted[~missing_mask(ref.predicted)].astype(str)
        b = window.predicted[~missing_mask(window.predicted)].astype(str)
        if a.size and b.size:
            out.append(
                Finding.from_result(
                    "prediction_drift",
                    "predicted",
                    st.chi2(a, b, alpha=alpha),
                    severity=severity,
                    window=window,
                )
            )
    return out


def embedding_drift(
    reference: Window | PreparedReference,
    window: Window,
    options: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
) -> list[Finding]:
    """Multivariate drift of the embeddings (``watchkeeper.stats.MMDDrift`` and variants) on at
    most ``max_samples`` rows of each side, drawn with a fixed seed so reruns agree."""
    import watchkeeper.stats as st

    prep = _prepared(reference)
    re, we = prep.reference.embeddings, window.embeddings
    if re is None or we is None or len(window) == 0:
        return []
    method = str(_opt(options, "method", "mmd"))
    classes = {
        "mmd": "MMDDrift",
        "linear_mmd": "LinearMMDDrift",
        "rff_mmd": "RFFMMDDrift",
        "classifier": "ClassifierDrift",
        "projection": "ProjectionDrift",
    }
    cls = getattr(st, classes.get(method, ""), None)
    if cls is None:
        raise ValueError(
            f"embedding_drift.method: {method!r} is unknown or unavailable; "
            f"known: {sorted(classes)}"
        )
    cap = int(_opt(options, "max_samples", 1000))
    rng = np.random.default_rng(seed)

    def sample(e: np.ndarray) -> np.ndarray:
        e = e[np.isfinite(e).all(axis=1)]
        if len(e) > cap:
            e = e[rng.choice(len(e), cap, replace=False)]
        return e

    r, w = sample(re), sample(we)
    if len(r) < 2 or len(w) < 2:
        return []
    alpha = float(_opt(options, "alpha", 0.05))
    try:
        detector = cls(alpha=alpha)
    except TypeError:
        detector = cls()
    result = detector.fit(r).test(w)
    severity = str(_opt(options, "severity", "warning"))
    return [
        Finding.from_result(
            "embedding_drift",
            "embedding",
            result,
            severity=severity,
            window=window,
            details={"n_reference": len(r), "n_window": len(w)},
        )
    ]


def operating_point(
    reference: Window | PreparedReference,
    window: Window,
    options: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """Flags observed against what the operating point promises at the expected prevalence.

    Drift when the count is outside the band of :func:`~watchkeeper.estimation.check_flags`
    (``p_value < alpha``) under a random class mix (option ``mix``; ``"fixed"`` for windows
    whose mix is fixed by design) widened by the over-dispersion ``dispersion`` (learnt from
    past windows by :func:`~watchkeeper.estimation.fit_dispersion`); ``details["verdict"]``
    says whether a change of class mix explains it (``prior_shift``, with the estimated
    ``prevalence``) or not (``model_change``).

    A count alone cannot tell the two apart: a model whose scores drift can move the flag rate
    to one that some class mix would also produce. So when the count is out of band and the
    reference has scores with both labels, the verdict and the prevalence come from
    :func:`~watchkeeper.estimation.diagnose_shift` on the window's scores; the count's own
    verdict stays in ``details["count_verdict"]`` and the diagnosis in
    ``details["diagnosis"]``. Option ``diagnose_scores: false`` keeps the count's verdict.

    The prevalence the count alone implies is ``details["prevalence"]`` (with ``_low`` and
    ``_high``); the one estimated from the scores is ``details["score_prevalence"]`` (with
    ``_low`` and ``_high``), present when the scores were diagnosed. They answer different
    questions and can disagree widely: when the scores rule a class mix out, the count's
    figure is only what a mix would have had to be.
    """
    from watchkeeper.estimation import check_flags, diagnose_shift

    prep = _prepared(reference)
    op = prep.op
    ws = scores_of(window)
    if op is None or op.threshold is None or ws is None:
        return []
    ws = ws[np.isfinite(ws)]
    if ws.size == 0:
        return []
    prevalence = _opt(options, "expected_prevalence", None)
    if prevalence is None:
        y = prep.labels01()
        if y is None or not np.isfinite(y).any():
            return []
        prevalence = float(np.nanmean(y))
    alpha = float(_opt(options, "alpha", 0.01))
    observed = int((ws >= op.threshold).sum())
    fc = check_flags(
        op,
        float(prevalence),
        ws.size,
        observed,
        alpha=alpha,
        mix=str(_opt(options, "mix", "random")),
        dispersion=_opt(options, "dispersion", None),
    )
    details = fc.to_dict()
    details["count_verdict"] = fc.verdict
    out_of_band = fc.verdict != "as_expected"
    ref_scores, ref_y = prep.reference_scores_labels()
    if out_of_band and ref_scores is not None and bool(_opt(options, "diagnose_scores", True)):
        diagnosis = diagnose_shift(
            ref_scores, ref_y, ws, alpha=alpha, expected_prevalence=float(prevalence)
        )
        details["diagnosis"] = diagnosis.to_dict()
        if diagnosis.verdict != "as_expected":
            details["verdict"] = diagnosis.verdict
        # Two figures, kept apart: ``prevalence`` is what the count alone implies (from
        # check_flags), ``score_prevalence`` what the mix of score distributions estimates.
        details["score_prevalence"] = diagnosis.prevalence
        details["score_prevalence_low"] = diagnosis.prevalence_low
        details["score_prevalence_high"] = diagnosis.prevalence_high
    severity = str(_opt(options, "severity", "critical"))
    return [
        finding(
            "operating_point",
            "flags",
            "flag_count",
            float(observed),
            out_of_band,
            window=window,
            p_value=fc.p_value,
            alpha=alpha,
            severity=severity,
            details=details,
        )
    ]


def _performance_finding(
    check: str,
    estimate: Any,
    reference_perf: Any,
    options: Mapping[str, Any] | None,
    window: Window,
) -> list[Finding]:
    metric = str(_opt(options, "metric", "f1"))
    if metric not in estimate.metrics or metric not in reference_perf.metrics:
        raise ValueError(f"{check}.metric: {metric!r} is not one of {sorted(estimate.metrics)}")
    tol = float(_opt(options, "tolerance", 0.05))
    ref_value = float(reference_perf[metric].value)
    mv = estimate[metric]
    if not math.isfinite(mv.value) or not math.isfinite(ref_value):
        return []
    bound = ref_value - tol
    # Drift only when the whole interval lies below the bound: a noisy small window does not
    # alarm, a confident drop does.
    drift = math.isfinite(mv.high) and mv.high < bound
    return [
        finding(
            check,
            metric,
            estimate.method,
            float(mv.value),
            drift,
            window=window,
            threshold=bound,
            severity=str(_opt(options, "severity", "warning")),
            details={
                "low": mv.low,
                "high": mv.high,
                "reference": ref_value,
                "n": estimate.n,
                "metrics": {k: v.value for k, v in estimate.metrics.items()},
            },
        )
    ]


def estimated_performance(
    reference: Window | PreparedReference,
    window: Window,
    options: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """Label-free performance (prior-corrected CBPE) against the reference's realised value."""
    prep = _prepared(reference)
    ws = scores_of(window)
    if prep.op is None or prep.op.threshold is None or ws is None:
        return []
    ws = ws[np.isfinite(ws)]
    if ws.size < 20:
        return []
    estimate = prep.estimator().estimate(ws)
    return _performance_finding(
        "estimated_performance", estimate, prep.reference_performance(), options, window
    )


def realised_performance(
    reference: Window | PreparedReference,
    window: Window,
    options: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """Measured performance on the window's labelled events (at least ``min_labels``)."""
    from watchkeeper.estimation import realised_performance as measure

    prep = _prepared(reference)
    ws = scores_of(window)
    if prep.op is None or prep.op.threshold is None or ws is None or window.labels is None:
        return []
    y = binary_labels(window.labels, prep.positive_label)
    ok = np.isfinite(ws) & np.isfinite(y)
    if int(ok.sum()) < int(_opt(options, "min_labels", 50)):
        return []
    # 100 bootstrap replicates bound the interval well enough for a go/no-go decision and
    # cost a quarter of the estimation layer's default on large labelled windows.
    metric = str(_opt(options, "metric", "f1"))
    if metric not in METRICS:
        raise ValueError(f"realised_performance.metric: {metric!r} is not one of {METRICS}")
    estimate = measure(
        ws[ok],
        y[ok],
        prep.op.threshold,
        metrics=(metric,),
        n_bootstrap=int(_opt(options, "n_bootstrap", 100)),
    )
    if prep.reference.labels is None:
        return []
    return _performance_finding(
        "realised_performance", estimate, prep.reference_performance(), options, window
    )


def _class_indices(
    reference: Window, window: Window
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], bool] | None:
    """(reference predicted, reference true, window predicted, class names, from probs) as
    class indices, or ``None`` when the model is not multi-class or the reference lacks
    labels."""
    if reference.labels is None:
        return None
    rp, wp = reference.probs, window.probs
    if rp is not None and wp is not None and rp.ndim == 2 and rp.shape[1] >= 3:
        if wp.shape[1:] != rp.shape[1:]:
            return None
        k = rp.shape[1]
        try:
            y = np.asarray(reference.labels, dtype=np.float64)
        except (TypeError, ValueError):
            return None
        ok = np.isfinite(y) & np.isfinite(rp).all(axis=1)
        y = y[ok]
        if y.size == 0 or (y != np.round(y)).any() or (y < 0).any() or (y >= k).any():
            return None
        wk = np.isfinite(wp).all(axis=1)
        names = [str(i) for i in range(k)]
        return rp[ok].argmax(axis=1), y.astype(np.int64), wp[wk].argmax(axis=1), names, True
    if reference.predicted is None or window.predicted is None:
        return None
    from watchkeeper.profiles import missing_mask

    keep = ~missing_mask(reference.labels) & ~missing_mask(reference.predicted)
    labels = reference.labels[keep].astype(str)
    rpred = reference.predicted[keep].astype(str)
    wpred = window.predicted[~missing_mask(window.predicted)].astype(str)
    names = sorted(set(labels.tolist()))
    if len(names) < 3:  # binary models have the operating point
        return None
    index = {c: i for i, c in enumerate(names)}
    r_ok = np.isin(rpred, names)
    # a window prediction outside the known classes is a data-quality finding, not a mix
    w_ok = np.isin(wpred, names)
    to_idx = np.vectorize(index.__getitem__, otypes=[np.int64])
    return (
        to_idx(rpred[r_ok]) if r_ok.any() else np.zeros(0, dtype=np.int64),
        to_idx(labels[r_ok]) if r_ok.any() else np.zeros(0, dtype=np.int64),
        to_idx(wpred[w_ok]) if w_ok.any() else np.zeros(0, dtype=np.int64),
        names,
        False,
    )


def class_mix(
    reference: Window | PreparedReference,
    window: Window,
    options: Mapping[str, Any] | None = None,
) -> list[Finding]:
    """The operating-point story of a multi-class model: predicted-class counts against what
    the validation confusion matrix promises, and whether the class mix changed.

    The band of each predicted class comes from
    :func:`~watchkeeper.estimation.expect_class_counts` (random class mix); the verdict from
    :func:`~watchkeeper.estimation.class_mix_test` (``p_value < alpha``), whose p-value is
    simulated, so it holds at any window size. When the mix changed and the model has softmax
    outputs, :func:`~watchkeeper.estimation.diagnose_shift_multiclass` says whether a new
    class mix explains the outputs (``details["verdict"]``: ``prior_shift``) or not
    (``model_change``). No binary scores are needed.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> def probs(y):
    ...     z = rng.normal(0, 1, (len(y), 4)); z[np.arange(len(y)), y] += 3.0
    ...     return np.exp(z) / np.exp(z).sum(1, keepdims=True)
    >>> y = rng.choice(4, 2000)
    >>> ref = Window.from_columns(probs=probs(y), labels=y)
    >>> same = Window.from_columns(probs=probs(rng.choice(4, 400)))
    >>> class_mix(ref, same)[0].drift
    False
    >>> skewed = Window.from_columns(probs=probs(rng.choice(4, 400, p=[0.55, 0.15, 0.15, 0.15])))
    >>> f = class_mix(ref, skewed)[0]
    >>> f.drift, f.details["most_changed"], f.details["verdict"]
    (True, '0', 'prior_shift')
    """
    from watchkeeper.estimation import (
        class_mix_test,
        diagnose_shift_multiclass,
        expect_class_counts,
    )

    prep = _prepared(reference)
    got = _class_indices(prep.reference, window)
    if got is None:
        return []
    rpred, ry, wpred, names, from_probs = got
    k = len(names)
    if wpred.size == 0 or ry.size == 0:
        return []
    conf = np.zeros((k, k))
    np.add.at(conf, (rpred, ry), 1.0)
    if (conf.sum(axis=0) == 0).any():
        return []  # a class without validation events: no confusion column to expect from
    alpha = float(_opt(options, "alpha", 0.05))
    priors = _opt(options, "expected_priors", None)
    result = class_mix_test(
        conf,
        wpred,
        expected_priors=priors,
        alpha=alpha,
        alternative=str(_opt(options, "alternative", "two-sided")),
        n_simulations=max(2000, math.ceil(20 / alpha)),
    )
    pi0 = conf.sum(axis=0) / conf.sum() if priors is None else np.asarray(priors, dtype=float)
    band = expect_class_counts(conf, pi0, wpred.size)
    d = result.details
    details: dict[str, Any] = {
        "classes": names,
        "observed": d["observed"],
        "expected": band.expected,
        "low": band.low,
        "high": band.high,
        "priors": d["priors"],
        "expected_priors": pi0,
        "most_changed": names[int(d["most_changed"])],
        "n": d["n"],
        "verdict": "class_mix_changed" if result.drift else "as_expected",
    }
    if "note" in d:
        details["note"] = d["note"]
    ref = prep.reference
    if result.drift and from_probs and ref.probs is not None and window.probs is not None:
        y = np.asarray(ref.labels, dtype=np.float64)
        ok = np.isfinite(y) & np.isfinite(ref.probs).all(axis=1)
        wp = window.probs[np.isfinite(window.probs).all(axis=1)]
        diagnosis = diagnose_shift_multiclass(
            ref.probs[ok], y[ok].astype(np.int64), wp, alpha=alpha, expected_priors=pi0
        )
        details["diagnosis"] = diagnosis.to_dict()
        if diagnosis.verdict != "as_expected":
            details["verdict"] = diagnosis.verdict
    return [
        finding(
            "class_mix",
            "*",
            result.method,
            result.statistic,
            result.drift,
            window=window,
            p_value=result.p_value,
            alpha=alpha,
            severity=str(_opt(options, "severity", "warning")),
            details=details,
        )
    ]


COMBINED_CHECKS = ("feature_drift", "embedding_drift", "prediction_drift", "class_mix")
"""The drift tests :func:`model_drift` combines."""

_COUNTS = "class_counts"


def model_drift(
    findings: list[Finding], window: Window, options: Mapping[str, Any] | None = None
) -> list[Finding]:
    """One verdict for "did the model's inputs or outputs change?" from the drift tests that
    ran on a window, combined by a rule that keeps the level.

    The tests: feature drift (each feature's raw p-value, the features sharing one test's
    weight), the embedding test, each prediction test (the per-class probability tests share one
    weight) and the class-mix test (which shares one weight with the chi-squared test of the
    predicted labels: both test whether the predicted-class counts moved; these two, the only
    tests that see a pure label shift, weigh as much as all the others together). Their raw
    p-values are combined with :func:`~watchkeeper.stats.combine_p_values` (``method``:
    ``cauchy`` by default, valid however the tests depend on each other; ``harmonic`` or
    ``bonferroni``); ``drift`` is ``p_value < alpha``. One clear test suffices (a k-of-n vote of
    the tests misses what only one of them sees), at about the price of a Bonferroni correction,
    and the level holds for correlated tests, which a vote's does not. ``details["tests"]``
    holds each test's own p-value.

    Examples
    --------
    >>> from watchkeeper.checks import finding
    >>> w = Window.from_columns(scores=[0.1, 0.2])
    >>> fs = [finding("embedding_drift", "embedding", "mmd", 0.1, False, p_value=0.03, alpha=0.05),
    ...       finding("prediction_drift", "score", "ks", 0.2, False, p_value=0.04, alpha=0.05)]
    >>> f = model_drift(fs, w)[0]
    >>> f.drift, round(f.p_value, 3)
    (True, 0.034)
    """
    from watchkeeper.stats import combine_p_values

    # groups of raw p-values: each feature, each class probability, then one per other test
    groups: dict[str, dict[str, float]] = {}
    for f in findings:
        if f.check not in COMBINED_CHECKS or f.p_value is None or not math.isfinite(f.p_value):
            continue
        raw = f.details.get("p_value_raw", f.p_value)
        if f.check == "feature_drift":
            if f.subject != "*" and raw is not None:
                groups.setdefault("feature_drift", {})[f.subject] = float(raw)
        elif f.check == "prediction_drift" and f.subject.startswith("prob_"):
            if raw is not None:
                groups.setdefault("prediction_drift.probs", {})[f.subject] = float(raw)
        elif f.check == "class_mix" or (f.check, f.subject) == ("prediction_drift", "predicted"):
            # Two tests of one hypothesis (the predicted-class counts moved): one weight, so a
            # label shift is not diluted by a redundant second test.
            groups.setdefault(_COUNTS, {})[f"{f.check}.{f.subject}"] = float(f.p_value)
        else:
            groups[f"{f.check}.{f.subject}"] = {f.subject: float(f.p_value)}
    if not groups:
        return []
    method = str(_opt(options, "method", "cauchy"))
    alpha = float(_opt(options, "alpha", 0.05))
    # every test weighs the same; a group (the features, the class probabilities, the tests of
    # the predicted-class counts) shares its weight among its members, which the Cauchy rule
    # allows whatever their dependence
    # Two kinds of evidence weigh the same: the predicted-class counts (the only tests that see
    # a pure label shift) and the tests of the inputs and scores (several of which see the same
    # covariate shift), so neither kind is outvoted by the number of tests of the other.
    families = [
        {n: m for n, m in groups.items() if (n == _COUNTS) is label} for label in (True, False)
    ]
    families = [f for f in families if f]
    ps: list[float] = []
    weights: list[float] = []
    tests: dict[str, float] = {}
    for family in families:
        for members in family.values():
            for v in members.values():
                ps.append(v)
                weights.append(1.0 / (len(families) * len(family) * len(members)))
    for name, members in groups.items():
        if name == _COUNTS:
            tests.update(members)
        else:
            tests[name] = combine_p_values(list(members.values()), method)
    w = np.asarray(weights)
    p = combine_p_values(ps, method, weights=w / w.sum())
    return [
        finding(
            "model_drift",
            "*",
            method,
            float(len(tests)),
            p < alpha,
            window=window,
            p_value=p,
            alpha=alpha,
            severity=str(_opt(options, "severity", "warning")),
            details={"tests": tests, "strongest": min(tests, key=tests.__getitem__)},
        )
    ]
