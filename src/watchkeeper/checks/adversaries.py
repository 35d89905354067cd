"""Outlier and adversary checks: the outlier rate of a window, and per-source attack tests.

:func:`outlier_rate` scores every event of a window against the reference (a
:mod:`watchkeeper.outliers` scorer fitted once per reference) and tests the number of events
with a conformal p-value at most ``alpha``. Given the reference, that count is binomial with a
rate that is itself Beta-distributed over the calibration draw, so the band is the
beta-binomial's: under no shift a window breaches it with probability at most ``band_alpha``.
A breach is told apart as ``shift`` (the bulk of the p-values moved too: a lasting change that
drift checks will also see) or ``transient`` (an excess of extreme events only, the rest of
the window as the reference: a burst of outliers).

:func:`adversaries` runs the per-source tests of :mod:`watchkeeper.outliers` on the events
tagged with ``tag`` (``source`` by default) and returns one finding per flagged source.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from watchkeeper.checks._finding import Finding, finding
from watchkeeper.window import Window

TESTS = ("clustering", "prada", "boundary", "duplicates", "volume")


def _opt(options: Mapping[str, Any] | None, key: str, default: Any) -> Any:
    return default if options is None else options.get(key, default)


def outlier_matrix(
    data: Window, method: str, features: list[str] | None = None
) -> tuple[np.ndarray | None, str]:
    """The matrix a scorer reads from a window and the method it implies.

    ``"auto"`` scores embeddings with kNN when there are embeddings, else the numeric features
    with an isolation forest.
    """
    if method == "auto":
        method = "knn" if data.embeddings is not None else "isolation_forest"
    if method == "knn":
        if data.embeddings is None:
            return None, method
        return np.asarray(data.embeddings, dtype=np.float64), method
    names = features or sorted(
        k for k, v in data.features.items() if np.asarray(v).dtype.kind in "biuf"
    )
    cols = [np.asarray(data.features.get(k, np.full(len(data), np.nan)), dtype=np.float64)
            for k in names]
    if not cols:
        return None, method
    return np.column_stack(cols), method


def fit_scorer(reference: Window, options: Mapping[str, Any] | None = None) -> Any:
    """A scorer of ``options["method"]`` fitted on the reference, or None when it cannot be.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ref = Window.from_columns(embeddings=rng.normal(size=(600, 4)))
    >>> fit_scorer(ref).method
    'knn'
    """
    from watchkeeper.outliers import IsolationForestScorer, KNNScorer, MahalanobisScorer

    method = str(_opt(options, "method", "auto"))
    features = _opt(options, "features", None)
    x, method = outlier_matrix(reference, method, features)
    if x is None or np.isfinite(x).all(axis=1).sum() < 100:
        return None
    makers: dict[str, Any] = {
        "knn": lambda: KNNScorer(k=int(_opt(options, "k", 10))),
        "mahalanobis": MahalanobisScorer,
        "isolation_forest": IsolationForestScorer,
    }
    if method not in makers:
        known = ", ".join(makers)
        raise ValueError(f"outliers.method: unknown method {method!r}; known: auto, {known}")
    scorer = makers[method]().fit(x)
    scorer.features_ = features
    return scorer


def outlier_rate(
    scorer: Any, window: Window, options: Mapping[str, Any] | None = None
) -> tuple[list[Finding], Any]:
    """The outlier-rate check: its findings and the per-event ``OutlierResult``.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> scorer = fit_scorer(Window.from_columns(embeddings=rng.normal(size=(4000, 4))))
    >>> calm = Window.from_columns(embeddings=rng.normal(size=(1000, 4)))
    >>> [f.drift for f in outlier_rate(scorer, calm)[0]]
    [False]
    >>> burst = rng.normal(size=(1000, 4))
    >>> burst[:60] += 6.0                                # 6% extreme events, the rest as before
    >>> f = outlier_rate(scorer, Window.from_columns(embeddings=burst))[0][0]
    >>> f.drift, f.details["kind"]
    (True, 'transient')
    >>> moved = Window.from_columns(embeddings=rng.normal(size=(1000, 4)) + 0.7)
    >>> outlier_rate(scorer, moved)[0][0].details["kind"]
    'shift'
    """
    from scipy import stats

    alpha = float(_opt(options, "alpha", 0.01))
    band_alpha = float(_opt(options, "band_alpha", 0.01))
    severity = str(_opt(options, "severity", "warning"))
    x, method = outlier_matrix(window, scorer.method, getattr(scorer, "features_", None))
    if x is None or len(window) == 0:
        return [], None
    result = scorer.score(x, alpha=alpha)
    p = result.p_values
    scored = np.isfinite(p)
    n = int(scored.sum())
    if n == 0:
        return [], result
    k = int(result.outlier.sum())
    n_cal = int(scorer.calibration_scores_.size)
    # Flagged iff (1 + #cal >= s) <= alpha (n_cal + 1): the flag rate given the calibration set
    # is Beta(l, n_cal + 1 - l), l = floor(alpha (n_cal + 1)) (Vovk; Bates et al. 2023).
    l_ = max(1, int(np.floor(alpha * (n_cal + 1))))
    dist = stats.betabinom(n, l_, n_cal + 1 - l_)
    p_value = float(dist.sf(k - 1))
    lo, hi = (float(v) for v in dist.interval(1 - band_alpha))
    drift = p_value < band_alpha
    # Bulk: the events that are not extreme should still look like the reference.
    tail = max(0.1, 10 * alpha)
    bulk = p[scored][p[scored] > tail]
    kind = None
    bulk_d = float("nan")
    if bulk.size >= 20:
        bulk_d = float(stats.kstest((bulk - tail) / (1 - tail), "uniform").statistic)
        n_eff = max(1, round(bulk.size * n_cal * (1 - tail) / (bulk.size + n_cal * (1 - tail))))
        bulk_moved = bulk_d > float(stats.kstwo.isf(band_alpha, n_eff))
        kind = "shift" if bulk_moved else "transient"
    elif drift:
        kind = "shift"
    flagged = np.flatnonzero(result.outlier)
    top = flagged[np.argsort(p[flagged], kind="stable")][:20]
    details = {
        "kind": kind if drift else None,
        "outliers": k,
        "n": n,
        "expected": n * l_ / (n_cal + 1),
        "band": [lo, hi],
        "band_alpha": band_alpha,
        "bulk_ks": bulk_d,
        "scorer": result.to_dict()["details"],
        "top_ids": [str(i) for i in window.ids[top]],
    }
    return [
        finding(
            "outliers",
            "embedding" if method == "knn" else "features",
            method,
            k / n,
            drift,
            window=window,
            p_value=p_value,
            alpha=band_alpha,
            severity=severity,
            details=details,
        )
    ], result


def adversaries(
    window: Window,
    options: Mapping[str, Any] | None = None,
    *,
    threshold: float | None = None,
    state: Mapping[str, Any] | None = None,
) -> tuple[list[Finding], dict[str, Any]]:
    """Per-source attack tests on one window; one finding per flagged source and test.

    Parameters
    ----------
    window
        The window; events without the tag are not tested.
    options
        ``tag``, ``tests``, ``alpha``, ``correction``, ``margin``, ``min_events``, ``ratio``,
        ``severity`` (the ``adversaries`` entry of :class:`MonitorConfig`).
    threshold
        The decision threshold of the operating point (for boundary probing).
    state
        The volume test's memory of each source's usual count (from the previous window).

    Returns
    -------
    (list[Finding], dict)
        Per test a summary finding (subject ``"*"``) and one finding per flagged source
        (subject ``"<tag>=<source>"``), and the new state.
    """
    from watchkeeper.outliers import (
        boundary_probing,
        embedding_tests,
        near_duplicates,
        volume_bursts,
    )

    tag = str(_opt(options, "tag", "source"))
    tests = list(_opt(options, "tests", None) or TESTS)
    unknown = sorted(set(tests) - set(TESTS))
    if unknown:
        raise ValueError(f"adversaries.tests: unknown test(s) {unknown}; known: {list(TESTS)}")
    alpha = float(_opt(options, "alpha", 0.01))
    correction = str(_opt(options, "correction", "holm"))
    severity = str(_opt(options, "severity", "critical"))
    min_events = int(_opt(options, "min_events", 32))
    new_state = dict(state or {})
    sources = window.tags.get(tag)
    if sources is None or len(window) == 0:
        return [], new_state
    results = []
    emb = window.embeddings
    if emb is not None and {"clustering", "prada"} & set(tests):
        clustering, prada = embedding_tests(
            emb, sources, window.ts, alpha=alpha, correction=correction, min_events=min_events
        )
        results += [r for r in (clustering, prada) if r.test in tests]
    if emb is not None and "duplicates" in tests:
        results.append(
            near_duplicates(emb, sources, window.ts, alpha=alpha, correction=correction)
        )
    if "boundary" in tests and threshold is not None:
        from watchkeeper.checks.drift import scores_of

        s = scores_of(window)
        if s is not None:
            results.append(
                boundary_probing(
                    s,
                    sources,
                    threshold,
                    margin=float(_opt(options, "margin", 0.05)),
                    alpha=alpha,
                    correction=correction,
                )
            )
    if "volume" in tests:
        volume, new_state["volume"] = volume_bursts(
            sources,
            (state or {}).get("volume"),
            ratio=float(_opt(options, "ratio", 3.0)),
            alpha=alpha,
            correction=correction,
        )
        results.append(volume)
    out: list[Finding] = []
    for r in results:
        flagged = r.flagged_sources
        best = int(np.argmin(r.adjusted)) if r.adjusted.size else -1
        out.append(
            finding(
                f"adversary.{r.test}",
                "*",
                r.test,
                float(len(flagged)),
                bool(flagged),
                window=window,
                p_value=float(r.adjusted[best]) if best >= 0 else None,
                alpha=alpha,
                severity=severity,
                details={"tag": tag, "tested": int(r.sources.size), "flagged": flagged[:50]},
            )
        )
        for i in np.flatnonzero(r.flagged):
            out.append(
                finding(
                    f"adversary.{r.test}",
                    f"{tag}={r.sources[i]}",
                    r.test,
                    float(r.statistic[i]),
                    True,
                    window=window,
                    p_value=float(r.adjusted[i]),
                    alpha=alpha,
                    severity=severity,
                    details={
                        "tag": tag,
                        "source": str(r.sources[i]),
                        "events": int(r.n[i]),
                        "raw_p_value": float(r.p_values[i]),
                        "correction": correction,
                        "tested": int(r.sources.size),
                    },
                )
            )
    return out, new_state
