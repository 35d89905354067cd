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
    (``p_value < alpha``); ``details["verdict"]`` says whether a change of class mix explains it
    (``prior_shift``, with the estimated ``prevalence``) or not (``model_change``).

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
    fc = check_flags(op, float(prevalence), ws.size, observed, alpha=alpha)
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
