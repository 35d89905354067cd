"""Two-sample tests for categorical columns, on the 2 × K table of counts.

Categories are the union of both sides. A category seen only in the current sample is kept in
the table (it is evidence of change, and a two-sample test handles a zero reference count
without dividing by it) and listed in ``details["unseen_categories"]``. Missing values are a
category of their own (``"<missing>"``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from watchkeeper.stats._clean import MISSING, as_1d, check_alpha, skipped
from watchkeeper.stats._result import DriftResult

_LIST_CAP = 20  # categories listed in details, so a high-cardinality column stays readable


def _is_missing(value: Any) -> bool:
    return (value is None or (isinstance(value, float) and value != value)
            or type(value).__name__ in ("NAType", "NaTType"))


def _codes(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Integer codes and category labels; missing values get the label ``MISSING``.

    Object columns are factorised through a dict built and read by C-level iteration
    (``dict.fromkeys`` and ``map``): as fast as pandas' hash table, and it spares the ~80 MB
    that importing pandas costs; sorting Python strings (``np.unique``) is ten times slower.
    """
    if values.dtype.kind in "iub":
        uniques, codes = np.unique(values, return_inverse=True)
        return codes.astype(np.int64), [str(u) for u in uniques.tolist()]
    if values.dtype.kind == "f":
        missing = np.isnan(values)
        uniques, codes = np.unique(values[~missing], return_inverse=True)
        return _with_missing(codes, missing, [str(u) for u in uniques.tolist()])
    items = values.tolist()
    try:
        index = {key: i for i, key in enumerate(dict.fromkeys(items))}
    except TypeError:  # unhashable values (lists, dicts): compare their text
        items = [str(v) if not _is_missing(v) else None for v in values.tolist()]
        index = {key: i for i, key in enumerate(dict.fromkeys(items))}
    codes = np.fromiter(map(index.__getitem__, items), dtype=np.int64, count=len(items))
    labels: list[str] = []
    final = np.empty(len(index), dtype=np.int64)
    missing_at = -1
    for i, key in enumerate(index):  # once per category, not per row
        if _is_missing(key):
            if missing_at < 0:
                missing_at = len(labels)
                labels.append(MISSING)
            final[i] = missing_at
        else:
            final[i] = len(labels)
            labels.append(str(key))
    return final[codes], labels


def _with_missing(codes: np.ndarray, missing: np.ndarray,
                  labels: list[str]) -> tuple[np.ndarray, list[str]]:
    if not missing.any():
        return np.asarray(codes, dtype=np.int64), labels
    out = np.full(missing.size, len(labels), dtype=np.int64)
    out[~missing] = codes
    return out, [*labels, MISSING]


def category_counts(values: Any, name: str) -> tuple[list[str], np.ndarray]:
    """The distinct values of one sample as text (``MISSING`` for missing) and their counts.

    A :class:`~watchkeeper.frames.Categories` column is counted from its codes, without
    looking at a row's text; anything else is factorised first.
    """
    from watchkeeper.frames import Categories

    if isinstance(values, Categories):
        counts = np.bincount(values.codes + 1, minlength=values.labels.size + 1)
        labels = [str(v) for v in values.labels.tolist()]
        if counts[0]:
            return [*labels, MISSING], np.append(counts[1:], counts[0])
        return labels, counts[1:]
    codes, labels = _codes(as_1d(values, name))
    return labels, np.bincount(codes, minlength=len(labels))


def merge_counts(ref: tuple[list[str], np.ndarray], cur: tuple[list[str], np.ndarray],
                 ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Both sides' counts on the union of their categories (the reference's first)."""
    index: dict[str, int] = {}
    for label in (*ref[0], *cur[0]):  # once per category, not per row
        index.setdefault(label, len(index))
    k = len(index)
    cref, ccur = np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)
    for (labels, counts), out in ((ref, cref), (cur, ccur)):
        np.add.at(out, np.fromiter(map(index.__getitem__, labels), np.int64, len(labels)), counts)
    return list(index), cref, ccur


def categorical_counts(reference: Any, current: Any,
                       ) -> tuple[list[str], np.ndarray, np.ndarray, dict[str, Any]]:
    """Categories (union), counts on each side and details (sizes, unseen, vanished).

    Each side is encoded on its own and the two are joined by category, so a reference
    encoded once can be compared with many windows.
    """
    labels, cref, ccur = merge_counts(category_counts(reference, "reference"),
                                      category_counts(current, "current"))
    return labels, cref, ccur, category_details(labels, cref, ccur)


def category_details(labels: list[str], cref: np.ndarray, ccur: np.ndarray) -> dict[str, Any]:
    """Sizes and the categories that appeared or vanished."""
    unseen = np.flatnonzero((cref == 0) & (ccur > 0))
    vanished = np.flatnonzero((cref > 0) & (ccur == 0))
    nc = int(ccur.sum())
    return {
        "n_reference": int(cref.sum()),
        "n_current": nc,
        "n_categories": len(labels),
        "unseen_categories": [labels[i] for i in unseen[:_LIST_CAP]],
        "unseen_share": float(ccur[unseen].sum() / nc) if nc else 0.0,
        "vanished_categories": [labels[i] for i in vanished[:_LIST_CAP]],
    }


_GAMMA_EPS = 1e-16
_GAMMA_MAX_TERMS = 100_000


def chi2_sf(stat: float, dof: int) -> float:
    """P(X > stat) for X chi-squared with ``dof`` degrees of freedom.

    The regularised upper incomplete gamma function ``Q(dof/2, stat/2)``: its power series
    below ``stat/2 = dof/2 + 1`` and its continued fraction (modified Lentz) above, each
    converging where it is used. Relative to :func:`scipy.special.chdtrc`, tails included:
    within 2e-13 up to 100 degrees of freedom, 1e-12 up to 1,000, 2e-10 up to 100,000 (the
    rounding of ``a ln x - ln Γ(a)`` grows with ``a``; tested). Plain ``math``: the first
    chi-squared test in a process does not pay for importing ``scipy.special`` (about 0.3 s
    on an idle machine, seconds on a busy one). Should a series not converge within its
    bound, scipy computes the value.

    Examples
    --------
    >>> round(chi2_sf(3.841458820694124, 1), 10)  # the 5% critical value of one dof
    0.05
    >>> chi2_sf(0.0, 4), chi2_sf(1e6, 3)
    (1.0, 0.0)
    """
    if not stat > 0.0:
        return 1.0
    if dof < 1:
        raise ValueError(f"dof must be a positive integer, got {dof!r}")
    a, x = 0.5 * dof, 0.5 * stat
    log_front = -x + a * math.log(x) - math.lgamma(a)
    if log_front < -745.0 and x > a:  # x^a e^-x / Γ(a) underflows: so does the tail
        return 0.0
    if x < a + 1.0:
        term = total = 1.0 / a
        ap = a
        for _ in range(_GAMMA_MAX_TERMS):
            ap += 1.0
            term *= x / ap
            total += term
            if abs(term) < abs(total) * _GAMMA_EPS:
                return min(1.0, max(0.0, 1.0 - total * math.exp(log_front)))
    else:
        tiny = 1e-300
        b = x + 1.0 - a
        c = 1.0 / tiny
        d = 1.0 / b
        h = d
        for i in range(1, _GAMMA_MAX_TERMS):
            an = -i * (i - a)
            b += 2.0
            d = an * d + b
            d = tiny if abs(d) < tiny else d
            c = b + an / c
            c = tiny if abs(c) < tiny else c
            d = 1.0 / d
            delta = d * c
            h *= delta
            if abs(delta - 1.0) < _GAMMA_EPS:
                return min(1.0, max(0.0, math.exp(log_front) * h))
    from scipy.special import chdtrc  # pragma: no cover - beyond the bound above

    return float(chdtrc(dof, stat))  # pragma: no cover


def _table_test(method: str, cref: np.ndarray, ccur: np.ndarray, details: dict[str, Any],
                alpha: float, correction: bool) -> DriftResult:
    if cref.sum() == 0 or ccur.sum() == 0:
        return skipped(method, "no values on one side", alpha, None, details)
    keep = (cref + ccur) > 0
    obs = np.vstack([cref[keep], ccur[keep]]).astype(np.float64)
    dof = obs.shape[1] - 1
    if dof == 0:
        details["dof"] = 0
        return DriftResult(method, statistic=0.0, p_value=1.0, drift=False, alpha=alpha,
                           details=details)
    expected = obs.sum(axis=1, keepdims=True) * obs.sum(axis=0, keepdims=True) / obs.sum()
    if dof == 1 and correction:
        # Yates' continuity correction for 2 × 2 tables, as scipy's chi2_contingency.
        diff = expected - obs
        obs = obs + np.minimum(0.5, np.abs(diff)) * np.sign(diff)
    if method == "chi2":
        stat = float(((obs - expected) ** 2 / expected).sum())
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(obs > 0, obs * np.log(obs / expected), 0.0)
        stat = float(2.0 * terms.sum())
    p = chi2_sf(stat, dof)
    details.update(dof=dof, min_expected=float(expected.min()))
    return DriftResult(method, statistic=stat, p_value=p, drift=p < alpha, alpha=alpha,
                       details=details)


def chi2(reference: Any, current: Any, *, alpha: float = 0.05,
         correction: bool = True) -> DriftResult:
    """Pearson's chi-squared test of homogeneity on the 2 × K table (reference, current).

    Null hypothesis: both samples are drawn from the same categorical distribution. Unlike a
    goodness-of-fit test against the reference proportions taken as exact, this two-sample
    test accounts for the reference's own sampling noise. Yates' correction is applied when
    there are two categories and ``correction`` is true (as :func:`scipy.stats.chi2_contingency`).

    Examples
    --------
    >>> ref = np.array(["a"] * 60 + ["b"] * 40)
    >>> cur = np.array(["a"] * 30 + ["b"] * 50 + ["new"] * 20)
    >>> r = chi2(ref, cur)
    >>> r.drift, r.details["unseen_categories"]
    (True, ['new'])
    """
    _, cref, ccur, details = categorical_counts(reference, current)
    return _table_test("chi2", cref, ccur, details, check_alpha(alpha), correction)


def g_test(reference: Any, current: Any, *, alpha: float = 0.05,
           correction: bool = False) -> DriftResult:
    """Likelihood-ratio (G) test of homogeneity on the 2 × K table.

    Same null hypothesis as :func:`chi2`; ``G = 2 Σ O ln(O / E)``.

    Examples
    --------
    >>> g_test(np.array(list("abab")), np.array(list("abab"))).p_value
    1.0
    """
    _, cref, ccur, details = categorical_counts(reference, current)
    return _table_test("g_test", cref, ccur, details, check_alpha(alpha), correction)


def fisher(reference: Any, current: Any, *, alpha: float = 0.05) -> DriftResult:
    """Fisher's exact test for a column with two categories (small counts).

    Null hypothesis: the share of each category is the same in both samples; exact, so
    right for small counts where the chi-squared approximation is not.

    Examples
    --------
    >>> r = fisher(np.array([0] * 9 + [1]), np.array([0] * 2 + [1] * 8))
    >>> r.drift, round(r.p_value, 4)
    (True, 0.0055)
    """
    alpha = check_alpha(alpha)
    _, cref, ccur, details = categorical_counts(reference, current)
    keep = (cref + ccur) > 0
    if keep.sum() > 2:
        raise ValueError(
            f"fisher needs at most two categories, got {int(keep.sum())}; use chi2 or g_test"
        )
    if cref.sum() == 0 or ccur.sum() == 0:
        return skipped("fisher", "no values on one side", alpha, None, details)
    if keep.sum() < 2:
        return DriftResult("fisher", statistic=1.0, p_value=1.0, drift=False, alpha=alpha,
                           details=details)
    from scipy.stats import fisher_exact

    table = np.vstack([cref[keep], ccur[keep]])
    res = fisher_exact(table)
    p = float(res.pvalue)
    return DriftResult("fisher", statistic=float(res.statistic), p_value=p, drift=p < alpha,
                       alpha=alpha, details=details)


def linf(reference: Any, current: Any, *, threshold: float = 0.1) -> DriftResult:
    """L-infinity distance: the largest change in any category's share.

    Examples
    --------
    >>> linf(np.array(list("aabb")), np.array(list("aaab"))).statistic
    0.25
    """
    from watchkeeper.stats._numeric import _binned

    return _binned("linf", np.asarray(reference).astype(object),
                   np.asarray(current).astype(object), 2, threshold)
