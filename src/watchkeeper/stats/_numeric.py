"""Two-sample tests and distances for numeric columns, all from one sort of each sample.

Each public function cleans its inputs (see :mod:`watchkeeper.stats._clean`), sorts each side
once and hands the sorted arrays to a private kernel; :class:`~watchkeeper.stats.ColumnDrift`
calls the kernels directly with the reference sorted once at ``fit``. scipy is imported only
where it is the honest best: the exact Kolmogorov–Smirnov distribution, the exact small-sample
Cramér–von Mises distribution, and special functions.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np

from watchkeeper.stats._clean import (
    check_alpha,
    check_threshold,
    is_categorical,
    numeric_sample,
    skipped,
)
from watchkeeper.stats._result import DriftResult

KS_EXACT_MAX_N = 10_000  # like scipy's ks_2samp(method="auto")
CVM_EXACT_MAX_N = 20  # like scipy's cramervonmises_2samp(method="auto")


def _prepare(reference: Any, current: Any) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    x, info_x = numeric_sample(reference, "reference")
    y, info_y = numeric_sample(current, "current")
    info: dict[str, Any] = {**info_x, **info_y}
    return np.sort(x), np.sort(y), info


def _sizes(xs: np.ndarray, ys: np.ndarray, info: dict[str, Any]) -> dict[str, Any]:
    return {"n_reference": int(xs.size), "n_current": int(ys.size), **info}


def _ecdfs(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pooled sorted sample and both empirical CDFs evaluated on it (right-continuous)."""
    pooled = np.sort(np.concatenate([xs, ys]))
    fx = np.searchsorted(xs, pooled, side="right") / xs.size
    fy = np.searchsorted(ys, pooled, side="right") / ys.size
    return pooled, fx, fy


# --------------------------------------------------------------------------- KS

# From this effective size on, the p-value is Kolmogorov's limit with Vrbik's (2018) small-sample
# correction: within 0.16% (relative) of scipy's ``kstwo.sf`` at 10,000 and 0.03% at 50,000,
# down to p = 1e-6. ``kstwo.sf`` itself costs O(n) per call in the tail (0.1 s at n = 50,000,
# 1 s at 500,000), which made a KS over a wide table slower than every other step together.
KS_LIMIT_MIN_EN = 10_000


try:  # the compiled merge, when the optional extension was built at install
    from watchkeeper.stats import _cstats  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - no compiler at install: numpy below
    _cstats = None


def _ks_statistic_sorted(xs: np.ndarray, ys: np.ndarray) -> float:
    """The two-sample KS statistic of two sorted samples, with one binary search per value of
    the smaller sample.

    Between two consecutive values of ``xs`` the CDF of ``xs`` is flat while that of ``ys``
    rises, so ``Fx - Fy`` peaks at a value of ``xs`` and ``Fy - Fx`` just before one (past the
    last, ``Fx`` is 1 and past neither side). Both need only the count of ``ys`` below or at
    each ``x``: one ``searchsorted``; the count strictly below differs from it only where a
    value of ``ys`` equals that ``x``, which one look at the preceding ``ys`` value tells (a
    second search runs for those values only). Counts of ``xs`` itself come from its runs of
    ties in one pass. Gaps are kept as exact integers ``n2·cx - n1·cy`` until the end.
    """
    if _cstats is not None and xs.flags.c_contiguous and ys.flags.c_contiguous:
        # The same integer in one merge of the two samples, compiled (see _cstats.c).
        return int(_cstats.ks_gap(xs, ys)) / (xs.size * ys.size)
    if ys.size < xs.size:
        xs, ys = ys, xs
    n1, n2 = xs.size, ys.size
    below_or_at = np.searchsorted(ys, xs, side="right")
    previous = ys[np.maximum(below_or_at - 1, 0)]
    tied = (below_or_at > 0) & (previous == xs)
    below = below_or_at
    if tied.any():
        below = below_or_at.copy()
        below[tied] = np.searchsorted(ys, xs[tied], side="left")
    x_before, x_through = _run_counts(xs)
    up = x_through * n2 - below_or_at * n1
    down = below * n1 - x_before * n2
    return max(int(up.max()), int(down.max()), 0) / (n1 * n2)


def _run_counts(s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For a sorted array, the number of its values ``< s[i]`` and ``<= s[i]`` at each ``i``."""
    last = np.empty(s.size, dtype=bool)
    last[-1] = True
    np.not_equal(s[1:], s[:-1], out=last[:-1])
    ends = np.flatnonzero(last) + 1
    if ends.size == s.size:  # no ties: the counts are 0..n-1 and 1..n
        through = np.arange(1, s.size + 1)
        return through - 1, through
    group = np.empty(s.size, dtype=np.intp)
    group[0] = 0
    np.cumsum(last[:-1], out=group[1:])
    starts = np.concatenate(([0], ends[:-1]))
    return starts[group], ends[group]


def _ks_asymptotic_p(d: float, en: float) -> float:
    """P(D > d) for effective size ``en = n1·n2/(n1+n2)``: scipy's ``kstwo`` below
    :data:`KS_LIMIT_MIN_EN`, the corrected limiting distribution from there on."""
    if en < KS_LIMIT_MIN_EN:
        from scipy.stats import kstwo

        return float(np.clip(kstwo.sf(d, np.round(en)), 0.0, 1.0))
    root = np.sqrt(en)
    x = root * d
    return kolmogorov_sf(x + 1.0 / (6.0 * root) + (x - 1.0) / (4.0 * en))


def kolmogorov_sf(x: float) -> float:
    """P(K > x) for Kolmogorov's limiting distribution, to double precision.

    Two theta-function series of the same function, each used where it converges in a few
    terms; numpy only, so a first KS in a fresh process does not pay for importing
    ``scipy.stats`` (0.3 s or more).

    Examples
    --------
    >>> round(kolmogorov_sf(1.3581), 4)  # the 5% critical value
    0.05
    >>> kolmogorov_sf(0.0), kolmogorov_sf(10.0)
    (1.0, 0.0)
    """
    if x <= 0.0:
        return 1.0
    k = np.arange(1, 12, dtype=np.float64)
    if x < 1.0:
        cdf = np.sqrt(2.0 * np.pi) / x * np.exp(-((2 * k - 1) ** 2) * np.pi**2 / (8 * x * x)).sum()
        return float(np.clip(1.0 - cdf, 0.0, 1.0))
    terms = np.exp(-2.0 * k * k * x * x) * np.where(k % 2 == 1, 1.0, -1.0)
    return float(np.clip(2.0 * terms.sum(), 0.0, 1.0))


def _ks_sorted(xs: np.ndarray, ys: np.ndarray, info: dict[str, Any], alpha: float,
               mode: str = "auto") -> DriftResult:
    details = _sizes(xs, ys, info)
    if xs.size == 0 or ys.size == 0:
        return skipped("ks", "no finite values on one side", alpha, None, details)
    n1, n2 = xs.size, ys.size
    if mode == "auto":
        mode = "exact" if max(n1, n2) <= KS_EXACT_MAX_N else "asymp"
    if mode == "exact":
        # The exact distribution is scipy's; its ks_2samp computes the statistic on the way,
        # so take both from it rather than sorting and searching twice.
        from scipy.stats import ks_2samp

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # scipy may fall back to asymp
            res = ks_2samp(xs, ys, method="exact")
        d, p = float(res.statistic), float(res.pvalue)
    elif mode == "asymp":
        d = _ks_statistic_sorted(xs, ys)
        p = _ks_asymptotic_p(d, n1 * n2 / (n1 + n2))
    else:
        raise ValueError(f"mode must be 'auto', 'exact' or 'asymp', got {mode!r}")
    details["mode"] = mode
    return DriftResult("ks", statistic=d, p_value=p, drift=p < alpha, alpha=alpha,
                       details=details)


def ks(reference: Any, current: Any, *, alpha: float = 0.05, mode: str = "auto") -> DriftResult:
    """Two-sample Kolmogorov–Smirnov test.

    Null hypothesis: both samples come from the same continuous distribution. The statistic is
    the largest gap between the two empirical CDFs. ``mode="auto"`` uses the exact distribution
    when both samples have at most 10,000 values and Smirnov's asymptotic one otherwise, as
    :func:`scipy.stats.ks_2samp` does.

    Parameters
    ----------
    reference, current
        1-D numeric samples; NaN and ±inf are dropped and counted in ``details``.
    alpha
        Level the p-value is compared with.
    mode
        ``"auto"``, ``"exact"`` or ``"asymp"``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> r = ks(rng.normal(size=500), rng.normal(0.5, size=500))
    >>> r.method, r.drift, r.p_value < 1e-6
    ('ks', True, True)
    """
    xs, ys, info = _prepare(reference, current)
    return _ks_sorted(xs, ys, info, check_alpha(alpha), mode)


# --------------------------------------------------------------------------- Anderson–Darling

_AD_SIG = np.array([0.25, 0.1, 0.05, 0.025, 0.01, 0.005, 0.001])
_AD_B0 = np.array([0.675, 1.281, 1.645, 1.96, 2.326, 2.573, 3.085])
_AD_B1 = np.array([-0.245, 0.25, 0.678, 1.149, 1.822, 2.364, 3.615])
_AD_B2 = np.array([-0.105, -0.305, -0.362, -0.391, -0.396, -0.345, -0.154])


def _ad_sorted(xs: np.ndarray, ys: np.ndarray, info: dict[str, Any],
               alpha: float) -> DriftResult:
    details = _sizes(xs, ys, info)
    if xs.size == 0 or ys.size == 0:
        return skipped("anderson_darling", "no finite values on one side", alpha, None, details)
    z = np.sort(np.concatenate([xs, ys]))
    big_n = z.size
    distinct = np.empty(big_n, dtype=bool)
    distinct[0] = True
    np.not_equal(z[1:], z[:-1], out=distinct[1:])
    zstar = z[distinct]
    if zstar.size < 2 or big_n < 4:
        # Every value is the same on both sides: nothing to compare, and no drift.
        details["constant"] = True
        return DriftResult("anderson_darling", statistic=0.0, p_value=1.0, drift=False,
                           alpha=alpha, details=details)
    # Scholz & Stephens (1987), eq. 7: the midrank version, which is right with ties.
    left = np.searchsorted(z, zstar, side="left")
    lj: np.ndarray | float = (
        1.0 if zstar.size == big_n else np.searchsorted(z, zstar, side="right") - left
    )
    bj = left + np.asarray(lj) / 2.0
    a2kn = 0.0
    for s in (xs, ys):
        right_s = np.searchsorted(s, zstar, side="right")
        mij = right_s - (right_s - np.searchsorted(s, zstar, side="left")) / 2.0
        inner = lj / big_n * (big_n * mij - bj * s.size) ** 2 / (bj * (big_n - bj)
                                                                  - big_n * np.asarray(lj) / 4.0)
        a2kn += float(inner.sum()) / s.size
    a2kn *= (big_n - 1.0) / big_n
    k = 2
    h_sum = 1.0 / xs.size + 1.0 / ys.size
    hs_cs = np.cumsum(1.0 / np.arange(big_n - 1, 1, -1))
    h = float(hs_cs[-1]) + 1.0
    g = float((hs_cs / np.arange(2, big_n)).sum())
    a = (4 * g - 6) * (k - 1) + (10 - 6 * g) * h_sum
    b = (2 * g - 4) * k**2 + 8 * h * k + (2 * g - 14 * h - 4) * h_sum - 8 * h + 4 * g - 6
    c = (6 * h + 2 * g - 2) * k**2 + (4 * h - 4 * g + 6) * k + (2 * h - 6) * h_sum + 4 * h
    d = (2 * h + 6) * k**2 - 4 * h * k
    n = float(big_n)
    sigmasq = (a * n**3 + b * n**2 + c * n + d) / ((n - 1.0) * (n - 2.0) * (n - 3.0))
    stat = (a2kn - (k - 1)) / math.sqrt(sigmasq)
    critical = _AD_B0 + _AD_B1 / math.sqrt(k - 1) + _AD_B2 / (k - 1)
    # Policy: the same interpolation of Scholz & Stephens' table as scipy, with p-values capped
    # to the table's range [0.001, 0.25]; a capped value is flagged, never extrapolated.
    if stat < critical.min():
        p, capped = float(_AD_SIG.max()), "upper"
    elif stat > critical.max():
        p, capped = float(_AD_SIG.min()), "lower"
    else:
        coef = np.polyfit(critical, np.log(_AD_SIG), 2)
        p, capped = math.exp(float(np.polyval(coef, stat))), None
    details["p_value_capped"] = capped
    return DriftResult("anderson_darling", statistic=stat, p_value=p, drift=p < alpha,
                       alpha=alpha, details=details)


def anderson_darling(reference: Any, current: Any, *, alpha: float = 0.05) -> DriftResult:
    """Anderson–Darling k-sample test (k = 2), midrank version for ties.

    Null hypothesis: both samples come from the same distribution. More sensitive in the
    tails than KS. The statistic is the standardised ``A2akN`` of Scholz & Stephens (1987),
    identical to :func:`scipy.stats.anderson_ksamp`; the p-value interpolates their table and
    is therefore capped to [0.001, 0.25] (``details["p_value_capped"]`` says when), which is
    exact enough for decisions at levels inside that range.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> r = anderson_darling(rng.normal(size=400), rng.normal(size=400) * 1.5)
    >>> r.drift, r.p_value
    (True, 0.001)
    """
    xs, ys, info = _prepare(reference, current)
    return _ad_sorted(xs, ys, info, check_alpha(alpha))


# --------------------------------------------------------------------------- Cramér–von Mises


def _cdf_cvm_inf(x: float) -> float:
    """CDF of the limiting one-sample Cramér–von Mises distribution (Csörgő & Faraway 1996)."""
    from scipy.special import gammaln, kv

    total, k = 0.0, 0
    while True:  # the series converges fast: a handful of terms for any x of interest
        y = 4 * k + 1
        q = y * y / (16 * x)
        term = float(math.exp(float(gammaln(k + 0.5) - gammaln(k + 1)))
                     / (math.pi**1.5 * math.sqrt(x)) * math.sqrt(y) * math.exp(-q)
                     * float(kv(0.25, q)))
        total += term
        if abs(term) < 1e-7:
            return total
        k += 1


def _cvm_sorted(xs: np.ndarray, ys: np.ndarray, info: dict[str, Any], alpha: float,
                mode: str = "auto") -> DriftResult:
    details = _sizes(xs, ys, info)
    if xs.size == 0 or ys.size == 0:
        return skipped("cramer_von_mises", "no finite values on one side", alpha, None, details)
    nx, ny = xs.size, ys.size
    z = np.sort(np.concatenate([xs, ys]))

    def midranks(s: np.ndarray) -> np.ndarray:
        lo = np.searchsorted(z, s, side="left")
        hi = np.searchsorted(z, s, side="right")
        return (lo + hi + 1) / 2.0

    u = (nx * float(((midranks(xs) - np.arange(1, nx + 1)) ** 2).sum())
         + ny * float(((midranks(ys) - np.arange(1, ny + 1)) ** 2).sum()))
    k, n = nx * ny, nx + ny
    t = u / (k * n) - (4 * k - 1) / (6 * n)
    if mode == "auto":
        mode = "exact" if max(nx, ny) <= CVM_EXACT_MAX_N else "asymptotic"
    if mode == "exact":
        from scipy.stats import cramervonmises_2samp

        p = float(cramervonmises_2samp(xs, ys, method="exact").pvalue)
    elif mode == "asymptotic":
        et = (1 + 1 / n) / 6
        vt = (n + 1) * (4 * k * n - 3 * (nx**2 + ny**2) - 2 * k) / (45 * n**2 * 4 * k)
        tn = 1 / 6 + (t - et) / math.sqrt(45 * vt)
        p = 1.0 if tn < 0.003 else max(0.0, 1.0 - _cdf_cvm_inf(tn))
    else:
        raise ValueError(f"mode must be 'auto', 'exact' or 'asymptotic', got {mode!r}")
    details["mode"] = mode
    return DriftResult("cramer_von_mises", statistic=t, p_value=p, drift=p < alpha,
                       alpha=alpha, details=details)


def cramer_von_mises(reference: Any, current: Any, *, alpha: float = 0.05,
                     mode: str = "auto") -> DriftResult:
    """Two-sample Cramér–von Mises test (Anderson 1962), midranks for ties.

    Null hypothesis: both samples come from the same distribution. The statistic weighs the
    whole squared gap between the empirical CDFs, not only its maximum. ``mode="auto"`` is
    exact when both samples have at most 20 values, as in
    :func:`scipy.stats.cramervonmises_2samp`.

    Examples
    --------
    >>> rng = np.random.default_rng(2)
    >>> cramer_von_mises(rng.normal(size=300), rng.normal(size=300)).drift
    False
    """
    xs, ys, info = _prepare(reference, current)
    return _cvm_sorted(xs, ys, info, check_alpha(alpha), mode)


# --------------------------------------------------------------------------- CDF distances


def _cdf_distance(xs: np.ndarray, ys: np.ndarray, power: int) -> float:
    """``∫ |F - G|^p`` over the pooled support, from the sorted samples."""
    pooled, fx, fy = _ecdfs(xs, ys)
    deltas = np.diff(pooled)
    gap = np.abs(fx[:-1] - fy[:-1])
    return float(np.dot(gap if power == 1 else gap * gap, deltas))


_BLOCK = 1 << 15  # values per block of the blockwise sums: temporaries that stay in cache


def _mean_abs_difference(a: np.ndarray, b: np.ndarray) -> float:
    """``mean(|a - b|)`` of two equal-length arrays, a block at a time (no full-size temporary)."""
    if a.size <= _BLOCK:
        return float(np.abs(a - b).mean())
    tmp = np.empty(_BLOCK, dtype=np.float64)
    total = 0.0
    for start in range(0, a.size, _BLOCK):  # a few dozen blocks per million values
        t = tmp[: min(_BLOCK, a.size - start)]
        np.subtract(a[start : start + _BLOCK], b[start : start + _BLOCK], out=t)
        np.abs(t, out=t)
        total += float(t.sum())
    return total / a.size


def _std(x: np.ndarray) -> float:
    """Population standard deviation, a block at a time (no full-size temporary)."""
    if x.size <= _BLOCK:
        return float(x.std())
    mean = float(x.mean())
    tmp = np.empty(_BLOCK, dtype=np.float64)
    total = 0.0
    for start in range(0, x.size, _BLOCK):
        t = tmp[: min(_BLOCK, x.size - start)]
        np.subtract(x[start : start + _BLOCK], mean, out=t)
        np.multiply(t, t, out=t)  # not np.dot: BLAS threads spin on a busy machine
        total += float(t.sum())
    return math.sqrt(total / x.size)


def _scale(xs: np.ndarray, ys: np.ndarray) -> float:
    """Reference spread; the pooled spread if the reference is constant, 1 if both are."""
    sd = _std(xs)
    if sd > 0:
        return sd
    sd = float(np.concatenate([xs, ys]).std())
    return sd if sd > 0 else 1.0


def _wasserstein_sorted(xs: np.ndarray, ys: np.ndarray, info: dict[str, Any],
                        threshold: float) -> DriftResult:
    details = _sizes(xs, ys, info)
    if xs.size == 0 or ys.size == 0:
        return skipped("wasserstein", "no finite values on one side", None, threshold, details)
    # Equal sizes: the quantile functions step together, W1 is a mean of sorted gaps.
    dist = _mean_abs_difference(xs, ys) if xs.size == ys.size else _cdf_distance(xs, ys, 1)
    scale = _scale(xs, ys)
    details.update(distance=dist, scale=scale)
    stat = dist / scale
    return DriftResult("wasserstein", statistic=stat, p_value=None, drift=stat > threshold,
                       threshold=threshold, details=details)


def wasserstein(reference: Any, current: Any, *, threshold: float = 0.1) -> DriftResult:
    """First Wasserstein (earth mover's) distance, in units of the reference's spread.

    ``statistic`` is ``W1 / sd(reference)`` (the pooled spread if the reference is constant),
    so 0.1 means the mass moved on average a tenth of a standard deviation — a mean shift of
    0.1σ gives 0.1. ``details["distance"]`` is the raw ``W1`` of
    :func:`scipy.stats.wasserstein_distance`. A distance: no p-value.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> r = wasserstein(rng.normal(size=20_000), rng.normal(0.2, size=20_000))
    >>> round(r.statistic, 1), r.drift
    (0.2, True)
    """
    xs, ys, info = _prepare(reference, current)
    return _wasserstein_sorted(xs, ys, info, check_threshold(threshold))


def _energy_sorted(xs: np.ndarray, ys: np.ndarray, info: dict[str, Any],
                   threshold: float) -> DriftResult:
    details = _sizes(xs, ys, info)
    if xs.size == 0 or ys.size == 0:
        return skipped("energy", "no finite values on one side", None, threshold, details)
    dist = math.sqrt(2.0 * _cdf_distance(xs, ys, 2))
    scale = _scale(xs, ys)
    details.update(distance=dist, scale=scale)
    stat = dist / math.sqrt(scale)
    return DriftResult("energy", statistic=stat, p_value=None, drift=stat > threshold,
                       threshold=threshold, details=details)


def energy(reference: Any, current: Any, *, threshold: float = 0.1) -> DriftResult:
    """Energy distance (Székely & Rizzo), of the samples scaled by the reference's spread.

    ``details["distance"]`` is the raw distance of :func:`scipy.stats.energy_distance`;
    ``statistic`` is the same distance after dividing both samples by ``sd(reference)``, so it
    does not depend on the unit (a 0.1σ mean shift of a normal gives about 0.075).

    Examples
    --------
    >>> rng = np.random.default_rng(4)
    >>> energy(rng.normal(size=5000), rng.normal(0.5, size=5000)).drift
    True
    """
    xs, ys, info = _prepare(reference, current)
    return _energy_sorted(xs, ys, info, check_threshold(threshold))


# --------------------------------------------------------------------------- binned distances


def quantile_edges(xs: np.ndarray, bins: int) -> np.ndarray:
    """Interior bin edges at the reference's quantiles (duplicates removed: ties collapse)."""
    if xs.size == 0:
        return np.empty(0)
    edges = np.quantile(xs, np.linspace(0.0, 1.0, bins + 1)[1:-1])
    return np.unique(edges)


def binned_counts(sorted_values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts per bin ``(-inf, e0], (e0, e1], ..., (e_last, inf)`` of a sorted sample."""
    cuts = np.searchsorted(sorted_values, edges, side="right")
    return np.diff(np.concatenate([[0], cuts, [sorted_values.size]]))


def _check_bins(bins: int) -> int:
    if int(bins) != bins or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    return int(bins)


def _numeric_binned(reference: Any, current: Any, bins: int,
                    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    xs, ys, info = _prepare(reference, current)
    edges = quantile_edges(xs, _check_bins(bins))
    details = _sizes(xs, ys, info)
    details["edges"] = edges
    return binned_counts(xs, edges), binned_counts(ys, edges), details


def binned_distance(method: str, cref: np.ndarray, ccur: np.ndarray) -> float:
    """One of the frequency distances on two count vectors over the same bins."""
    nr, nc = cref.sum(), ccur.sum()
    if method in ("psi", "kl_divergence"):
        # Additive smoothing (half a count per bin) keeps empty bins finite and symmetric.
        p = (cref + 0.5) / (nr + 0.5 * cref.size)
        q = (ccur + 0.5) / (nc + 0.5 * ccur.size)
        if method == "psi":
            return float(((q - p) * np.log(q / p)).sum())
        return float((p * np.log(p / q)).sum())
    p, q = cref / nr, ccur / nc
    if method == "jensen_shannon":
        m = (p + q) / 2.0
        with np.errstate(divide="ignore", invalid="ignore"):
            kl_pm = np.where(p > 0, p * np.log2(p / m), 0.0).sum()
            kl_qm = np.where(q > 0, q * np.log2(q / m), 0.0).sum()
        return float(math.sqrt(max((kl_pm + kl_qm) / 2.0, 0.0)))
    if method == "hellinger":
        return float(math.sqrt(max(0.5 * ((np.sqrt(p) - np.sqrt(q)) ** 2).sum(), 0.0)))
    if method == "linf":
        return float(np.abs(p - q).max())
    raise ValueError(f"unknown binned distance {method!r}")


def _binned(method: str, reference: Any, current: Any, bins: int,
            threshold: float) -> DriftResult:
    threshold = check_threshold(threshold)
    ref = np.asarray(reference)
    if is_categorical(ref) or is_categorical(np.asarray(current)):
        from watchkeeper.stats._categorical import categorical_counts

        _, cref, ccur, details = categorical_counts(reference, current)
    else:
        cref, ccur, details = _numeric_binned(reference, current, bins)
    if cref.sum() == 0 or ccur.sum() == 0:
        return skipped(method, "no values on one side", None, threshold, details)
    stat = binned_distance(method, cref, ccur)
    return DriftResult(method, statistic=stat, p_value=None, drift=stat > threshold,
                       threshold=threshold, details=details)


def psi(reference: Any, current: Any, *, bins: int = 10, threshold: float = 0.1) -> DriftResult:
    """Population Stability Index, ``Σ (q - p) ln(q / p)``.

    Numeric samples are cut into ``bins`` bins at the reference's quantiles (open-ended outer
    bins, so current values outside the reference's range count); categorical samples use
    their categories. Every bin gets half a count before proportions are taken, so an empty
    bin gives a large but finite term. Rule of thumb: < 0.1 stable, 0.1–0.25 moderate,
    > 0.25 major shift.

    Examples
    --------
    >>> rng = np.random.default_rng(5)
    >>> r = psi(rng.normal(size=10_000), rng.normal(1.0, size=10_000))
    >>> r.drift, r.statistic > 0.25
    (True, True)
    >>> psi(np.array(["a", "b"] * 50), np.array(["a"] * 90 + ["c"] * 10)).drift
    True
    """
    return _binned("psi", reference, current, bins, threshold)


def jensen_shannon(reference: Any, current: Any, *, bins: int = 10,
                   threshold: float = 0.1) -> DriftResult:
    """Jensen–Shannon distance (base 2, so in [0, 1]) between binned or categorical frequencies.

    Symmetric and finite without smoothing. Numeric samples use the reference's quantile bins.

    Examples
    --------
    >>> jensen_shannon(np.array(list("aabb")), np.array(list("aabb"))).statistic
    0.0
    """
    return _binned("jensen_shannon", reference, current, bins, threshold)


def hellinger(reference: Any, current: Any, *, bins: int = 10,
              threshold: float = 0.1) -> DriftResult:
    """Hellinger distance (in [0, 1]) between binned or categorical frequencies.

    Examples
    --------
    >>> hellinger(np.array(list("ab")), np.array(list("cd"))).statistic
    1.0
    """
    return _binned("hellinger", reference, current, bins, threshold)


def kl_divergence(reference: Any, current: Any, *, bins: int = 10,
                  threshold: float = 0.1) -> DriftResult:
    """Kullback–Leibler divergence ``KL(reference ‖ current)`` in nats, half-count smoothed.

    Not symmetric: it weighs what the reference had and the current lost.

    Examples
    --------
    >>> rng = np.random.default_rng(6)
    >>> kl_divergence(rng.normal(size=5000), rng.normal(size=5000)).drift
    False
    """
    return _binned("kl_divergence", reference, current, bins, threshold)
