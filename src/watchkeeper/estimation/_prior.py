"""Prior shift versus model change, from scores alone.

Under a pure prior (label) shift the class-conditional score distributions stay what they were
on the reference, ``f1`` and ``f0``, and only their mix changes: the production scores follow
``g = pi·f1 + (1 - pi)·f0`` for some ``pi``. Two estimators of ``pi``:

* :func:`em_prior`: Saerens, Latinne and Decaestecker (2002). Re-weight calibrated posteriors
  by the ratio of new to old priors, average them into a new prior, repeat to a fixed point.
* :func:`mixture_prior`: maximum likelihood of the binned production scores under the mixture
  of the binned reference class-conditional distributions.

:func:`diagnose_shift` then asks whether *any* mixture explains the production scores (a
goodness-of-fit test of the best mixture, with a parametric bootstrap that includes the noise
of the finite reference), and if so whether its ``pi`` differs from the expected one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from watchkeeper.estimation._operating import _binary_labels
from watchkeeper.stats._result import _plain

__all__ = [
    "ClassShiftDiagnosis",
    "ShiftDiagnosis",
    "adjust_posteriors",
    "diagnose_shift",
    "diagnose_shift_multiclass",
    "em_prior",
    "mixture_prior",
]


def adjust_posteriors(posteriors: Any, train_prior: Any, new_prior: Any) -> np.ndarray:
    """Bayes-correct posteriors for a change of class prior.

    ``posteriors`` is 1-D (positive class of a binary model, priors are then scalars) or
    ``(n, k)`` with priors of length ``k``.

    Examples
    --------
    >>> adjust_posteriors([0.5], 0.5, 0.2).round(3).tolist()
    [0.2]
    """
    p = np.asarray(posteriors, dtype=np.float64)
    if p.ndim == 1:
        w1 = float(new_prior) / float(train_prior)
        w0 = (1 - float(new_prior)) / (1 - float(train_prior))
        num = w1 * p
        return np.asarray(num / (num + w0 * (1 - p)), dtype=np.float64)
    w = np.asarray(new_prior, dtype=np.float64) / np.asarray(train_prior, dtype=np.float64)
    num = p * w
    return np.asarray(num / num.sum(axis=1, keepdims=True), dtype=np.float64)


def em_prior(
    posteriors: Any,
    train_prior: Any,
    *,
    tol: float = 1e-8,
    max_iter: int = 2_000,
) -> np.ndarray:
    """Class prior of a new sample by EM on calibrated posteriors (Saerens et al., 2002).

    Parameters
    ----------
    posteriors
        Calibrated ``P(y | x)`` under the training prior: 1-D for a binary model (positive
        class) or ``(n, k)``.
    train_prior
        The prior the posteriors were calibrated under (scalar for binary, length ``k``).

    Returns
    -------
    numpy.ndarray
        The estimated prior: shape ``()`` for binary input, ``(k,)`` otherwise.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.random(20000) < 0.2
    >>> x = rng.normal(np.where(y, 1.5, 0.0), 1.0)
    >>> lr = np.exp(1.5 * x - 1.125)  # likelihood ratio f1/f0 of the two normals
    >>> post = lr / (lr + 1)  # posteriors calibrated under a 50/50 prior
    >>> round(float(em_prior(post, 0.5)), 2)
    0.2

    For a binary model the fixed point is found by bisection on the likelihood's derivative
    (the same answer, without EM's slow crawl when scores are weak); ``tol`` and ``max_iter``
    bound the EM iterations of the multi-class case.
    """
    p = np.asarray(posteriors, dtype=np.float64)
    if p.ndim == 1:
        p2 = np.column_stack([1 - p, p])
        t = float(train_prior)
        if not 0 < t < 1:
            raise ValueError(f"train_prior must be strictly between 0 and 1, got {train_prior!r}")
        tp = np.array([1 - t, t])
    else:
        p2 = p
        tp = np.asarray(train_prior, dtype=np.float64)
        if tp.shape != (p.shape[1],) or (tp <= 0).any():
            raise ValueError("train_prior: one positive value per class expected")
        tp = tp / tp.sum()
    if np.isnan(p2).any():
        raise ValueError("posteriors contain NaN")
    if len(p2) == 0:
        raise ValueError("posteriors: empty sample")
    if p.ndim == 1:
        # EM's fixed point is the maximum of the concave likelihood
        # sum log(pi·p/t + (1 - pi)(1 - p)/(1 - t)); EM crawls towards it when the scores carry
        # little information, bisection on the derivative gets there in 50 steps.
        a = (p / t)[None, :]
        b = ((1 - p) / (1 - t))[None, :]
        return np.asarray(_ml_mixture(np.ones_like(a), a, b)[0])
    prior = tp.copy()
    for _ in range(max_iter):
        adj = p2 * (prior / tp)
        adj /= adj.sum(axis=1, keepdims=True)
        new = adj.mean(axis=0)
        if np.abs(new - prior).max() < tol:
            prior = new
            break
        prior = new
    return np.asarray(prior)


# ------------------------------------------------------------------------------------------
# binned mixture of the reference class-conditional distributions


def _bin_edges(ref_scores: np.ndarray, n_min: int, bins: int | None) -> np.ndarray:
    k = int(np.clip(n_min // 40, 4, 25)) if bins is None else int(bins)
    if k < 2:
        raise ValueError(f"bins must be at least 2, got {bins!r}")
    inner = np.unique(np.quantile(ref_scores, np.linspace(0, 1, k + 1)[1:-1]))
    return np.asarray(inner, dtype=np.float64)


def _ml_mixture(o: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """ML mixing weight for many replicates at once: rows of counts ``o`` over bins.

    The log-likelihood ``sum_k o_k log(pi a_k + (1 - pi) b_k)`` is concave in ``pi``; its
    derivative decreases, so bisection on the derivative finds the maximiser in [0, 1].
    """

    def deriv(pi: np.ndarray) -> np.ndarray:
        e = pi[:, None] * a + (1 - pi[:, None]) * b
        return np.asarray((o * (a - b) / e).sum(axis=1))

    r = o.shape[0]
    lo, hi = np.zeros(r), np.ones(r)
    at0, at1 = deriv(lo), deriv(hi)
    for _ in range(40):
        mid = (lo + hi) / 2
        d = deriv(mid)
        lo = np.where(d > 0, mid, lo)
        hi = np.where(d > 0, hi, mid)
    pi = (lo + hi) / 2
    pi = np.where(at0 <= 0, 0.0, pi)
    return np.asarray(np.where(at1 >= 0, 1.0, pi))


def _fit_distance(o: np.ndarray, c1: np.ndarray, c0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-distance mixing weight and an Anderson-Darling-type distance, row-wise.

    On fine quantile bins, compare the cumulative production distribution ``G`` with the
    mixture ``H = F0 + pi (F1 - F0)`` of the reference class cumulative distributions; ``pi``
    minimises ``sum (G - H)^2`` (closed form, clipped to [0, 1]) and the distance is
    ``m · sum h_k (G_k - H_k)^2 / (H_k (1 - H_k))`` with ``h`` the mixture mass per bin. The
    cumulative form gives power against shifts of location and scale that a per-bin test
    spreads thin.
    """
    m = o.sum(axis=-1, keepdims=True)
    f1 = np.cumsum(c1, axis=-1)[..., :-1] / c1.sum(axis=-1, keepdims=True)
    f0 = np.cumsum(c0, axis=-1)[..., :-1] / c0.sum(axis=-1, keepdims=True)
    g = np.cumsum(o, axis=-1)[..., :-1] / m
    d = f1 - f0
    pi = np.clip((d * (g - f0)).sum(axis=-1) / np.maximum((d * d).sum(axis=-1), 1e-12), 0, 1)
    h_cum = f0 + pi[..., None] * d
    edges = np.concatenate([np.zeros_like(m), h_cum, np.ones_like(m)], axis=-1)
    mass = np.maximum(np.diff(edges, axis=-1)[..., :-1], 1e-6)
    weight = 1 / np.clip(h_cum * (1 - h_cum), 1e-3, None)
    dist = m[..., 0] * (mass * weight * (g - h_cum) ** 2).sum(axis=-1)
    return np.asarray(pi), np.asarray(dist)


class MixtureFit:
    """Does some mix of the reference class-conditional score distributions explain a window?

    The goodness-of-fit half of :func:`diagnose_shift`, kept apart so that the performance
    estimator can ask it too (a prior correction is only right when the answer is yes). Fine
    quantile bins of the reference scores; the distance of :func:`_fit_distance` between the
    window's cumulative distribution and the closest mixture; its null distribution by a
    parametric bootstrap at that mixture that redraws the reference class histograms too.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.random(5000) < 0.3
    >>> fit = MixtureFit(rng.normal(np.where(y, 2.0, 0.0), 1.0), y)
    >>> mixed = rng.normal(np.where(rng.random(2000) < 0.6, 2.0, 0.0), 1.0)
    >>> bool(fit.test(mixed, rng=rng)[2] > 0.01)  # a new mix: explained
    True
    >>> bool(fit.test(rng.normal(1.0, 0.6, 2000), rng=rng)[2] < 0.01)  # no mix is this narrow
    True
    """

    def __init__(
        self, reference_scores: np.ndarray, labels: np.ndarray, random_state: int = 0
    ) -> None:
        y = np.asarray(labels, dtype=bool)
        self.random_state = random_state
        # Redraws of the reference class histograms do not depend on the window: each block
        # is drawn once and reused by every window tested against this reference.
        self._reference_draws: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        rs = np.asarray(reference_scores, dtype=np.float64)
        grid = np.linspace(0, 1, int(np.clip(len(rs) // 20, 10, 100)))[1:-1]
        self.edges = np.unique(np.quantile(rs, grid))
        self.n_bins = len(self.edges) + 1
        self.c1, self.c0 = _class_hist(rs, y, self.edges)
        self.n1, self.n0 = int(y.sum()), int((~y).sum())

    def test(
        self,
        current_scores: np.ndarray,
        n_bootstrap: int = 1000,
        rng: np.random.Generator | None = None,
        block: int = 1000,
        stop_after: int | None = None,
    ) -> tuple[float, float, float]:
        """The distance, the closest mix's share of positives, and the p-value.

        Replicates are drawn in blocks of ``block``; with ``stop_after`` the draws stop once
        that many replicates reached the observed distance (a sequential Monte Carlo p-value,
        Besag & Clifford 1991: the p-value is then that count over the draws so far, exact
        enough where it is far above any level of interest, and cheap there).
        """
        rng = np.random.default_rng(0) if rng is None else rng
        cs = np.asarray(current_scores, dtype=np.float64)
        m = len(cs)
        o = np.bincount(np.searchsorted(self.edges, cs, side="right"), minlength=self.n_bins)
        pis, dists = _fit_distance(
            o.astype(np.float64)[None, :], self.c1[None, :], self.c0[None, :]
        )
        pi, w_obs = float(pis[0]), float(dists[0])
        a, b = self.c1 / self.n1, self.c0 / self.n0
        hits, drawn = 0, 0
        while drawn < n_bootstrap:
            r = min(block, n_bootstrap - drawn)
            r1, r0 = self._reference_block(drawn, r)
            ro = rng.multinomial(m, pi * a + (1 - pi) * b, size=r).astype(np.float64)
            hits += int(np.sum(_fit_distance(ro, r1, r0)[1] >= w_obs - 1e-12))
            drawn += r
            if stop_after is not None and hits >= stop_after and drawn < n_bootstrap:
                return w_obs, pi, hits / drawn
        return w_obs, pi, (1 + hits) / (drawn + 1)

    def _reference_block(self, start: int, size: int) -> tuple[np.ndarray, np.ndarray]:
        key = (start, size)
        if key not in self._reference_draws:
            rng = np.random.default_rng([self.random_state, start, size])
            r1 = rng.multinomial(self.n1, self.c1 / self.n1, size=size).astype(np.float64)
            r0 = rng.multinomial(self.n0, self.c0 / self.n0, size=size).astype(np.float64)
            self._reference_draws[key] = (r1, r0)
        return self._reference_draws[key]


def _class_hist(
    ref_scores: np.ndarray, y: np.ndarray, edges: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    idx = np.searchsorted(edges, ref_scores, side="right")
    k = len(edges) + 1
    c1 = np.bincount(idx[y], minlength=k).astype(np.float64)
    c0 = np.bincount(idx[~y], minlength=k).astype(np.float64)
    return c1, c0


def _smooth(c: np.ndarray) -> np.ndarray:
    # Half a count per bin keeps every bin possible, so one production event in a bin the
    # reference class never reached does not make the likelihood zero.
    s = c + 0.5
    return np.asarray(s / s.sum(axis=-1, keepdims=True))


def _check_scores(name: str, s: Any) -> np.ndarray:
    a = np.asarray(s, dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{name} contain NaN or infinite values")
    if len(a) == 0:
        raise ValueError(f"{name}: empty")
    return a


def mixture_prior(
    reference_scores: Any, reference_labels: Any, current_scores: Any, *, bins: int | None = None
) -> float:
    """Share of positives that best mixes the reference class score distributions into the
    current one (maximum likelihood over quantile bins of the reference scores).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> y = rng.random(5000) < 0.5
    >>> ref = rng.normal(np.where(y, 2.0, 0.0), 1.0)
    >>> cur = rng.normal(np.where(rng.random(5000) < 0.1, 2.0, 0.0), 1.0)
    >>> round(mixture_prior(ref, y, cur), 1)
    0.1
    """
    rs = _check_scores("reference_scores", reference_scores)
    y = _binary_labels(reference_labels, "reference_labels")
    cs = _check_scores("current_scores", current_scores)
    if len(y) != len(rs):
        raise ValueError("reference_labels: length differs from reference_scores")
    edges = _bin_edges(rs, min(int(y.sum()), int((~y).sum()), len(cs)), bins)
    c1, c0 = _class_hist(rs, y, edges)
    o = np.bincount(np.searchsorted(edges, cs, side="right"), minlength=len(edges) + 1)
    return float(_ml_mixture(o[None, :].astype(np.float64), _smooth(c1), _smooth(c0))[0])


@dataclass(frozen=True, slots=True)
class ShiftDiagnosis:
    """Whether production scores look like validation, like a new class mix, or like neither.

    ``verdict`` is ``"as_expected"``, ``"prior_shift"`` or ``"model_change"``. ``p_value`` is
    the Bonferroni combination ``min(1, 2·min(fit, prior))`` of the two tests' p-values (both
    are in ``details``), so that ``p_value < alpha`` is exactly "something changed", as for
    every drift result; the verdict then says which. ``prevalence`` and its interval are the
    mixture estimate.
    """

    verdict: str
    prevalence: float
    prevalence_low: float
    prevalence_high: float
    p_value: float
    alpha: float
    expected_prevalence: float
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        out: dict[str, Any] = _plain(
            {
                "verdict": self.verdict,
                "prevalence": self.prevalence,
                "prevalence_low": self.prevalence_low,
                "prevalence_high": self.prevalence_high,
                "p_value": self.p_value,
                "alpha": self.alpha,
                "expected_prevalence": self.expected_prevalence,
                "details": dict(self.details),
            }
        )
        return out


def diagnose_shift(
    reference_scores: Any,
    reference_labels: Any,
    current_scores: Any,
    *,
    alpha: float = 0.05,
    expected_prevalence: float | None = None,
    coverage: float = 0.95,
    bins: int | None = None,
    n_bootstrap: int = 400,
    calibration: str = "auto",
    random_state: int = 0,
) -> ShiftDiagnosis:
    """Tell a prior shift from a model change using production scores alone.

    Two tests, each at level ``alpha / 2`` so that together they raise a false alarm at most
    ``alpha`` of the time when nothing changed (``p_value`` is their Bonferroni combination,
    so ``p_value < alpha`` is exactly a verdict other than ``"as_expected"``):

    1. *Fit*: does some mix of the reference class-conditional score distributions explain the
       production scores? An Anderson-Darling-type distance between the cumulative production
       distribution and the closest mixture, on fine quantile bins of the reference; its null
       distribution by parametric bootstrap that redraws the reference class histograms too
       (their noise matters when production windows are large). Rejected:
       ``"model_change"``.
    2. *Prevalence*: is the best mix's share of positives the expected one? Bootstrap under the
       expected prevalence. Rejected: ``"prior_shift"``. Otherwise ``"as_expected"``.

    Parameters
    ----------
    reference_scores, reference_labels
        Labelled validation scores (binary: positive-class score, 0/1 labels).
    current_scores
        Production scores of one window.
    alpha
        Overall false-alarm level.
    expected_prevalence
        Share of positives production should have; default the reference share.
    coverage
        Coverage of the prevalence interval (bootstrap percentiles).
    bins
        Quantile bins of the reference scores; default from the sample sizes (4 to 25).
    n_bootstrap
        Bootstrap replicates (raised to ``10 / alpha`` when fewer, so that a p-value can
        reach ``alpha / 2``).
    calibration
        Calibration used for the EM estimate reported in ``details`` (see
        :class:`~watchkeeper.estimation.Calibrator`).
    random_state
        Seed.

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> y = rng.random(4000) < 0.1
    >>> ref = rng.normal(np.where(y, 2.5, 0.0), 1.0)
    >>> cur = rng.normal(np.where(rng.random(1000) < 0.16, 2.5, 0.0), 1.0)
    >>> d = diagnose_shift(ref, y, cur)
    >>> d.verdict, bool(d.prevalence_low < 0.16 < d.prevalence_high)
    ('prior_shift', True)
    >>> broken = rng.normal(np.where(rng.random(1000) < 0.1, 2.5, 0.8), 1.0)  # negatives drift up
    >>> diagnose_shift(ref, y, broken).verdict
    'model_change'
    """
    from watchkeeper.estimation._calibration import Calibrator

    rs = _check_scores("reference_scores", reference_scores)
    y = _binary_labels(reference_labels, "reference_labels")
    cs = _check_scores("current_scores", current_scores)
    if len(y) != len(rs):
        raise ValueError("reference_labels: length differs from reference_scores")
    if not 0 < float(alpha) < 1:
        raise ValueError(f"alpha must be strictly between 0 and 1, got {alpha!r}")
    if not 0 < float(coverage) < 1:
        raise ValueError(f"coverage must be strictly between 0 and 1, got {coverage!r}")
    if int(n_bootstrap) < 50:
        raise ValueError(f"n_bootstrap must be at least 50, got {n_bootstrap!r}")
    n1, n0, m = int(y.sum()), int((~y).sum()), len(cs)
    if n1 == 0 or n0 == 0:
        raise ValueError("reference_labels: both classes must be present")
    ref_prev = n1 / (n1 + n0)
    pi0 = ref_prev if expected_prevalence is None else float(expected_prevalence)
    if not 0 <= pi0 <= 1:
        raise ValueError(f"expected_prevalence must be in [0, 1], got {expected_prevalence!r}")

    rng = np.random.default_rng(random_state)
    # enough replicates that a p-value can fall below alpha/2 at all
    nb = max(int(n_bootstrap), int(np.ceil(10 / float(alpha))))

    # prevalence: maximum likelihood on coarse bins, interval by parametric bootstrap
    edges = _bin_edges(rs, min(n1, n0, m), bins)
    k = len(edges) + 1
    c1, c0 = _class_hist(rs, y, edges)
    o = np.bincount(np.searchsorted(edges, cs, side="right"), minlength=k).astype(np.float64)
    pi_hat = float(_ml_mixture(o[None, :], _smooth(c1), _smooth(c0))[0])

    def ml_replicates(pi: float) -> np.ndarray:
        a_true, b_true = c1 / n1, c0 / n0  # the plug-in truth the bootstrap draws from
        r1 = rng.multinomial(n1, a_true, size=nb).astype(np.float64)
        r0 = rng.multinomial(n0, b_true, size=nb).astype(np.float64)
        ro = rng.multinomial(m, pi * a_true + (1 - pi) * b_true, size=nb).astype(np.float64)
        return _ml_mixture(ro, _smooth(r1), _smooth(r0))

    boot_pi = ml_replicates(pi_hat)
    null_pi = ml_replicates(pi0)
    dist = abs(pi_hat - pi0)
    prior_p = float((1 + np.sum(np.abs(null_pi - pi0) >= dist - 1e-12)) / (nb + 1))
    tail = (1 - float(coverage)) / 2
    # basic (reflected) bootstrap interval: corrects for the pull of the [0, 1] boundary
    q_lo, q_hi = np.quantile(boot_pi, [tail, 1 - tail])
    lo = float(np.clip(min(2 * pi_hat - q_hi, pi_hat), 0, 1))
    hi = float(np.clip(max(2 * pi_hat - q_lo, pi_hat), 0, 1))

    fit = MixtureFit(rs, y, random_state=random_state)
    w_obs, pi_md, fit_p = fit.test(cs, n_bootstrap=nb, rng=rng)
    kf = fit.n_bins

    # One p-value for the two tests (Bonferroni): p_value < alpha is the verdict, as for
    # every DriftResult, and it happens exactly when one of them is below alpha / 2.
    p_value = min(1.0, 2 * min(fit_p, prior_p))
    if p_value >= float(alpha):
        verdict = "as_expected"
    else:
        verdict = "model_change" if fit_p < float(alpha) / 2 else "prior_shift"

    cal = Calibrator(calibration, random_state=random_state).fit(rs, y)
    em = float(em_prior(cal.predict(cs), float(cal.predict(rs).mean())))
    details = {
        "fit_statistic": w_obs,
        "fit_prevalence": pi_md,
        "fit_p_value": fit_p,
        "prior_p_value": prior_p,
        "reference_prevalence": ref_prev,
        "em_prevalence": em,
        "calibration": cal.method_,
        "bins": k,
        "fit_bins": kf,
        "n_reference": n1 + n0,
        "n_current": m,
        "n_bootstrap": nb,
    }
    return ShiftDiagnosis(verdict, pi_hat, lo, hi, p_value, float(alpha), pi0, details)


# ------------------------------------------------------------------------------------------
# multi-class: softmax outputs


@dataclass(frozen=True, slots=True)
class ClassShiftDiagnosis:
    """:class:`ShiftDiagnosis` for a multi-class model: the class mix is a vector."""

    verdict: str
    priors: np.ndarray
    priors_low: np.ndarray
    priors_high: np.ndarray
    p_value: float
    alpha: float
    expected_priors: np.ndarray
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", MappingProxyType(dict(self.details)))

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON."""
        out: dict[str, Any] = _plain(
            {
                "verdict": self.verdict,
                "priors": self.priors,
                "priors_low": self.priors_low,
                "priors_high": self.priors_high,
                "p_value": self.p_value,
                "alpha": self.alpha,
                "expected_priors": self.expected_priors,
                "details": dict(self.details),
            }
        )
        return out


def _cells(probs: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Cell of each event: its predicted class and the bin of its confidence within it."""
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    nb = edges.shape[1] + 1
    binned = np.zeros(len(pred), dtype=np.int64)
    for c in range(edges.shape[0]):  # per class, not per row
        sel = pred == c
        binned[sel] = np.searchsorted(edges[c], conf[sel], side="right")
    return np.asarray(pred * nb + binned)


def _mixture_em(o: np.ndarray, h: np.ndarray, iters: int = 300) -> np.ndarray:
    """ML class mix for rows of cell counts ``o (r, c)`` under class histograms
    ``h (r, c, k)`` (columns sum to one), by EM, all rows at once."""
    k = h.shape[-1]
    pi = np.full((o.shape[0], k), 1.0 / k)
    m = o.sum(axis=1, keepdims=True)
    for _ in range(iters):
        mix = np.einsum("rck,rk->rc", h, pi)
        pi = pi * np.einsum("rck,rc->rk", h, o / np.maximum(mix, 1e-300)) / m
    return pi


def diagnose_shift_multiclass(
    reference_probs: Any,
    reference_labels: Any,
    current_probs: Any,
    *,
    alpha: float = 0.05,
    expected_priors: Any = None,
    coverage: float = 0.95,
    confidence_bins: int = 3,
    n_bootstrap: int = 300,
    random_state: int = 0,
) -> ClassShiftDiagnosis:
    """Prior shift or model change for a multi-class model with softmax outputs.

    Each event falls in a cell: its predicted class and a quantile bin of its confidence
    within that class (``confidence_bins`` per class). Under a pure prior shift the production
    cell histogram is a mix of the reference per-class cell histograms; the mix is fitted by
    maximum likelihood (EM), its fit judged by the G statistic, and both tests (fit at
    ``alpha / 2``, then the class mix against the expected one at ``alpha / 2``, by the total
    variation distance and the largest standardised change of one class, whichever is more
    surprising) take their null distributions from a parametric bootstrap that redraws the
    reference histograms too. ``p_value`` is ``min(1, 2·min(fit, prior))``, so
    ``p_value < alpha`` is the verdict "changed".

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> def probs(labels):
    ...     z = rng.normal(0, 1, (len(labels), 3)); z[np.arange(len(labels)), labels] += 2.0
    ...     return np.exp(z) / np.exp(z).sum(1, keepdims=True)
    >>> y = rng.choice(3, 6000, p=[0.6, 0.3, 0.1])
    >>> d = diagnose_shift_multiclass(probs(y), y, probs(rng.choice(3, 3000, p=[0.3, 0.3, 0.4])))
    >>> d.verdict, d.priors.round(1).tolist()
    ('prior_shift', [0.3, 0.3, 0.4])
    """
    rp = np.asarray(reference_probs, dtype=np.float64)
    cp = np.asarray(current_probs, dtype=np.float64)
    if rp.ndim != 2 or rp.shape[1] < 2:
        raise ValueError(f"reference_probs: expected shape (n, k), got {rp.shape}")
    k = rp.shape[1]
    if cp.ndim != 2 or cp.shape[1] != k:
        raise ValueError(f"current_probs: expected shape (m, {k}), got {cp.shape}")
    for name, a in (("reference_probs", rp), ("current_probs", cp)):
        if not np.isfinite(a).all() or len(a) == 0:
            raise ValueError(f"{name}: empty or contains NaN")
    y = np.asarray(reference_labels)
    if y.shape != (len(rp),):
        raise ValueError(f"reference_labels: expected {len(rp)} class indices")
    y = y.astype(np.int64)
    if (y < 0).any() or (y >= k).any():
        raise ValueError(f"reference_labels: class indices must be in [0, {k})")
    counts = np.bincount(y, minlength=k)
    if (counts == 0).any():
        raise ValueError("reference_labels: every class needs reference events")
    if not 0 < float(alpha) < 1:
        raise ValueError(f"alpha must be strictly between 0 and 1, got {alpha!r}")
    if not 0 < float(coverage) < 1:
        raise ValueError(f"coverage must be strictly between 0 and 1, got {coverage!r}")
    ref_prior = counts / counts.sum()
    pi0 = ref_prior if expected_priors is None else np.asarray(expected_priors, dtype=float)
    if pi0.shape != (k,) or (pi0 < 0).any() or abs(pi0.sum() - 1) > 1e-6:
        raise ValueError(f"expected_priors: {k} non-negative shares summing to 1 expected")
    nbins = int(confidence_bins)
    if nbins < 1:
        raise ValueError(f"confidence_bins must be at least 1, got {confidence_bins!r}")

    pred, conf = rp.argmax(axis=1), rp.max(axis=1)
    qs = np.linspace(0, 1, nbins + 1)[1:-1]
    edges = np.array(
        [np.quantile(conf[pred == c], qs) if (pred == c).any() else np.full(len(qs), 0.5)
         for c in range(k)]
    ).reshape(k, nbins - 1)  # fmt: skip
    cells = k * nbins
    rc = _cells(rp, edges)
    hist = np.zeros((cells, k))
    np.add.at(hist, (rc, y), 1.0)
    o = np.bincount(_cells(cp, edges), minlength=cells).astype(np.float64)
    m = int(o.sum())

    def smooth(h: np.ndarray) -> np.ndarray:
        s = h + 0.5 / h.shape[-2]
        return np.asarray(s / s.sum(axis=-2, keepdims=True))

    def g_stat(o: np.ndarray, h: np.ndarray, pi: np.ndarray) -> np.ndarray:
        e = np.einsum("rck,rk->rc", h, pi) * o.sum(axis=1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(o > 0, o * np.log(o / e), 0.0)
        return np.asarray(2 * t.sum(axis=1))

    h_obs = smooth(hist)[None]
    pi_hat = _mixture_em(o[None], h_obs)
    g_obs = float(g_stat(o[None], h_obs, pi_hat)[0])
    pi_hat = pi_hat[0]

    rng = np.random.default_rng(random_state)
    nb = max(int(n_bootstrap), int(np.ceil(10 / float(alpha))))
    truth = hist / counts  # per-class cell distributions the bootstrap draws from

    def replicate(pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rh = np.stack([rng.multinomial(counts[j], truth[:, j], size=nb) for j in range(k)], -1)
        rh = smooth(rh.astype(np.float64))
        ro = rng.multinomial(m, truth @ pi, size=nb).astype(np.float64)
        rpi = _mixture_em(ro, rh)
        return rpi, g_stat(ro, rh, rpi)

    boot_pi, boot_g = replicate(pi_hat)
    fit_p = float((1 + np.sum(boot_g >= g_obs - 1e-9)) / (nb + 1))
    null_pi, _ = replicate(pi0)
    # Two statistics of the class mix against the expected one: the total variation distance
    # (diffuse changes) and the largest standardised change of one class (one class knocked
    # out or boosted); the smaller of their p-values, calibrated on the same null replicates.
    sd = np.maximum(null_pi.std(axis=0), 1e-12)
    tv_null = 0.5 * np.abs(null_pi - pi0).sum(axis=1)
    z_null = (np.abs(null_pi - pi0) / sd).max(axis=1)
    tv = 0.5 * np.abs(pi_hat - pi0).sum()
    z_obs = float((np.abs(pi_hat - pi0) / sd).max())

    def upper(sim: np.ndarray, obs: np.ndarray) -> np.ndarray:
        srt = np.sort(sim)
        return np.asarray((1 + nb - np.searchsorted(srt, obs - 1e-12, side="left")) / (nb + 1))

    p_tv, p_z = float(upper(tv_null, np.array([tv]))[0]), float(upper(z_null, np.array([z_obs]))[0])
    null_min = np.minimum(upper(tv_null, tv_null), upper(z_null, z_null))
    prior_p = float((1 + np.sum(null_min <= min(p_tv, p_z) + 1e-12)) / (nb + 1))
    tail = (1 - float(coverage)) / 2
    lo, hi = np.quantile(boot_pi, [tail, 1 - tail], axis=0)
    # One p-value for the two tests (Bonferroni): p_value < alpha is the verdict, as for
    # every DriftResult, and it happens exactly when one of them is below alpha / 2.
    p_value = min(1.0, 2 * min(fit_p, prior_p))
    if p_value >= float(alpha):
        verdict = "as_expected"
    else:
        verdict = "model_change" if fit_p < float(alpha) / 2 else "prior_shift"
    details = {
        "fit_statistic": g_obs,
        "fit_p_value": fit_p,
        "prior_p_value": prior_p,
        "tv_p_value": p_tv,
        "max_class_p_value": p_z,
        "most_changed": int(np.argmax(np.abs(pi_hat - pi0) / sd)),
        "reference_priors": ref_prior,
        "cells": cells,
        "n_reference": len(rp),
        "n_current": m,
        "n_bootstrap": nb,
    }
    return ClassShiftDiagnosis(
        verdict,
        pi_hat,
        np.minimum(lo, pi_hat),
        np.maximum(hi, pi_hat),
        p_value,
        float(alpha),
        pi0,
        details,
    )
