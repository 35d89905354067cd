"""The operating point: expected flags per window, their band, and the prevalence they imply.

A binary model flags an event when its score reaches a threshold. On validation it caught a
share ``tpr`` of the positives and wrongly flagged a share ``fpr`` of the negatives. What the
flag count of a window of ``volume`` events looks like depends on what is random:

* *random mix* (the default): each event is positive with probability ``prevalence``, so it is
  flagged with probability ``r = prevalence·tpr + (1-prevalence)·fpr`` and the count is
  ``Bin(volume, r)``. Real days vary more (the mix drifts with weekdays and seasons): a
  beta-binomial with intra-window correlation ``dispersion`` (learnt from past windows' counts
  by :func:`fit_dispersion`) widens the band by that much.
* *fixed mix*: the window holds exactly ``volume·prevalence`` positives, and the count is
  ``Bin(volume·prevalence, tpr) + Bin(volume·(1-prevalence), fpr)`` (a Poisson-binomial,
  computed exactly by convolution). Narrower; right only when the mix is fixed by design.

When the validation counts behind ``tpr`` and ``fpr`` are known, the rates are estimates and
the band widens by their uncertainty (beta-binomial). :func:`expect_flags` returns the band of
the model in use and the other one beside it.

The inverse question, "which prevalence explains the flags I saw?", is adjusted classify and
count: ``(rate - fpr) / (tpr - fpr)``. Its interval is a Fieller interval (the estimate is a
ratio of two noisy quantities) whose variance includes production sampling and, when known, the
finite validation counts behind ``tpr`` and ``fpr``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from watchkeeper.stats._result import _plain

__all__ = [
    "Dispersion",
    "FlagCheck",
    "FlagExpectation",
    "OperatingPoint",
    "PrevalenceEstimate",
    "check_flags",
    "expect_flags",
    "fit_dispersion",
    "implied_prevalence",
]

MIXES = ("random", "fixed")


def _rate(name: str, value: float) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not (0.0 <= v <= 1.0):  # also rejects NaN
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return v


def _count(name: str, value: float | None) -> int | None:
    if value is None:
        return None
    v = float(value)
    if not math.isfinite(v) or v < 0 or v != int(v):
        raise ValueError(f"{name} must be a non-negative whole number, got {value!r}")
    return int(v)


def _volume(value: float) -> int:
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"volume must be a non-negative number, got {value!r}") from None
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"volume must be a non-negative number, got {value!r}")
    return round(v)


def _coverage(value: float) -> float:
    v = float(value)
    if not (0.0 < v < 1.0):
        raise ValueError(f"coverage must be strictly between 0 and 1, got {value!r}")
    return v


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """A threshold with the true- and false-positive rates measured for it on validation.

    Parameters
    ----------
    threshold
        Score at or above which the model flags an event (``None`` when only the rates are
        known, e.g. from a model card).
    tpr
        Share of validation positives flagged (recall, sensitivity).
    fpr
        Share of validation negatives flagged.
    n_positive, n_negative
        Validation counts behind ``tpr`` and ``fpr``. When given, every band and interval
        includes the uncertainty of the rates themselves; when ``None`` the rates are taken as
        exact.

    Examples
    --------
    >>> op = OperatingPoint(threshold=0.5, tpr=0.9, fpr=0.02)
    >>> op.to_dict()["tpr"]
    0.9
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 2000)
    >>> s = np.clip(0.3 * y + rng.normal(0.35, 0.15, 2000), 0, 1)
    >>> op = OperatingPoint.from_scores(s, y, target_tpr=0.9)
    >>> op.tpr >= 0.9, op.n_positive + op.n_negative
    (True, 2000)
    """

    threshold: float | None
    tpr: float
    fpr: float
    n_positive: int | None = None
    n_negative: int | None = None

    def validated(self) -> OperatingPoint:
        """Return a checked copy, raising ``ValueError`` naming the offending field."""
        tpr = _rate("tpr", self.tpr)
        fpr = _rate("fpr", self.fpr)
        if tpr <= fpr:
            raise ValueError(
                f"tpr ({tpr}) must exceed fpr ({fpr}): otherwise flags carry no information "
                "about the class"
            )
        threshold = None if self.threshold is None else float(self.threshold)
        if threshold is not None and math.isnan(threshold):
            raise ValueError("threshold must be a number, got NaN")
        n_pos = _count("n_positive", self.n_positive)
        n_neg = _count("n_negative", self.n_negative)
        if n_pos == 0:
            raise ValueError("n_positive must be positive when given")
        if n_neg == 0:
            raise ValueError("n_negative must be positive when given")
        return OperatingPoint(threshold, tpr, fpr, n_pos, n_neg)

    @classmethod
    def from_scores(
        cls,
        scores: Any,
        labels: Any,
        *,
        target_tpr: float | None = None,
        threshold: float | None = None,
    ) -> OperatingPoint:
        """Measure an operating point on labelled validation scores.

        Parameters
        ----------
        scores
            Positive-class scores; an event is flagged when ``score >= threshold``.
        labels
            Ground truth, 0/1 or booleans.
        target_tpr
            Pick the highest threshold whose TPR reaches this share.
        threshold
            Use this threshold. Give at most one of ``target_tpr`` and ``threshold``; with
            neither, the threshold is 0.5.
        """
        s = np.asarray(scores, dtype=np.float64)
        y = _binary_labels(labels, "labels")
        if s.ndim != 1 or len(s) != len(y):
            raise ValueError(f"scores: expected a 1-D array of {len(y)} values, got {s.shape}")
        if np.isnan(s).any():
            raise ValueError("scores contain NaN")
        if target_tpr is not None and threshold is not None:
            raise ValueError("give target_tpr or threshold, not both")
        n_pos, n_neg = int(y.sum()), int((~y).sum())
        if n_pos == 0 or n_neg == 0:
            raise ValueError("labels: both classes must be present")
        if target_tpr is not None:
            t = _rate("target_tpr", target_tpr)
            pos = np.sort(s[y])[::-1]
            k = max(1, math.ceil(t * n_pos - 1e-9))
            thr = float(pos[k - 1])
        else:
            thr = 0.5 if threshold is None else float(threshold)
        flagged = s >= thr
        tpr = float(flagged[y].mean())
        fpr = float(flagged[~y].mean())
        return cls(thr, tpr, fpr, n_pos, n_neg)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON, the shape the store keeps with a model version."""
        return {
            "threshold": self.threshold,
            "tpr": self.tpr,
            "fpr": self.fpr,
            "n_positive": self.n_positive,
            "n_negative": self.n_negative,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OperatingPoint:
        """Inverse of :meth:`to_dict`."""
        return cls(
            d.get("threshold"),
            d["tpr"],
            d["fpr"],
            d.get("n_positive"),
            d.get("n_negative"),
        )


def _binary_labels(labels: Any, name: str) -> np.ndarray:
    y = np.asarray(labels)
    if y.dtype == bool:
        return y
    if y.dtype.kind == "O":
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"{name}: expected 0/1 or boolean labels") from None
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise ValueError(f"{name} contain missing values")
    if not np.isin(y, (0, 1)).all():
        raise ValueError(f"{name}: expected 0/1 or boolean labels, got {np.unique(y)[:5]}")
    return y.astype(bool)


# ------------------------------------------------------------------------------------------
# the flag-count distribution


def _component_pmf(n: int, p: float, m: int | None, validation: bool) -> tuple[int, np.ndarray]:
    """pmf of successes among ``n`` trials at rate ``p`` on its likely support: (offset, pmf).

    With ``m`` validation trials behind ``p`` the rate is uncertain and the count is
    beta-binomial with mean ``n·p`` (Beta(p·m, (1-p)·m) on the rate).
    """
    from scipy import stats

    if n == 0:
        return 0, np.ones(1)
    # Rates within 1e-300 of 0 or 1 are 0 or 1 for any count (scipy's binomial overflows on
    # the smallest doubles).
    if p < 1e-300 or p == 1.0:
        return (n if p == 1.0 else 0), np.ones(1)
    use_beta = validation and m is not None
    var = n * p * (1 - p) * ((m + n) / (m + 1) if use_beta and m is not None else 1.0)
    sd = math.sqrt(var)
    lo = max(0, math.floor(n * p - 14 * sd - 10))
    hi = min(n, math.ceil(n * p + 14 * sd + 10))
    k = np.arange(lo, hi + 1)
    if use_beta and m is not None:
        pmf = stats.betabinom.pmf(k, n, p * m, (1 - p) * m)
    else:
        pmf = stats.binom.pmf(k, n, p)
    return lo, np.asarray(pmf, dtype=np.float64)


def _convolve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if min(len(a), len(b)) < 500:
        out = np.convolve(a, b)
    else:
        from scipy import signal

        out = np.clip(signal.fftconvolve(a, b), 0.0, None)
    return np.asarray(out / out.sum(), dtype=np.float64)


def _flag_pmf(
    op: OperatingPoint, prevalence: float, volume: int, validation: bool
) -> tuple[int, np.ndarray]:
    """Distribution of the flag count as (offset, pmf over offset, offset+1, ...).

    A fractional number of positives ``volume·prevalence`` mixes the two neighbouring whole
    numbers so that the mean stays exactly ``volume·(prevalence·tpr + (1-prevalence)·fpr)``.
    """
    n1_real = volume * prevalence
    n1_floor = math.floor(n1_real + 1e-9)
    frac = n1_real - n1_floor
    if frac < 1e-9:
        parts = [(n1_floor, 1.0)]
    else:
        parts = [(n1_floor, 1.0 - frac), (min(n1_floor + 1, volume), frac)]
    pieces = []
    for n1, weight in parts:
        o1, p1 = _component_pmf(n1, op.tpr, op.n_positive, validation)
        o0, p0 = _component_pmf(volume - n1, op.fpr, op.n_negative, validation)
        pieces.append((o1 + o0, weight * _convolve(p1, p0)))
    lo = min(o for o, _ in pieces)
    hi = max(o + len(p) for o, p in pieces)
    pmf = np.zeros(hi - lo)
    for o, p in pieces:
        pmf[o - lo : o - lo + len(p)] += p
    return lo, pmf


def _dispersion(value: Any, coverage: float | None = None) -> float:
    """The intra-window correlation from a number, a :class:`Dispersion` or ``None``; a
    learnt one is widened for a band of ``coverage`` (:meth:`Dispersion.band_dispersion`)."""
    if value is None:
        return 0.0
    if isinstance(value, Dispersion):
        return value.dispersion if coverage is None else value.band_dispersion(coverage)
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"dispersion must be a number in [0, 1), got {value!r}") from None
    if not (0.0 <= v < 1.0):  # also rejects NaN
        raise ValueError(f"dispersion must be in [0, 1), got {value!r}")
    return v


def _mix(value: str) -> str:
    if value not in MIXES:
        raise ValueError(f"mix must be one of {MIXES}, got {value!r}")
    return value


def _flag_rate(op: OperatingPoint, prevalence: float, validation: bool) -> tuple[float, float]:
    """The per-event flag rate under a random mix and the variance of that rate coming from
    the validation counts behind TPR and FPR (zero when they are unknown or not wanted)."""
    r = prevalence * op.tpr + (1 - prevalence) * op.fpr
    var = 0.0
    if validation and op.n_positive is not None and op.n_negative is not None:
        # Beta(p·m, (1-p)·m) on each rate has variance p(1-p)/(m+1)
        var = prevalence**2 * op.tpr * (1 - op.tpr) / (op.n_positive + 1) + (
            (1 - prevalence) ** 2 * op.fpr * (1 - op.fpr) / (op.n_negative + 1)
        )
    return r, var


def _random_pmf(n: int, r: float, rho: float) -> tuple[int, np.ndarray]:
    """pmf of ``BetaBinomial(n, r, rho)`` (``Bin(n, r)`` when ``rho == 0``) on its likely
    support, as (offset, pmf); ``rho`` is the intra-window correlation of the events."""
    from scipy import stats

    if n == 0 or r < 1e-300 or r >= 1.0:
        return (n if r >= 1.0 else 0), np.ones(1)
    sd = math.sqrt(n * r * (1 - r) * (1 + (n - 1) * rho))
    lo = max(0, math.floor(n * r - 14 * sd - 10))
    hi = min(n, math.ceil(n * r + 14 * sd + 10))
    k = np.arange(lo, hi + 1)
    if rho >= 1e-8:  # below it the binomial, where the beta function loses all precision
        s = 1.0 / rho - 1.0
        pmf = stats.betabinom.pmf(k, n, r * s, (1 - r) * s)
    else:
        pmf = stats.binom.pmf(k, n, r)
    pmf = np.asarray(pmf, dtype=np.float64)
    return lo, pmf / pmf.sum()


@dataclass(frozen=True, slots=True)
class Dispersion:
    """Over-dispersion of past windows' flag counts: a beta-binomial fitted by maximum
    likelihood (:func:`fit_dispersion`).

    ``dispersion`` is the intra-window correlation ``rho``: the count's variance is
    ``n·r(1-r)·(1 + (n-1)·rho)``, ``rho = 0`` being the binomial. ``p_value`` tests
    ``rho = 0`` (likelihood ratio against the binomial, a 50:50 mixture of chi-squared 0 and 1
    on the boundary).
    """

    rate: float
    dispersion: float
    n_windows: int
    p_value: float
    method: str = "beta-binomial ML"
    autocorrelation: float = 0.0
    effective_windows: float | None = None

    def band_dispersion(self, coverage: float) -> float:
        """The dispersion a band of this coverage uses: ``dispersion`` widened for having been
        learnt from ``effective_windows`` independent windows only.

        The excess variance is known up to a scaled chi-squared with ``effective_windows - 1``
        degrees of freedom, so the next window's excess deviation is Student-t rather than
        normal: the excess part of the variance is multiplied by ``(t_q / z_q)²`` at the
        band's quantile (about 1.07 for 60 independent days at 99%, far more for 60 days whose
        mix moves slowly).
        """
        if self.dispersion <= 0.0 or self.effective_windows is None:
            return self.dispersion
        from scipy import stats

        q = 0.5 + 0.5 * _coverage(coverage)
        df = max(self.effective_windows - 1.0, 1.0)
        factor = (float(stats.t.ppf(q, df)) / float(stats.norm.ppf(q))) ** 2
        return float(min(self.dispersion * factor, 0.999))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        out: dict[str, Any] = _plain(
            {
                "rate": self.rate,
                "dispersion": self.dispersion,
                "n_windows": self.n_windows,
                "p_value": self.p_value,
                "method": self.method,
                "autocorrelation": self.autocorrelation,
                "effective_windows": self.effective_windows,
            }
        )
        return out


def fit_dispersion(flags: Any, volumes: Any) -> Dispersion:
    """Learn how much more window counts vary than a binomial from past windows.

    Parameters
    ----------
    flags
        Flag counts of past windows (at least three).
    volumes
        Events in each of those windows.

    Returns
    -------
    Dispersion
        The pooled rate and the maximum-likelihood intra-window correlation of a beta-binomial;
        pass it (or its ``dispersion``) to :func:`expect_flags` and :func:`check_flags`.

    Examples
    --------
    Thirty days whose share of positives wanders around 10% (sd 2 points):

    >>> rng = np.random.default_rng(0)
    >>> prev = np.clip(rng.normal(0.1, 0.02, 30), 0, 1)
    >>> flags = rng.binomial(1000, prev * 0.9 + (1 - prev) * 0.02)
    >>> d = fit_dispersion(flags, np.full(30, 1000))
    >>> bool(d.dispersion > 0.0005), d.p_value < 0.05
    (True, True)
    """
    from scipy import optimize, special, stats

    k = np.asarray(flags, dtype=np.float64)
    n = np.asarray(volumes, dtype=np.float64)
    if k.ndim != 1 or n.shape != k.shape:
        raise ValueError(f"volumes: expected {k.shape} values like flags, got {n.shape}")
    if len(k) < 3:
        raise ValueError(f"flags: at least 3 past windows are needed, got {len(k)}")
    if len(k) > 100_000:
        raise ValueError(f"flags: at most 100000 past windows, got {len(k)}")
    if not (np.isfinite(k).all() and np.isfinite(n).all()):
        raise ValueError("flags and volumes must be finite")
    if (k < 0).any() or (k != np.round(k)).any():
        raise ValueError("flags must be non-negative whole numbers")
    if (n <= 0).any() or (n != np.round(n)).any():
        raise ValueError("volumes must be positive whole numbers")
    if (k > n).any():
        raise ValueError("flags cannot exceed volumes")
    r = float(k.sum() / n.sum())
    if r <= 0.0 or r >= 1.0:
        return Dispersion(r, 0.0, len(k), 1.0)
    # the log-likelihoods without their constant log C(n, k), from special functions directly
    # (scipy.stats' per-call overhead dominates at a few dozen windows)
    def binom_part(mu: float) -> float:
        return float((special.xlogy(k, mu) + special.xlog1py(n - k, -mu)).sum())

    binom_ll = binom_part(r)

    def neg_ll(x: np.ndarray) -> float:
        mu, rho = float(special.expit(x[0])), float(special.expit(x[1]))
        if rho < 1e-8:  # the binomial limit; the beta function loses all precision there
            return -binom_part(mu)
        s = 1 / rho - 1
        a, b = mu * s, (1 - mu) * s
        return -float((special.betaln(k + a, n - k + b) - special.betaln(a, b)).sum())

    # start from the method of moments: Var(k/n) ~ r(1-r)(1/n + rho)
    resid = (k / n - r) ** 2 / (r * (1 - r)) - 1 / n
    rho0 = float(np.clip(resid.mean(), 1e-6, 0.5))
    x0 = np.array([special.logit(r), special.logit(rho0)])
    res = optimize.minimize(neg_ll, x0, method="Nelder-Mead", options={"xatol": 1e-6})
    ll = -float(res.fun)
    if not res.success and ll < binom_ll:  # pragma: no cover - the optimiser gave up
        return Dispersion(r, 0.0, len(k), 1.0)
    if ll <= binom_ll or special.expit(res.x[1]) < 1e-8:
        return Dispersion(r, 0.0, len(k), 1.0)
    stat = 2 * (ll - binom_ll)
    p_value = 0.5 * float(stats.chi2.sf(stat, 1))
    mu, rho = float(special.expit(res.x[0])), float(special.expit(res.x[1]))
    phi, factor, n_eff = _autocorrelation_correction(k / n, mu, rho, float(n.mean()))
    return Dispersion(
        mu,
        float(min(rho * factor, 0.999)),
        len(k),
        p_value,
        method="beta-binomial ML, autocorrelation-corrected",
        autocorrelation=phi,
        effective_windows=n_eff,
    )


def _autocorrelation_correction(
    rates: np.ndarray, mu: float, rho: float, volume: float
) -> tuple[float, float, float]:
    """Lag-1 autocorrelation of the windows' excess, the factor that unbiases ``rho`` and the
    number of effectively independent windows.

    When the class mix moves slowly (an AR(1) with coefficient phi from day to day), the spread
    of past days around their own mean understates the spread around the long-run mean: the
    expected sum of squares of the excess is ``(N - D)·v`` instead of ``(N - 1)·v`` with
    ``D = 1 + 2·sum_h (1 - h/N)·phi^h``. phi is read from the lag-1 autocorrelation of the rates,
    de-attenuated for the binomial noise (which is not autocorrelated) and for the small-sample
    bias of the estimate (Kendall: about ``-(1 + 3·phi)/N``).
    """
    size = rates.size
    dev = rates - rates.mean()
    denom = float((dev**2).sum())
    if size < 4 or denom <= 0.0 or rho <= 0.0:
        return 0.0, 1.0, float(size)
    acf1 = float((dev[1:] * dev[:-1]).sum()) / denom
    excess = mu * (1 - mu) * rho * (1 - 1 / volume)
    total = excess + mu * (1 - mu) / volume
    phi = float(np.clip(acf1 * total / excess, 0.0, 0.98))
    if phi > 0.0:
        phi = float(min(phi + (1 + 3 * phi) / size, 0.98))
    h = np.arange(1, size)
    d = 1.0 + 2.0 * float(((1 - h / size) * phi**h).sum())
    factor = (size - 1) / max(size - d, 1.0)
    n_eff = max(size * (1 - phi) / (1 + phi), 2.0)
    return phi, factor, n_eff


EXACT_SUPPORT = 200_000
"""Most points of the flag-count pmf computed exactly; past it (a standard deviation of some
7,000 flags) the band comes from a Cornish-Fisher expansion, whose cost does not grow with the
volume and whose quantiles then differ from the exact ones by about 0.1% of a standard deviation
(a test checks it against the exact convolution)."""


def _cumulants(n: float, p: float, m: float | None) -> tuple[float, float, float, float]:
    """Mean, variance, third and fourth cumulants of ``Bin(n, p)``, or of the beta-binomial
    with ``Beta(p·m, (1-p)·m)`` on the rate when ``m`` is given."""
    if n <= 0 or p <= 0.0 or p >= 1.0:
        return n * p, 0.0, 0.0, 0.0
    mean = n * p
    if m is None:
        var = n * p * (1 - p)
        return mean, var, var * (1 - 2 * p), var * (1 - 6 * p * (1 - p))
    a, b = p * m, (1 - p) * m
    s = a + b
    var = n * p * (1 - p) * (m + n) / (m + 1)
    skew = (b - a) * (2 * n + s) * math.sqrt(1 + s) / ((s + 2) * math.sqrt(n * a * b * (n + s)))
    kurt = (s * s * (1 + s) / (n * a * b * (s + 2) * (s + 3) * (s + n))) * (
        s * (s - 1 + 6 * n)
        + 3 * a * b * (n - 2)
        + 6 * n * n
        - 3 * a * b * n * (6 - n) / s
        - 18 * a * b * n * n / (s * s)
    ) - 3.0  # the bracket is the kurtosis; the cumulant needs the excess
    return mean, var, skew * var**1.5, kurt * var * var


def _cornish_fisher(skew: float, kurt: float) -> tuple[np.ndarray, np.ndarray]:
    """The standardised quantile ``x(z)`` of the Cornish-Fisher expansion on a grid of ``z``,
    cut to the stretch around 0 where it increases: ``(z, x)``, for interpolation both ways."""
    z = np.linspace(-38.0, 38.0, 15_201)
    x = (
        z
        + skew * (z * z - 1) / 6
        + kurt * (z**3 - 3 * z) / 24
        - skew * skew * (2 * z**3 - 5 * z) / 36
    )
    rising = np.diff(x) > 0
    mid = len(z) // 2
    lo = mid - int(np.argmin(rising[:mid][::-1])) if not rising[:mid].all() else 0
    hi = mid + int(np.argmin(rising[mid:])) if not rising[mid:].all() else len(z) - 1
    return z[lo : hi + 1], x[lo : hi + 1]


def _cornish_fisher_band(
    mean: float, sd: float, skew: float, kurt: float, coverage: float, volume: int
) -> tuple[int, int]:
    """Equal-tailed band of a count from its first four cumulants (standardised)."""
    from scipy import stats

    tail = (1.0 - coverage) / 2.0
    zs, xs = _cornish_fisher(skew, kurt)
    q_lo, q_hi = (float(np.interp(stats.norm.ppf(q), zs, xs)) for q in (tail, 1 - tail))
    low = math.floor(mean + sd * q_lo - 0.5) + 1
    high = math.ceil(mean + sd * q_hi - 0.5)
    return max(0, low), min(volume, high)


class _FlagCount:
    """The flag-count distribution: the exact pmf on its likely support, or, past
    :data:`EXACT_SUPPORT` points, a Cornish-Fisher expansion on its first four cumulants."""

    def __init__(
        self,
        op: OperatingPoint,
        prevalence: float,
        volume: int,
        validation: bool,
        mix: str = "fixed",
        rho: float = 0.0,
    ):
        n1 = volume * prevalence
        self.volume = volume
        self.rho = 0.0
        if mix == "random":
            # one beta-binomial: the rate r, widened by the validation counts and rho
            r, var_rate = _flag_rate(op, prevalence, validation)
            base = r * (1 - r)
            self.rho = min(rho + (var_rate / base if base > 0 else 0.0), 0.999)
            c = _cumulants(volume, r, 1 / self.rho - 1 if self.rho > 0 else None)
            cumulants = [c[1], c[2], c[3]]
            support = 28 * math.sqrt(c[1]) + 42
        else:
            c1 = _cumulants(n1, op.tpr, op.n_positive if validation else None)
            c0 = _cumulants(volume - n1, op.fpr, op.n_negative if validation else None)
            cumulants = [c1[i] + c0[i] for i in (1, 2, 3)]
            support = 28 * (math.sqrt(c1[1]) + math.sqrt(c0[1])) + 42
        # the mean from the two classes in both models, so that both say 108 for 108
        self.mean = n1 * op.tpr + (volume - n1) * op.fpr
        var = cumulants[0]
        self.sd = math.sqrt(var)
        self.exact = support <= EXACT_SUPPORT
        # only read past the cut-off, where the variance is large
        self.skew = cumulants[1] / self.sd**3 if var > 1.0 else 0.0
        self.kurt = cumulants[2] / var**2 if var > 1.0 else 0.0
        self.offset, self.pmf = 0, np.ones(1)
        if self.exact:
            if mix == "random":
                self.offset, self.pmf = _random_pmf(volume, r, self.rho)
            else:
                self.offset, self.pmf = _flag_pmf(op, prevalence, volume, validation)
            self.cdf = np.cumsum(self.pmf)

    def _z(self, k: float) -> float:
        """Standard-normal quantile of ``P(X <= k)``: the expansion inverted, with a
        continuity half."""
        if self.sd <= 0:
            return math.inf if k >= self.mean else -math.inf
        w = (k + 0.5 - self.mean) / self.sd
        zs, xs = _cornish_fisher(self.skew, self.kurt)
        if w < xs[0]:
            return -math.inf
        if w > xs[-1]:
            return math.inf
        return float(np.interp(w, xs, zs))

    def at_most(self, k: int) -> float:
        """``P(X <= k)``."""
        if self.exact:
            i = k - self.offset
            return float(self.pmf[: max(0, min(i + 1, len(self.pmf)))].sum())
        from scipy import stats

        return 0.0 if k < 0 else 1.0 if k >= self.volume else float(stats.norm.cdf(self._z(k)))

    def at_least(self, k: int) -> float:
        """``P(X >= k)``."""
        if self.exact:
            i = k - self.offset
            return float(self.pmf[max(0, min(i, len(self.pmf))) :].sum())
        from scipy import stats

        return 1.0 if k <= 0 else 0.0 if k > self.volume else float(stats.norm.sf(self._z(k - 1)))

    def band(self, coverage: float) -> tuple[int, int]:
        """Equal-tailed ``(low, high)``: ``P(X < low) <= tail`` and ``P(X > high) <= tail``."""
        tail = (1.0 - coverage) / 2.0
        if self.exact:
            # low: smallest k with P(X <= k) > tail, so P(X < low) <= tail; high symmetric.
            low = self.offset + int(np.searchsorted(self.cdf, tail, side="right"))
            high = self.offset + int(np.searchsorted(self.cdf, 1.0 - tail - 1e-12, side="left"))
            return low, min(high, self.offset + len(self.pmf) - 1)
        return _cornish_fisher_band(
            self.mean, self.sd, self.skew, self.kurt, coverage, self.volume
        )


@dataclass(frozen=True, slots=True)
class FlagExpectation:
    """Expected flags in a window and the band they should fall in.

    ``low`` and ``high`` are the equal-tailed quantiles of the flag-count distribution of the
    model in use: ``P(low <= flags <= high) >= coverage``. ``mix`` says which class mix it
    assumes (``"random"``: each event positive with probability ``prevalence``; ``"fixed"``:
    exactly ``volume·prevalence`` positives), ``method`` which distribution that gives
    (``"binomial"``, ``"beta-binomial"``, ``"poisson-binomial"``), and ``dispersion`` the
    over-dispersion it includes. ``alternative`` holds the band of the other mix, for
    comparison. Past :data:`EXACT_SUPPORT` likely values (a standard deviation of about 7,000
    flags) the band comes from a Cornish-Fisher expansion instead, and ``method`` ends in
    ``", Cornish-Fisher"``: the cost no longer grows with the volume.
    """

    expected: float
    sigma: float
    low: int
    high: int
    coverage: float
    volume: int
    prevalence: float
    method: str
    mix: str = "random"
    dispersion: float = 0.0
    alternative: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "alternative", MappingProxyType(dict(self.alternative)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        out: dict[str, Any] = _plain(
            {
                "expected": self.expected,
                "sigma": self.sigma,
                "low": self.low,
                "high": self.high,
                "coverage": self.coverage,
                "volume": self.volume,
                "prevalence": self.prevalence,
                "method": self.method,
                "mix": self.mix,
                "dispersion": self.dispersion,
                "alternative": dict(self.alternative),
            }
        )
        return out


def _distribution(
    op: OperatingPoint,
    prevalence: float,
    volume: int,
    validation: bool,
    mix: str,
    rho: float,
) -> tuple[_FlagCount, str]:
    """The flag-count distribution under one mix model, and the name of its method."""
    use = validation and op.n_positive is not None and op.n_negative is not None
    dist = _FlagCount(op, prevalence, volume, use, mix, rho)
    if mix == "random":
        method = "beta-binomial" if dist.rho > 0 else "binomial"
    else:
        method = "beta-binomial" if use else "poisson-binomial"
    return dist, method + ("" if dist.exact else ", Cornish-Fisher")


def _expectation(
    op: OperatingPoint,
    prevalence: float,
    volume: int,
    coverage: float,
    validation: bool,
    mix: str = "random",
    rho: float = 0.0,
) -> tuple[FlagExpectation, _FlagCount, _FlagCount]:
    dist, method = _distribution(op, prevalence, volume, validation, mix, rho)
    low, high = dist.band(coverage)
    other = "fixed" if mix == "random" else "random"
    o_dist, o_method = _distribution(op, prevalence, volume, validation, other, rho)
    o_low, o_high = o_dist.band(coverage)
    result = FlagExpectation(
        expected=float(dist.mean),
        sigma=dist.sd,
        low=low,
        high=high,
        coverage=coverage,
        volume=volume,
        prevalence=prevalence,
        method=method,
        mix=mix,
        dispersion=rho if mix == "random" else 0.0,
        alternative={
            "mix": other,
            "sigma": o_dist.sd,
            "low": o_low,
            "high": o_high,
            "method": o_method,
            "dispersion": rho if other == "random" else 0.0,
        },
    )
    return result, dist, o_dist


def expect_flags(
    op: OperatingPoint,
    prevalence: float,
    volume: float,
    *,
    coverage: float = 0.95,
    validation_uncertainty: bool = True,
    mix: str = "random",
    dispersion: float | Dispersion | None = None,
) -> FlagExpectation:
    """Expected flag count in a window, with its standard deviation and tolerance band.

    Parameters
    ----------
    op
        The operating point.
    prevalence
        Expected share of positives in production.
    volume
        Events per window.
    coverage
        Probability the band should hold when production behaves as validated.
    validation_uncertainty
        When ``op`` carries validation counts, include the uncertainty of TPR and FPR (a
        beta-binomial band); ``False`` takes the rates as exact.
    mix
        ``"random"`` (each event is positive with probability ``prevalence``; the default,
        and what production looks like) or ``"fixed"`` (exactly ``volume·prevalence``
        positives per window). The result carries the other band in ``alternative``.
    dispersion
        Over-dispersion of windows beyond the random mix, as learnt by
        :func:`fit_dispersion` (or its ``dispersion``); used by the random mix.

    Examples
    --------
    docs/design.md's worked example: 90% TPR, 2% FPR, 1,000 documents a day, 10% photocopies.

    >>> e = expect_flags(OperatingPoint(None, tpr=0.9, fpr=0.02), prevalence=0.1, volume=1000)
    >>> e.expected, round(e.sigma, 2), (e.low, e.high), e.method
    (108.0, 9.81, (89, 128), 'binomial')
    >>> fixed = e.alternative  # exactly 100 photocopies a day
    >>> round(fixed["sigma"], 2), (fixed["low"], fixed["high"])
    (5.16, (98, 118))
    """
    op = op.validated()
    p = _rate("prevalence", prevalence)
    n = _volume(volume)
    cov = _coverage(coverage)
    return _expectation(
        op, p, n, cov, validation_uncertainty, _mix(mix), _dispersion(dispersion, cov)
    )[0]


@dataclass(frozen=True, slots=True)
class PrevalenceEstimate:
    """Share of positives implied by an observed flag rate (adjusted classify and count).

    ``prevalence`` is clipped to [0, 1]; ``raw`` is the unclipped ratio, which falls outside
    [0, 1] when no class mix can produce the observed rate. ``feasible`` says whether the
    unclipped interval meets [0, 1], i.e. whether some class mix explains the count.
    """

    prevalence: float
    low: float
    high: float
    raw: float
    coverage: float
    feasible: bool

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        out: dict[str, Any] = _plain(
            {
                "prevalence": self.prevalence,
                "low": self.low,
                "high": self.high,
                "raw": self.raw,
                "coverage": self.coverage,
                "feasible": self.feasible,
            }
        )
        return out


def _fieller(
    flags: np.ndarray,
    volume: np.ndarray,
    tpr: np.ndarray,
    fpr: np.ndarray,
    n_pos: np.ndarray | None,
    n_neg: np.ndarray | None,
    z: float,
    rho: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised adjusted classify-and-count with a Wilson-type Fieller interval.

    The set of prevalences ``p`` not rejected is ``(r - F - p(T - F))^2 <= z^2 V(p)``, with
    ``V(p) = r_p(1 - r_p)/n + p^2 var(T) + (1 - p)^2 var(F)`` and ``r_p = F + p(T - F)``: the
    production variance is taken at the hypothesised rate (as Wilson's interval does), the
    validation variances from the counts. Both sides are quadratic in ``p``. With
    over-dispersion ``rho`` the production variance is that of ``volume / (1 + (volume-1)·rho)``
    independent events.
    """
    r = flags / volume
    n_eff = volume / (1 + (volume - 1) * rho)
    b = tpr - fpr
    a = r - fpr
    raw = a / b
    if n_pos is None or n_neg is None:
        vt = np.zeros_like(r)
        vf = np.zeros_like(r)
    else:
        # half-count smoothing keeps the variance positive when a rate is 0 or 1
        ts = (tpr * n_pos + 0.5) / (n_pos + 1.0)
        fs = (fpr * n_neg + 0.5) / (n_neg + 1.0)
        vt = ts * (1 - ts) / n_pos
        vf = fs * (1 - fs) / n_neg
    z2 = z * z
    qa = b * b * (1 + z2 / n_eff) - z2 * (vt + vf)
    qb = -2 * a * b - z2 * (b * (1 - 2 * fpr) / n_eff - 2 * vf)
    qc = a * a - z2 * (fpr * (1 - fpr) / n_eff + vf)
    disc = qb * qb - 4 * qa * qc
    ok = (qa > 0) & (disc >= 0)
    root = np.sqrt(np.where(ok, disc, 0.0))
    with np.errstate(divide="ignore", invalid="ignore"):
        lo = np.where(ok, (-qb - root) / (2 * qa), -np.inf)
        hi = np.where(ok, (-qb + root) / (2 * qa), np.inf)
    return raw, lo, hi


def implied_prevalence(
    op: OperatingPoint,
    observed: float,
    volume: float,
    *,
    coverage: float = 0.95,
    dispersion: float | Dispersion | None = None,
) -> PrevalenceEstimate:
    """Prevalence that explains ``observed`` flags among ``volume`` events, with an interval.

    The interval accounts for production sampling (widened by ``dispersion``, see
    :func:`fit_dispersion`) and, when ``op`` has validation counts, for the uncertainty of TPR
    and FPR.

    Examples
    --------
    >>> op = OperatingPoint(None, tpr=0.9, fpr=0.02, n_positive=500, n_negative=4500)
    >>> est = implied_prevalence(op, observed=160, volume=1000)
    >>> round(est.prevalence, 3), round(est.low, 3), round(est.high, 3)
    (0.159, 0.134, 0.187)
    """
    from scipy import stats

    op = op.validated()
    n = _volume(volume)
    if n == 0:
        raise ValueError("volume must be positive to imply a prevalence")
    k = _count("observed", observed)
    assert k is not None
    if k > n:
        raise ValueError(f"observed ({k}) cannot exceed volume ({n})")
    cov = _coverage(coverage)
    rho = _dispersion(dispersion)
    z = float(stats.norm.ppf(0.5 + cov / 2))
    npos = None if op.n_positive is None else np.array([float(op.n_positive)])
    nneg = None if op.n_negative is None else np.array([float(op.n_negative)])
    raw, lo, hi = _fieller(
        np.array([float(k)]),
        np.array([float(n)]),
        np.array([op.tpr]),
        np.array([op.fpr]),
        npos,
        nneg,
        z,
        rho,
    )
    return PrevalenceEstimate(
        prevalence=float(np.clip(raw[0], 0, 1)),
        low=float(np.clip(lo[0], 0, 1)),
        high=float(np.clip(hi[0], 0, 1)),
        raw=float(raw[0]),
        coverage=cov,
        feasible=bool(hi[0] >= 0.0 and lo[0] <= 1.0),
    )


@dataclass(frozen=True, slots=True)
class FlagCheck:
    """An observed flag count judged against the operating point.

    ``verdict`` is ``"as_expected"`` when the count is inside what validation promised
    (``p_value >= alpha``); ``"prior_shift"`` when it is not but some class mix in [0, 1]
    explains it (the implied prevalence is then the explanation to check: from counts alone a
    model change that moves the flag rate inside [FPR, TPR] looks the same, which
    :func:`~watchkeeper.estimation.diagnose_shift` tells apart from the scores); and
    ``"model_change"`` when no class mix can produce the count.
    """

    expected: float
    sigma: float
    low: int
    high: int
    observed: int
    p_value: float
    verdict: str
    prevalence: float
    prevalence_low: float
    prevalence_high: float
    expected_prevalence: float
    alpha: float
    coverage: float
    mix: str = "random"
    method: str = "binomial"
    dispersion: float = 0.0
    alternative: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "alternative", MappingProxyType(dict(self.alternative)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON with the keys of ``watchkeeper expect --format json``."""
        out: dict[str, Any] = _plain(
            {
                "expected": self.expected,
                "sigma": self.sigma,
                "low": self.low,
                "high": self.high,
                "observed": self.observed,
                "p_value": self.p_value,
                "verdict": self.verdict,
                "prevalence": self.prevalence,
                "prevalence_low": self.prevalence_low,
                "prevalence_high": self.prevalence_high,
                "expected_prevalence": self.expected_prevalence,
                "alpha": self.alpha,
                "coverage": self.coverage,
                "mix": self.mix,
                "method": self.method,
                "dispersion": self.dispersion,
                "alternative": dict(self.alternative),
            }
        )
        return out


def check_flags(
    op: OperatingPoint,
    prevalence: float,
    volume: float,
    observed: float,
    *,
    alpha: float = 0.05,
    coverage: float = 0.95,
    validation_uncertainty: bool = True,
    mix: str = "random",
    dispersion: float | Dispersion | None = None,
) -> FlagCheck:
    """Judge an observed flag count: expected band, exact p-value, verdict, implied prevalence.

    The p-value is two-sided, ``min(1, 2·min(P(X <= observed), P(X >= observed)))`` under the
    flag-count distribution of :func:`expect_flags` (same ``mix`` and ``dispersion``) at the
    expected prevalence. ``alternative`` carries the p-value under the other mix too.

    Examples
    --------
    >>> c = check_flags(OperatingPoint(None, 0.9, 0.02), 0.1, 1000, observed=160)
    >>> c.verdict, c.p_value < 1e-6, round(c.prevalence, 3)
    ('prior_shift', True, 0.159)
    >>> c = check_flags(OperatingPoint(None, 0.9, 0.02), 0.1, 1000, observed=125)
    >>> c.verdict, round(c.p_value, 3), round(c.alternative["p_value"], 4)
    ('as_expected', 0.097, 0.002)
    """
    op = op.validated()
    p = _rate("prevalence", prevalence)
    n = _volume(volume)
    cov = _coverage(coverage)
    a = float(alpha)
    if not (0.0 < a < 1.0):
        raise ValueError(f"alpha must be strictly between 0 and 1, got {alpha!r}")
    k = _count("observed", observed)
    assert k is not None
    if k > n:
        raise ValueError(f"observed ({k}) cannot exceed volume ({n})")
    # a learnt dispersion is widened at the verdict's level, so p < alpha is the verdict
    mx, rho = _mix(mix), _dispersion(dispersion, 1.0 - a)
    exp, dist, o_dist = _expectation(op, p, n, cov, validation_uncertainty, mx, rho)
    p_value = min(1.0, 2.0 * min(dist.at_most(k), dist.at_least(k)))
    other = dict(exp.alternative)
    other["p_value"] = min(1.0, 2.0 * min(o_dist.at_most(k), o_dist.at_least(k)))
    prev_rho = rho if mx == "random" else 0.0
    prev = implied_prevalence(op, k, n, coverage=cov, dispersion=prev_rho) if n > 0 else None
    if p_value >= a:
        verdict = "as_expected"
    elif prev is not None and prev.feasible:
        verdict = "prior_shift"
    else:
        verdict = "model_change"
    return FlagCheck(
        expected=exp.expected,
        sigma=exp.sigma,
        low=exp.low,
        high=exp.high,
        observed=k,
        p_value=p_value,
        verdict=verdict,
        prevalence=prev.prevalence if prev else float("nan"),
        prevalence_low=prev.low if prev else float("nan"),
        prevalence_high=prev.high if prev else float("nan"),
        expected_prevalence=p,
        alpha=a,
        coverage=cov,
        mix=mx,
        method=exp.method,
        dispersion=exp.dispersion,
        alternative=other,
    )

