"""Multi-class operating point: expected predicted-class counts from a validation confusion
matrix, and the class mix recovered from production predictions (black-box shift estimation).

With ``M[i, j] = P(predicted i | true j)`` measured on validation and production class mix
``pi``, the predicted-class shares are ``q = M pi``. Forward, that gives the expected count of
each predicted class and its band (a sum of binomials per predicted class). Backward, under a
prior shift ``M`` is unchanged, so ``pi = M^-1 q̂`` recovers the class mix from predictions
alone (Lipton, Wang and Smola, 2018), here solved as least squares on the simplex.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from watchkeeper.stats._result import _plain

__all__ = [
    "ClassCountExpectation",
    "ClassMixEstimate",
    "bbse",
    "class_mix_test",
    "expect_class_counts",
]


def _confusion(confusion: Any) -> np.ndarray:
    c = np.asarray(confusion, dtype=np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1] or c.shape[0] < 2:
        raise ValueError(f"confusion: expected a square k×k matrix (k >= 2), got {c.shape}")
    if not np.isfinite(c).all() or (c < 0).any():
        raise ValueError("confusion: counts must be finite and non-negative")
    if (c.sum(axis=0) == 0).any():
        raise ValueError("confusion: every true class (column) needs validation events")
    return c


@dataclass(frozen=True, slots=True)
class ClassCountExpectation:
    """Expected count of each predicted class in a window, its sigma and band.

    ``mix`` is ``"random"`` (each event's class drawn from the priors: the count of predicted
    class ``i`` is binomial, beta-binomial with the confusion matrix's uncertainty and any
    over-dispersion) or ``"fixed"`` (exactly ``volume·priors`` events of each class).
    """

    expected: np.ndarray
    sigma: np.ndarray
    low: np.ndarray
    high: np.ndarray
    coverage: float
    mix: str = "random"
    method: str = "beta-binomial"

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        out: dict[str, Any] = _plain(
            {
                "expected": self.expected,
                "sigma": self.sigma,
                "low": self.low,
                "high": self.high,
                "coverage": self.coverage,
                "mix": self.mix,
                "method": self.method,
            }
        )
        return out


def expect_class_counts(
    confusion: Any,
    priors: Any,
    volume: float,
    *,
    coverage: float = 0.95,
    mix: str = "random",
    dispersion: float | None = None,
) -> ClassCountExpectation:
    """Expected counts of each predicted class among ``volume`` events with class mix ``priors``.

    ``confusion[i, j]`` counts validation events predicted ``i`` whose true class is ``j``,
    giving ``M = confusion / column sums`` and predicted shares ``q = M priors``. Under a
    random mix (the default) each event is predicted ``i`` with probability ``q[i]``: the
    count is ``Bin(volume, q[i])``, made beta-binomial by the uncertainty of ``M`` (finite
    validation columns) and by ``dispersion`` (over-dispersion of windows, see
    :func:`~watchkeeper.estimation.fit_dispersion`). Under a fixed mix it is a sum over true
    classes of ``Bin(volume·priors[j], M[i, j])``, from the exact convolution.

    Examples
    --------
    >>> conf = [[90, 5], [10, 95]]  # binary: TPR 0.95, FPR 0.10 for class 1
    >>> e = expect_class_counts(conf, [0.8, 0.2], 1000)
    >>> e.expected.tolist(), e.low.tolist(), e.high.tolist()
    ([730.0, 270.0], [674, 217], [783, 326])
    >>> f = expect_class_counts(conf, [0.8, 0.2], 1000, mix="fixed")
    >>> f.low.tolist(), f.high.tolist()
    ([712, 253], [747, 288])

    A perfect classifier still has a band: the class mix of a window is random.

    >>> expect_class_counts(np.eye(2) * 1000, [0.5, 0.5], 100).low.tolist()
    [40, 40]
    """
    from watchkeeper.estimation._operating import (
        EXACT_SUPPORT,
        OperatingPoint,
        _cornish_fisher_band,
        _coverage,
        _cumulants,
        _dispersion,
        _flag_pmf,
        _mix,
        _random_pmf,
        _volume,
    )

    c = _confusion(confusion)
    k = c.shape[0]
    pi = np.asarray(priors, dtype=np.float64)
    if pi.shape != (k,) or (pi < 0).any() or abs(pi.sum() - 1) > 1e-6:
        raise ValueError(f"priors: expected {k} non-negative shares summing to 1")
    n = _volume(volume)
    cov = _coverage(coverage)
    mode = _mix(mix)
    rho = _dispersion(dispersion)
    m = c / c.sum(axis=0, keepdims=True)
    counts = n * pi
    expected = m @ counts
    low, high = np.zeros(k, dtype=np.int64), np.zeros(k, dtype=np.int64)
    tail = (1 - cov) / 2
    if mode == "random":
        q = m @ pi
        # variance of q from the finite validation columns: Beta-like p(1-p)/(N+1) per cell
        var_q = (m * (1 - m) / (c.sum(axis=0) + 1)) @ (pi * pi)
        base = q * (1 - q)
        total = np.minimum(rho + np.where(base > 0, var_q / np.maximum(base, 1e-300), 0), 0.999)
        sigma = np.sqrt(n * base * (1 + (n - 1) * total))
        for i in range(k):  # per class, not per row: k is small
            if 28 * sigma[i] + 42 > EXACT_SUPPORT:
                # past the exact cut-off the cost must not grow with the volume
                rho_i = float(total[i])
                cm = _cumulants(n, float(q[i]), 1 / rho_i - 1 if rho_i > 0 else None)
                sd = math.sqrt(cm[1])
                low[i], high[i] = _cornish_fisher_band(
                    cm[0], sd, cm[2] / sd**3, cm[3] / sd**4, cov, n
                )
                continue
            offset, pmf = _random_pmf(n, float(q[i]), float(total[i]))
            cdf = np.cumsum(pmf)
            low[i] = offset + int(np.searchsorted(cdf, tail, side="right"))
            high[i] = offset + min(len(cdf) - 1, int(np.searchsorted(cdf, 1 - tail - 1e-12)))
        method = "beta-binomial" if (total > 0).any() else "binomial"
        return ClassCountExpectation(expected, sigma, low, high, cov, mode, method)
    sigma = np.sqrt((m * (1 - m)) @ counts)
    for i in range(k):  # per class, not per row: k is small
        cumulants = [_cumulants(float(counts[j]), float(m[i, j]), None) for j in range(k)]
        if 28 * sum(np.sqrt(c[1]) for c in cumulants) + 21 * k > EXACT_SUPPORT:
            # past the exact cut-off the cost must not grow with the volume
            sd = float(np.sqrt(sum(c[1] for c in cumulants)))
            skew = sum(c[2] for c in cumulants) / sd**3
            kurt = sum(c[3] for c in cumulants) / sd**4
            low[i], high[i] = _cornish_fisher_band(float(expected[i]), sd, skew, kurt, cov, n)
            continue
        # predicted-i count = sum over true classes: convolve their binomials pairwise
        offset, pmf = 0, np.ones(1)
        for j in range(k):
            rate = float(m[i, j])
            op = OperatingPoint(None, max(rate, 1e-12), 0.0)
            o, p = _flag_pmf(op, 1.0, round(counts[j]), False) if rate > 0 else (0, np.ones(1))
            pmf = np.convolve(pmf, p)
            offset += o
        cdf = np.cumsum(pmf / pmf.sum())
        low[i] = offset + int(np.searchsorted(cdf, tail, side="right"))
        high[i] = offset + min(len(cdf) - 1, int(np.searchsorted(cdf, 1 - tail - 1e-12)))
    return ClassCountExpectation(expected, sigma, low, high, cov, mode, "poisson-binomial")


@dataclass(frozen=True, slots=True)
class ClassMixEstimate:
    """Production class mix recovered from predictions, with percentile intervals."""

    priors: np.ndarray
    low: np.ndarray
    high: np.ndarray
    coverage: float

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        out: dict[str, Any] = _plain(
            {"priors": self.priors, "low": self.low, "high": self.high, "coverage": self.coverage}
        )
        return out


def _simplex_lstsq(m: np.ndarray, q: np.ndarray) -> np.ndarray:
    """``argmin ||M pi - q||`` over the simplex, for a stack of ``(M, q)`` pairs.

    Projected gradient with a step from the largest singular value; the problems are tiny
    (k classes) and all replicates move together.
    """
    k = m.shape[-1]
    pi = np.full(q.shape, 1.0 / k)
    step = 1.0 / np.maximum(np.linalg.norm(m, ord=2, axis=(-2, -1)) ** 2, 1e-12)
    for _ in range(1000):
        grad = np.einsum("...ji,...j->...i", m, np.einsum("...ij,...j->...i", m, pi) - q)
        new = _project_simplex(pi - step[..., None] * grad)
        done = bool(np.abs(new - pi).max() < 1e-12)
        pi = new
        if done:
            break
    return pi


def _project_simplex(v: np.ndarray) -> np.ndarray:
    k = v.shape[-1]
    u = -np.sort(-v, axis=-1)
    css = np.cumsum(u, axis=-1) - 1
    ind = np.arange(1, k + 1)
    cond = u - css / ind > 0
    rho = k - 1 - np.argmax(cond[..., ::-1], axis=-1)
    theta = np.take_along_axis(css, rho[..., None], axis=-1) / (rho[..., None] + 1)
    return np.asarray(np.maximum(v - theta, 0))


def bbse(
    confusion: Any,
    predicted: Any,
    *,
    coverage: float = 0.95,
    n_bootstrap: int = 300,
    random_state: int = 0,
) -> ClassMixEstimate:
    """Class mix of a production window from its predicted classes (black-box shift estimation).

    Parameters
    ----------
    confusion
        Validation confusion matrix, ``confusion[i, j]`` = events predicted ``i``, true ``j``.
    predicted
        Predicted class indices (integers) of the window, or its counts per predicted class
        as a float array of length ``k``.
    coverage
        Interval coverage. The interval is a percentile interval of posterior draws (Jeffreys
        prior, half a count per cell) of the validation columns and of the window's predicted
        shares, pushed through the same estimator: it stays honest for small windows and
        classes the window lacks (coverage is checked by simulation at n = 10).

    Examples
    --------
    >>> conf = np.array([[80, 10, 5], [15, 85, 5], [5, 5, 90]])
    >>> m = conf / conf.sum(0)
    >>> counts = m @ np.array([0.2, 0.3, 0.5]) * 10_000
    >>> bbse(conf, counts).priors.round(2).tolist()
    [0.2, 0.3, 0.5]
    """
    c = _confusion(confusion)
    k = c.shape[0]
    pred = np.asarray(predicted)
    if pred.ndim == 1 and len(pred) == k and pred.dtype.kind == "f":
        counts = pred.astype(np.float64)
    else:
        idx = pred.astype(np.int64)
        if idx.ndim != 1 or (idx < 0).any() or (idx >= k).any():
            raise ValueError(f"predicted: expected class indices in [0, {k}) or {k} counts")
        counts = np.bincount(idx, minlength=k).astype(np.float64)
    if counts.sum() <= 0 or (counts < 0).any():
        raise ValueError("predicted: the window is empty")
    cov = float(coverage)
    if not 0 < cov < 1:
        raise ValueError(f"coverage must be strictly between 0 and 1, got {coverage!r}")
    m = c / c.sum(axis=0, keepdims=True)
    q = counts / counts.sum()
    point = _simplex_lstsq(m[None], q[None])[0]
    rng = np.random.default_rng(random_state)
    nb = int(n_bootstrap)
    if not 50 <= nb <= 100_000:
        raise ValueError(f"n_bootstrap must be between 50 and 100000, got {n_bootstrap!r}")
    # Posterior draws (Jeffreys: half a count per cell) of the validation columns and of the
    # window's predicted shares. Unlike a resampling bootstrap they do not collapse onto a
    # point when a class is absent from a small window, and they carry the uncertainty of M.
    boot_m = np.stack([rng.dirichlet(c[:, j] + 0.5, size=nb) for j in range(k)], axis=-1)
    boot_q = rng.dirichlet(counts + 0.5, size=nb)
    boot = _simplex_lstsq(boot_m, boot_q)
    tail = (1 - cov) / 2
    low, high = np.quantile(boot, [tail, 1 - tail], axis=0)
    return ClassMixEstimate(point, np.minimum(low, point), np.maximum(high, point), cov)


def _xlogy(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``x·log(x / y)``, zero where ``x`` is zero."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = x * np.log(np.maximum(x, 1e-300) / np.maximum(y, 1e-300))
    return np.asarray(np.where(x > 0, out, 0.0))


def _mix_statistics(
    o: np.ndarray, q: np.ndarray, var_q: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-class deviances and a Pearson total for rows of predicted-class counts ``o (r, k)``
    against the expected shares ``q (k,)``, whose uncertainty is ``var_q (k,)``.

    The deviance of class ``i`` is the likelihood-ratio statistic of "the window's share of
    predicted ``i`` is the expected one" in a two-sample binomial model: the window's count
    against the expectation read as a sample of ``N_i = q_i (1 - q_i) / var_q_i`` events (the
    effective size of the validation evidence behind ``q_i``; infinite when ``q`` is known).
    Unlike a standardised difference it follows the skew of a count: a class whose count
    halves is more surprising than one whose count grows by as much, as the binomial
    likelihood says. Returns the deviances ``(r, k)``, the signed deviations ``(r, k)`` and the
    Pearson total ``(r,)``; every statistic is a function of the counts alone, so equal counts
    give exactly equal statistics (ties the p-value breaks at random).
    """
    n = o.sum(axis=-1, keepdims=True)
    dev = o - n * q
    big = var_q <= 0
    eff = np.where(big, 1.0, q * (1 - q) / np.where(big, 1.0, var_q))
    pooled = np.where(big, q, (o + eff * q) / (n + eff))
    g = 2 * (_xlogy(o, n * pooled) + _xlogy(n - o, n * (1 - pooled)))
    g = g + np.where(big, 0.0, 2 * (_xlogy(eff * q, eff * pooled)
                                    + _xlogy(eff * (1 - q), eff * (1 - pooled))))  # fmt: skip
    # a class validation never predicted, predicted now: infinitely surprising
    g = np.where((q <= 0) & (o > 0), np.inf, g)
    pearson_var = n * q + n * n * var_q
    x2 = np.where(
        pearson_var > 0,
        dev * dev / np.maximum(pearson_var, 1e-300),
        np.where(dev != 0, np.inf, 0.0),
    )
    return np.asarray(g), np.asarray(dev), np.asarray(x2.sum(axis=-1))


ALTERNATIVES = ("two-sided", "decrease", "increase")


def class_mix_test(
    confusion: Any,
    predicted: Any,
    *,
    expected_priors: Any = None,
    alpha: float = 0.05,
    alternative: str = "two-sided",
    n_simulations: int = 2000,
    random_state: int = 0,
) -> Any:
    """Has the class mix changed? A test on the predicted-class counts of one window.

    Null hypothesis: the window's true class mix is ``expected_priors`` (default: the class
    mix of the validation set, the column sums of ``confusion``) and the confusion matrix is
    what validation measured, so the predicted-class shares are ``q = M pi0``. Two statistics:
    the largest per-class deviance (a binomial likelihood-ratio statistic of one predicted
    class against its expected share, power against one class knocked out or boosted) and a
    Pearson total over all classes (power against diffuse changes). Both count the
    uncertainty of ``q`` as well as the window's sampling: from the finite validation columns
    and, when ``pi0`` is the validation mix itself, from that mix's sampling. Their smaller
    Monte Carlo p-value is the statistic, and its null distribution comes from a parametric
    simulation of the same null world (validation redrawn, and the window drawn from the
    redrawn expectation), so the p-value is right at any window size, ten events included,
    without an asymptotic approximation. Windows with the same counts give the same
    statistic; such ties are broken at random (seeded), which keeps the level at ``alpha``
    where counts are few instead of below it.

    Parameters
    ----------
    confusion
        Validation confusion matrix, ``confusion[i, j]`` = events predicted ``i``, true ``j``.
    predicted
        Predicted class indices of the window, or its ``k`` counts as a float array.
    expected_priors
        Class mix production should have.
    alpha
        Level: ``drift`` is ``p_value < alpha``.
    alternative
        ``"two-sided"`` (default: any class up or down, or a diffuse change); ``"decrease"``:
        one-sided, only some predicted class falling below its expected share counts (a
        class knocked out, a source of events lost); ``"increase"``: only one rising. A
        one-sided test uses the largest deviance among the classes that moved that way,
        alone. Choose it before looking at the data: it is more powerful for the direction
        it looks at and blind to the other.
    n_simulations
        Null replicates (at least ``20 / alpha``, at most 100,000).
    random_state
        Seed.

    Returns
    -------
    DriftResult
        ``method`` ``"class_mix"``; ``details`` hold the observed and expected counts, the
        class mix recovered by :func:`bbse`, and the class that deviates most.

    Examples
    --------
    Ten classes, 92% accuracy; half of class 3 knocked out of a window of 500:

    >>> rng = np.random.default_rng(0)
    >>> m = np.full((10, 10), 0.08 / 9) + np.eye(10) * (0.92 - 0.08 / 9)
    >>> conf = np.stack([rng.multinomial(500, m[:, j]) for j in range(10)], axis=1)
    >>> pri = np.full(10, 0.1); pri[3] = 0.05; pri /= pri.sum()
    >>> true = rng.choice(10, 500, p=pri)
    >>> pred = np.array([rng.choice(10, p=m[:, t]) for t in true])
    >>> r = class_mix_test(conf, pred)
    >>> r.drift, r.details["most_changed"]
    (True, 3)
    >>> class_mix_test(conf, pred, alternative="decrease").p_value < r.p_value
    True
    >>> class_mix_test(conf, rng.choice(10, 10)).details["note"]
    'n < 30: few events; the p-value is exact but power is low'
    """
    from watchkeeper.stats._result import DriftResult

    c = _confusion(confusion)
    k = c.shape[0]
    pred = np.asarray(predicted)
    if pred.ndim == 1 and len(pred) == k and pred.dtype.kind == "f":
        counts = pred.astype(np.float64)
        if (counts < 0).any() or not np.isfinite(counts).all():
            raise ValueError("predicted: counts must be finite and non-negative")
    else:
        if pred.dtype.kind not in "iub" and not (
            pred.dtype.kind == "f" and np.all(pred == np.round(pred))
        ):
            raise ValueError(f"predicted: expected class indices in [0, {k}) or {k} counts")
        idx = pred.astype(np.int64)
        if idx.ndim != 1 or (idx < 0).any() or (idx >= k).any():
            raise ValueError(f"predicted: expected class indices in [0, {k}) or {k} counts")
        counts = np.bincount(idx, minlength=k).astype(np.float64)
    n = round(float(counts.sum()))
    if n <= 0:
        raise ValueError("predicted: the window is empty")
    a = float(alpha)
    if not 0 < a < 1:
        raise ValueError(f"alpha must be strictly between 0 and 1, got {alpha!r}")
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {list(ALTERNATIVES)}, got {alternative!r}")
    cols = c.sum(axis=0)
    pi0 = cols / cols.sum() if expected_priors is None else np.asarray(expected_priors, float)
    if pi0.shape != (k,) or (pi0 < 0).any() or abs(pi0.sum() - 1) > 1e-6:
        raise ValueError(f"expected_priors: {k} non-negative shares summing to 1 expected")
    r = int(n_simulations)
    if r < 20 / a or r > 100_000:
        raise ValueError(
            f"n_simulations must be between {math.ceil(20 / a)} and 100000, got {n_simulations!r}"
        )
    m = c / cols
    n_ref = float(cols.sum()) if expected_priors is None else None
    q0 = m @ pi0
    # uncertainty of q0: the finite validation columns, and the validation mix's own
    # sampling when it is the expectation
    var_q = (m * (1 - m) / cols) @ (pi0 * pi0)
    if n_ref is not None:
        var_q = var_q + ((m * m) @ pi0 - q0 * q0) / n_ref
    rng = np.random.default_rng(random_state)
    # The null world: the truth is what validation measured; the expectation the window is
    # compared with is a noisy estimate of it. A replicate redraws validation (its class mix
    # too, when that is the expectation) and draws the window from the redrawn expectation,
    # so the replicate's window differs from q0 as the real window differs from the
    # (unknown) truth. The statistics stay functions of the counts against the fixed q0.
    if n_ref is None:
        rcols = np.broadcast_to(cols.astype(np.int64), (r, k))
    else:
        rcols = rng.multinomial(int(n_ref), pi0, size=r)
    rc = np.stack([rng.multinomial(rcols[:, j], m[:, j]) for j in range(k)], axis=-1)
    rpi = pi0[None].repeat(r, 0) if n_ref is None else rcols / n_ref
    q_rep = np.einsum("rij,rj->ri", rc / np.maximum(rcols, 1)[:, None, :], rpi)
    q_rep = q_rep / q_rep.sum(axis=1, keepdims=True)
    ro = rng.multinomial(n, q_rep).astype(np.float64)
    g_obs, dev_obs, x_obs = _mix_statistics(counts[None], q0, var_q)
    g_sim, dev_sim, x_sim = _mix_statistics(ro, q0, var_q)

    def upper_p(sim: np.ndarray, obs: np.ndarray) -> np.ndarray:
        # P(sim >= obs) for each obs, from the sorted replicates
        s = np.sort(sim)
        return np.asarray((1 + r - np.searchsorted(s, obs * (1 - 1e-12), side="left")) / (r + 1))

    def largest(g: np.ndarray, dev: np.ndarray) -> np.ndarray:
        if alternative == "decrease":
            g = np.where(dev < 0, g, 0.0)
        elif alternative == "increase":
            g = np.where(dev > 0, g, 0.0)
        return np.asarray(g.max(axis=-1))

    gm_obs, gm_sim = largest(g_obs, dev_obs), largest(g_sim, dev_sim)
    p_g = float(upper_p(gm_sim, gm_obs)[0])
    p_x = float(upper_p(x_sim, x_obs)[0])
    if alternative == "two-sided":
        stat = min(p_g, p_x)
        sim_stat = np.minimum(upper_p(gm_sim, gm_sim), upper_p(x_sim, x_sim))
    else:
        stat, sim_stat = p_g, upper_p(gm_sim, gm_sim)
    # rank of the observed among the replicates (small is extreme), ties broken at random
    below = int(np.sum(sim_stat < stat * (1 - 1e-9)))
    tied = int(np.sum(np.abs(sim_stat - stat) <= stat * 1e-9))
    p_value = float((1 + below + rng.integers(0, tied + 1)) / (r + 1))
    dev = (counts - n * q0) / np.sqrt(np.maximum(n * q0 * (1 - q0), 1e-12))
    details: dict[str, Any] = {
        "n": n,
        "observed": counts,
        "expected": n * q0,
        "expected_priors": pi0,
        "priors": _simplex_lstsq(m[None], (counts / n)[None])[0],
        "most_changed": int(np.argmax(g_obs[0])),
        "max_deviance_p_value": p_g,
        "pearson_p_value": p_x,
        "alternative": alternative,
        "n_simulations": r,
        "standardised_deviation": dev,
    }
    if n < 30:
        details["note"] = "n < 30: few events; the p-value is exact but power is low"
    return DriftResult("class_mix", float(stat), p_value, p_value < a, alpha=a, details=details)
