"""Drift between two profiles: the same verdicts as on raw columns, from summaries alone.

A profile's quantile sketch keeps *exact counts* in fixed logarithmic buckets (the same bucket
edges for every profile), so on the union of two sketches' buckets the two empirical CDFs are
known exactly at every bucket edge. The tests below use that:

* ``ks``: the two-sample Kolmogorov-Smirnov distance taken over the bucket edges. It never
  exceeds the distance on the raw values, and its null distribution is that of a Brownian
  bridge watched only at the edges (the pooled CDF there), which is simulated, not read off
  Kolmogorov's continuous law: that law would make the test conservative by one to three points
  of false alarms, more on coarse grids. No rank error has to be folded in, because there is
  none at the edges; what a sketch loses is resolution *inside* a bucket (a relative width of
  ``2 * accuracy``), reported as ``details["resolution"]``: the largest pooled mass of one
  bucket, an upper bound on how much of the raw distance the bucketed one can miss.
* ``wasserstein``: W1 from the two bucketed CDFs, in units of the reference's standard
  deviation (from the exact moments), as :func:`watchkeeper.stats.wasserstein`.
* ``chi2`` / ``g_test`` on exact category counts (and on the buckets of a numeric column);
  ``jensen_shannon`` and the other frequency distances on the same counts.

A p-value from a sketch that assumed the full sample size *and* ignored the sketch's error
would flag more columns the more rows there are (whylogs' KS on KLL sketches does); here the
false-alarm rate stays at ``alpha`` at any n (tests/profiles/test_compare.py simulates 1M and
10M rows). Above ``large_n`` rows the defaults switch to effect sizes with thresholds, exactly
as :class:`watchkeeper.stats.ColumnDrift` does on raw columns, so a batch job and the in-memory
path reach the same verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from watchkeeper.profiles._profile import Profile
from watchkeeper.profiles._sketch import OTHER, CategoricalSummary, NumericSummary
from watchkeeper.stats import ColumnDrift, DatasetDrift, DriftResult

NUMERIC = ("ks", "wasserstein", "chi2", "g_test")
CATEGORICAL = ("chi2", "g_test", "psi", "jensen_shannon", "hellinger", "kl_divergence", "linf")
MISSING = "<missing>"
KS_PATHS = 4000
"""Simulated Brownian bridges behind a bucketed KS p-value (its Monte Carlo error at 0.05 is
0.0035)."""


def _grid(a: NumericSummary, b: NumericSummary) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Representative values of the union of both sketches' buckets, and each side's counts."""
    va, ca = a.sketch._ordered()
    vb, cb = b.sketch._ordered()
    values = np.union1d(va, vb)  # equal buckets have bit-identical representatives
    xa = np.zeros(values.size)
    xb = np.zeros(values.size)
    xa[np.searchsorted(values, va)] = ca
    xb[np.searchsorted(values, vb)] = cb
    return values, xa, xb


def bridge_sf(lam: float, t: np.ndarray, paths: int = KS_PATHS, seed: int = 0,
              hits_to_stop: int = 32) -> float:
    """``P(max_j |B(t_j)| >= lam)`` for a Brownian bridge ``B`` watched at times ``t``.

    Exact bounds first (Kolmogorov's law of the continuous supremum, and the union bound over
    the grid), then, when neither settles it, seeded simulation of up to ``paths`` bridges with
    Besag and Clifford's sequential Monte Carlo p-value: ``h / l`` if the ``h``-th
    (``hits_to_stop``) bridge reaching ``lam`` came at bridge ``l``, else
    ``(1 + hits) / (1 + paths)``. Both are valid p-values; the sequential one stops after a few
    dozen bridges when the p-value is large, which under no drift it usually is.

    Examples
    --------
    >>> 0.03 < bridge_sf(1.36, np.linspace(0.001, 0.999, 999)) <= 0.05  # about Kolmogorov's
    True
    >>> round(bridge_sf(1.36, np.array([0.5])), 4)  # one point: P(|N(0, 1/4)| >= 1.36)
    0.0065
    """
    from scipy.special import kolmogorov, ndtr

    if lam <= 0:
        return 1.0
    t = np.asarray(t, dtype=np.float64)
    t = t[(t > 0) & (t < 1)]
    if t.size == 0:
        return 0.0
    sd = np.sqrt(t * (1 - t))
    union = float((2.0 * ndtr(-lam / sd)).sum())
    bound = min(float(kolmogorov(lam)), union)
    if t.size == 1:
        return union  # exact: one normal variable
    if bound < 1e-3:
        return bound
    # Grid points where the bridge cannot reach lam (more than 6.3 sd away) cannot matter.
    t = t[sd > lam / 6.3]
    if t.size == 0:
        return bound
    rng = np.random.default_rng(seed)
    steps = np.diff(np.concatenate([[0.0], t, [1.0]]))
    root = np.sqrt(steps).astype(np.float32)
    t32 = t.astype(np.float32)
    hits, done = 0, 0
    block = 64
    while done < paths:
        k = min(block, paths - done)
        w = np.cumsum(rng.standard_normal((k, steps.size), dtype=np.float32) * root, axis=1)
        reached = np.abs(w[:, :-1] - t32 * w[:, -1:]).max(axis=1) >= lam
        cum = hits + np.cumsum(reached)
        if cum[-1] >= hits_to_stop:
            at = int(np.argmax(cum >= hits_to_stop))
            return min(hits_to_stop / (done + at + 1), bound)
        hits, done = int(cum[-1]), done + k
        block = min(4 * block, max(64, 4_000_000 // steps.size))
    return min((1 + hits) / (1 + paths), bound)


def _ks(a: NumericSummary, b: NumericSummary, alpha: float) -> DriftResult:
    values, xa, xb = _grid(a, b)
    na, nb = xa.sum(), xb.sum()
    fa, fb = np.cumsum(xa) / na, np.cumsum(xb) / nb
    d = float(np.abs(fa - fb).max())
    en = na * nb / (na + nb)
    pooled = np.cumsum(xa + xb)[:-1] / (na + nb)
    p = bridge_sf(math.sqrt(en) * d, pooled)
    details = {
        "n_reference": int(na),
        "n_current": int(nb),
        "buckets": int(values.size),
        "resolution": float(((xa + xb) / (na + nb)).max()),
        "mode": "bucketed",
    }
    return DriftResult("ks", statistic=d, p_value=p, drift=p < alpha, alpha=alpha,
                       details=details)


def _scale(a: NumericSummary, pooled: NumericSummary) -> float:
    """Population sd of the reference (of both sides if the reference is constant; else 1)."""
    for s in (a, pooled):
        if s.count:
            var = s.m2 / s.count
            if var > 1e-24 * max(1.0, (s.sum / s.count) ** 2):
                return math.sqrt(var)
    return 1.0


def _wasserstein(a: NumericSummary, b: NumericSummary, threshold: float) -> DriftResult:
    values, xa, xb = _grid(a, b)
    fa, fb = np.cumsum(xa) / xa.sum(), np.cumsum(xb) / xb.sum()
    dist = float((np.abs(fa - fb)[:-1] * np.diff(values)).sum())
    scale = _scale(a, a.merge(b))
    stat = dist / scale
    details = {"n_reference": int(xa.sum()), "n_current": int(xb.sum()), "distance": dist,
               "scale": scale, "buckets": int(values.size), "mode": "bucketed"}
    return DriftResult("wasserstein", statistic=stat, p_value=None, drift=stat > threshold,
                       threshold=threshold, details=details)


def _category_counts(
    a: CategoricalSummary, b: CategoricalSummary
) -> tuple[list[str], np.ndarray, np.ndarray, dict[str, Any]]:
    """Both sides' counts over the same categories (missing as a category, as on raw data).

    A category that one side pooled under ``__other__`` (more than ``max_categories``) has no
    exact count there, so it is pooled on both sides: the table stays exact, only coarser.
    """
    ka, kb = dict(a.counts), dict(b.counts)
    pooled = OTHER in ka or OTHER in kb
    if pooled:
        both = (set(ka) & set(kb)) - {OTHER}
        ka = {k: v for k, v in ka.items() if k in both} | {
            OTHER: sum(v for k, v in ka.items() if k not in both)}
        kb = {k: v for k, v in kb.items() if k in both} | {
            OTHER: sum(v for k, v in kb.items() if k not in both)}
    if a.missing or b.missing:
        ka[MISSING], kb[MISSING] = a.missing, b.missing
    labels = sorted(set(ka) | set(kb))
    ca = np.array([ka.get(k, 0) for k in labels], dtype=np.float64)
    cb = np.array([kb.get(k, 0) for k in labels], dtype=np.float64)
    from watchkeeper.stats._categorical import category_details

    details = category_details(labels, ca, cb)
    details["pooled_other"] = pooled
    return labels, ca, cb, details


def _bucket_counts(
    a: NumericSummary, b: NumericSummary
) -> tuple[list[str], np.ndarray, np.ndarray, dict[str, Any]]:
    values, xa, xb = _grid(a, b)
    details = {"n_reference": int(xa.sum()), "n_current": int(xb.sum()),
               "buckets": int(values.size), "mode": "bucketed"}
    return [repr(float(v)) for v in values], xa, xb, details


def compare_profiles(
    reference: Profile,
    current: Profile,
    *,
    methods: Mapping[str, str] | None = None,
    alpha: float = 0.05,
    correction: str = "holm",
    dataset_rule: str = "any",
    drift_share: float = 0.5,
    large_n: int = 2000,
    thresholds: Mapping[str, float] | None = None,
    columns: list[str] | None = None,
    embeddings: bool = True,
) -> DatasetDrift:
    """Per-feature drift between two profiles, with the options of ``ColumnDrift``.

    Defaults per column, as on raw data: ``ks`` (numeric) and ``chi2`` (categorical) below
    ``large_n`` values on either side, ``wasserstein`` / sd > 0.1 and ``jensen_shannon`` > 0.1
    from ``large_n`` on. A feature missing from ``current`` or of another kind there is
    reported as skipped (the data-quality checks count it).

    Parameters
    ----------
    reference, current
        Profiles (``watchkeeper.profiles.profile``, or an engine's ``profile``, merged).
    methods
        Feature name -> method: numeric ``ks``, ``wasserstein``, ``chi2``, ``g_test`` (the last
        two on the sketch buckets); categorical ``chi2``, ``g_test``, ``psi``,
        ``jensen_shannon``, ``hellinger``, ``kl_divergence``, ``linf``.
    alpha, correction, dataset_rule, drift_share, large_n, thresholds
        As in :class:`watchkeeper.stats.ColumnDrift`.
    columns
        Compare only these features (default: every feature of the reference).
    embeddings
        When both profiles carry random-Fourier sums of their embeddings (made with the same
        :class:`~watchkeeper.profiles.RFFMap`), also test the embeddings by MMD
        (:func:`compare_embeddings`), reported under ``"<embeddings>"`` and corrected with the
        features. Only without ``columns``.

    Returns
    -------
    DatasetDrift

    Examples
    --------
    >>> from watchkeeper.profiles import profile
    >>> rng = np.random.default_rng(0)
    >>> ref = profile({"a": rng.normal(size=1000), "b": rng.choice(["x", "y"], 1000)})
    >>> cur = profile({"a": rng.normal(0.5, size=1000), "b": rng.choice(["x", "y"], 1000)})
    >>> r = compare_profiles(ref, cur)
    >>> r.drifted, r.columns["a"].method, r.columns["b"].method
    (['a'], 'ks', 'chi2')
    """
    cd = ColumnDrift(methods=None, alpha=alpha, correction=correction,
                     dataset_rule=dataset_rule, drift_share=drift_share, large_n=large_n,
                     thresholds=thresholds)
    cd._validate()
    names = list(columns) if columns is not None else list(reference.features)
    unknown = [c for c in names if c not in reference.features]
    if unknown:
        raise ValueError(f"columns: not features of the reference profile: {unknown}")
    for name, method in (methods or {}).items():
        if name not in reference.features:
            raise ValueError(f"methods[{name!r}]: not a feature of the reference profile")
        if method not in NUMERIC and method not in CATEGORICAL:
            raise ValueError(
                f"methods[{name!r}]: {method!r} cannot be computed from profiles; choose from "
                f"{sorted(set(NUMERIC) | set(CATEGORICAL))}"
            )
    if not names:
        raise ValueError("reference profile has no features")
    raw: dict[str, DriftResult] = {}
    for name in names:
        raw[name] = _column(cd, name, reference.features[name], current.features.get(name),
                            (methods or {}).get(name))
    ref_emb = reference.embeddings
    if embeddings and columns is None and ref_emb is not None and ref_emb.rff is not None:
        if EMBEDDINGS in raw:
            raise ValueError(f"features: {EMBEDDINGS!r} is reserved for the embeddings' test")
        raw[EMBEDDINGS] = compare_embeddings(reference, current, alpha=alpha)
    return cd._verdict(raw)


EMBEDDINGS = "<embeddings>"
"""Where :func:`compare_profiles` reports the embeddings' MMD test."""


def compare_embeddings(reference: Profile, current: Profile, *,
                       alpha: float = 0.05) -> DriftResult:
    """MMD test between the embeddings of two profiles, from their random-Fourier sums.

    The difference of the two mean feature vectors is approximately normal with covariance
    ``(1/n + 1/m) Σ`` under no drift (``Σ`` the pooled feature covariance, which the sums
    give); its squared length is matched to a scaled chi-squared for the p-value
    (:meth:`watchkeeper.stats.RFFMMDDrift.test_summary`). Both profiles need the same
    :class:`~watchkeeper.profiles.RFFMap`.

    Examples
    --------
    >>> from watchkeeper.profiles import RFFMap, profile
    >>> from watchkeeper.window import Window
    >>> rng = np.random.default_rng(1)
    >>> ref = profile(Window.from_columns(features={"x": np.zeros(3000)},
    ...                                  embeddings=rng.normal(size=(3000, 8))),
    ...               embedding_map="auto")
    >>> m = ref.embeddings.rff_map
    >>> same = profile(Window.from_columns(features={"x": np.zeros(3000)},
    ...                                   embeddings=rng.normal(size=(3000, 8))), embedding_map=m)
    >>> moved = profile(Window.from_columns(features={"x": np.zeros(3000)},
    ...                 embeddings=rng.normal(0.2, 1.0, size=(3000, 8))), embedding_map=m)
    >>> compare_embeddings(ref, same).drift, compare_embeddings(ref, moved).drift
    (False, True)
    """
    from watchkeeper.stats import RFFMMDDrift
    from watchkeeper.stats._clean import skipped

    a, b = reference.embeddings, current.embeddings
    if a is None or a.rff is None:
        raise ValueError("reference: its profile has no random-Fourier sums of embeddings "
                         "(profile it with embedding_map)")
    if b is None or b.rff is None or b.count == 0:
        return skipped("rff_mmd", "no embeddings in the current profile", alpha, None,
                       {"kind": "embeddings"})
    if a.rff_map != b.rff_map:
        raise ValueError("current: its embeddings were summarised with another random-Fourier "
                         "map than the reference's; profile it with "
                         "embedding_map=reference.embeddings.rff_map")
    result = RFFMMDDrift(alpha=alpha).test_summary(b.rff, reference=a.rff)
    details = {**result.details, "kind": "embeddings",
               "bandwidth": a.rff_map.bandwidth if a.rff_map else None}
    return DriftResult(result.method, statistic=result.statistic, p_value=result.p_value,
                       drift=result.drift, alpha=result.alpha, details=details)


def _column(cd: ColumnDrift, name: str, a: Any, b: Any, method: str | None) -> DriftResult:
    from watchkeeper.stats._categorical import _table_test
    from watchkeeper.stats._clean import skipped
    from watchkeeper.stats._numeric import binned_distance

    alpha = float(cd.alpha)
    if b is None:
        return skipped(method or "unknown", f"{name}: not in the current profile", None, None,
                       {"kind": "missing"})
    if type(a) is not type(b):
        return skipped(method or "unknown", f"{name}: numeric on one side, text on the other",
                       None, None, {"kind": "type_mismatch"})
    large = min(a.count, b.count) >= cd.large_n
    if isinstance(a, NumericSummary):
        method = method or ("wasserstein" if large else "ks")
        if method not in NUMERIC:
            raise ValueError(f"methods[{name!r}]: {method!r} is not a method for numeric columns")
        if a.count == 0 or b.count == 0:
            return skipped(method, "no finite values on one side", None, None,
                           {"kind": "numeric"})
        if method == "ks":
            return _ks(a, b, alpha)
        if method == "wasserstein":
            return _wasserstein(a, b, cd._threshold("wasserstein"))
        _, ca, cb, details = _bucket_counts(a, b)
        return _table_test(method, ca, cb, {**details, "kind": "numeric"}, alpha,
                           method == "chi2")
    method = method or ("jensen_shannon" if large else "chi2")
    if method not in CATEGORICAL:
        raise ValueError(f"methods[{name!r}]: {method!r} is not a method for categorical columns")
    _, ca, cb, details = _category_counts(a, b)
    details["kind"] = "categorical"
    if ca.sum() == 0 or cb.sum() == 0:
        return skipped(method, "no values on one side", None, None, details)
    if method in ("chi2", "g_test"):
        return _table_test(method, ca, cb, details, alpha, method == "chi2")
    threshold = cd._threshold(method)
    stat = binned_distance(method, ca, cb)
    return DriftResult(method, statistic=stat, p_value=None, drift=stat > threshold,
                       threshold=threshold, details=details)
