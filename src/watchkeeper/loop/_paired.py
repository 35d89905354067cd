"""Paired comparisons of two models scored on the same labelled events (numpy, scipy).

Both models see the same events, so their errors are correlated; a paired test uses that and
is far more sensitive than comparing two independent intervals. Three are here:

- :func:`mcnemar`: correctness at each model's operating point. Only the discordant events
  (one model right, the other wrong) carry information; under "equally accurate" the challenger
  wins each of them with probability 1/2, so the exact binomial test is used at every size.
- :func:`delong`: ROC AUC, with DeLong's variance of the difference of two correlated AUCs.
- :func:`fpr_at_tpr`: the false-positive rate once each model's threshold is re-fitted to a
  target TPR on the data itself, with a paired, class-stratified bootstrap that re-fits the
  thresholds in every resample (so the interval includes the threshold's own noise).

Every function returns a :class:`PairedTest` whose ``difference`` is oriented "challenger minus
champion" in the metric's own units and whose ``improvement`` is positive when the challenger is
better (for an FPR, lower is better).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from watchkeeper.stats._result import _plain


@dataclass(frozen=True, slots=True)
class PairedTest:
    """Outcome of a paired comparison, challenger versus champion.

    Parameters
    ----------
    method
        ``"mcnemar"``, ``"delong"`` or ``"bootstrap"``.
    metric
        What was compared (``"accuracy"``, ``"auc"``, ``"fpr_at_tpr"``).
    champion, challenger
        The metric of each model.
    difference
        ``challenger - champion``.
    improvement
        ``difference`` signed so that positive means the challenger is better.
    ci_low, ci_high
        Two-sided interval of ``improvement`` at ``coverage``.
    p_value
        Two-sided p-value of "no difference".
    p_better
        One-sided p-value of "the challenger is not better" (small: evidence it is better).
    p_worse
        One-sided p-value of "the challenger is not worse" (small: evidence it is worse).
    se
        Standard error of ``improvement`` (``None`` for the exact test).
    n
        Events compared.
    details
        Method-specific extras (discordant counts, thresholds, ...).
    """

    method: str
    metric: str
    champion: float
    challenger: float
    difference: float
    improvement: float
    ci_low: float
    ci_high: float
    p_value: float
    p_better: float
    p_worse: float
    se: float | None
    n: int
    coverage: float = 0.95
    details: dict[str, Any] | None = None

    def _margin_se(self) -> float:
        if self.se is not None and self.se > 0:
            return self.se
        d = self.details or {}
        n = max(int(d.get("n", self.n)), 1)
        # Wald standard error of a paired difference of proportions (McNemar's margin case)
        b, c = int(d.get("champion_only", 0)), int(d.get("challenger_only", 0))
        var = ((b + c) - (c - b) ** 2 / n) / n**2
        return math.sqrt(max(var, 1.0 / n**2))

    def p_noninferior(self, margin: float) -> float:
        """One-sided p-value of "the challenger is worse by more than ``margin``".

        A small value is evidence that the challenger loses at most ``margin``. With
        ``margin=0`` it equals :attr:`p_better`; otherwise a normal approximation from
        :attr:`se` (the Wald standard error for McNemar).
        """
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        if margin == 0:
            return self.p_better
        from scipy import stats

        return float(stats.norm.sf((self.improvement + margin) / self._margin_se()))

    def p_worse_by(self, margin: float) -> float:
        """One-sided p-value of "the challenger loses at most ``margin``".

        A small value is evidence that the challenger is worse by more than ``margin``; with
        ``margin=0`` it equals :attr:`p_worse`.
        """
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        if margin == 0:
            return self.p_worse
        from scipy import stats

        return float(stats.norm.cdf((self.improvement + margin) / self._margin_se()))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {
            "method": self.method,
            "metric": self.metric,
            "champion": _plain(self.champion),
            "challenger": _plain(self.challenger),
            "difference": _plain(self.difference),
            "improvement": _plain(self.improvement),
            "ci": [_plain(self.ci_low), _plain(self.ci_high)],
            "coverage": self.coverage,
            "p_value": _plain(self.p_value),
            "p_better": _plain(self.p_better),
            "p_worse": _plain(self.p_worse),
            "se": None if self.se is None else _plain(self.se),
            "n": self.n,
            "details": _plain(dict(self.details or {})),
        }


def _labels(y: Any) -> np.ndarray:
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"labels: expected a 1-D array, got shape {arr.shape}")
    if arr.dtype == bool:
        return arr
    if not np.isin(arr, (0, 1)).all():
        raise ValueError("labels: expected 0/1 or booleans")
    return arr.astype(bool)


def _scores(name: str, s: Any, n: int) -> np.ndarray:
    arr = np.asarray(s, dtype=np.float64)
    if arr.shape != (n,):
        raise ValueError(f"{name}: expected {n} scores, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name}: scores must be finite numbers")
    return arr


def _coverage(coverage: float) -> float:
    if not 0 < coverage < 1:
        raise ValueError(f"coverage must be in (0, 1), got {coverage}")
    return float(coverage)


def mcnemar(
    correct_champion: Any, correct_challenger: Any, *, coverage: float = 0.95
) -> PairedTest:
    """Exact McNemar test on the correctness of two models over the same events.

    Parameters
    ----------
    correct_champion, correct_challenger
        Booleans, one per event: was each model right (at its operating point)?
    coverage
        Coverage of the interval of the accuracy difference (Newcombe's score-based method
        would be tighter; this is the Wald interval of the paired difference, floored at one
        event).

    Examples
    --------
    >>> a = np.array([1, 1, 0, 1, 0, 1, 1, 1, 0, 1] * 20, bool)
    >>> b = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 1] * 20, bool)
    >>> r = mcnemar(a, b)
    >>> r.details["champion_only"], r.details["challenger_only"], round(r.p_value, 6)
    (0, 40, 0.0)
    >>> round(r.improvement, 2)
    0.2
    """
    from scipy import stats

    a = np.asarray(correct_champion, dtype=bool)
    b = np.asarray(correct_challenger, dtype=bool)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(
            f"correct_challenger: expected the shape of correct_champion {a.shape}, got {b.shape}"
        )
    n = int(a.size)
    if n == 0:
        raise ValueError("correct_champion: no events")
    cov = _coverage(coverage)
    champion_only = int(np.count_nonzero(a & ~b))
    challenger_only = int(np.count_nonzero(~a & b))
    m = champion_only + challenger_only
    if m == 0:
        p_two, p_better, p_worse = 1.0, 1.0, 1.0
    else:
        low = min(champion_only, challenger_only)
        p_two = float(min(1.0, 2.0 * stats.binom.cdf(low, m, 0.5)))
        # P(challenger wins >= observed | each discordant event a fair coin)
        p_better = float(stats.binom.sf(challenger_only - 1, m, 0.5))
        p_worse = float(stats.binom.sf(champion_only - 1, m, 0.5))
    diff = (challenger_only - champion_only) / n
    var = (m - (challenger_only - champion_only) ** 2 / n) / n**2
    se = math.sqrt(max(var, 1.0 / n**2))
    z = float(stats.norm.ppf(0.5 + cov / 2))
    return PairedTest(
        method="mcnemar",
        metric="accuracy",
        champion=float(a.mean()),
        challenger=float(b.mean()),
        difference=diff,
        improvement=diff,
        ci_low=diff - z * se,
        ci_high=diff + z * se,
        p_value=p_two,
        p_better=p_better,
        p_worse=p_worse,
        se=None,
        n=n,
        coverage=cov,
        details={"champion_only": champion_only, "challenger_only": challenger_only, "n": n},
    )


def _midranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties sharing their mean rank, along the last axis of a 1-D array."""
    order = np.argsort(x, kind="mergesort")
    xs = x[order]
    n = x.size
    # start and end of each run of equal values
    boundaries = np.flatnonzero(np.diff(xs)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [n]))
    mean_rank = (starts + ends + 1) / 2.0  # ranks are 1-based: (start+1 + end) / 2
    ranks_sorted = np.repeat(mean_rank, ends - starts)
    out = np.empty(n)
    out[order] = ranks_sorted
    return out


def roc_auc(labels: Any, scores: Any) -> float:
    """ROC AUC from midranks (ties count one half).

    Examples
    --------
    >>> roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    y = _labels(labels)
    s = _scores("scores", scores, y.size)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 == 0 or n0 == 0:
        raise ValueError("labels: both classes must be present")
    r = _midranks(s)
    return float((r[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def _placements(y: np.ndarray, s: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """DeLong's structural components: AUC, V10 (per positive), V01 (per negative)."""
    n1, n0 = int(y.sum()), int((~y).sum())
    r_all = _midranks(s)
    r_pos = _midranks(s[y])
    r_neg = _midranks(s[~y])
    v10 = (r_all[y] - r_pos) / n0  # share of negatives below each positive
    v01 = 1.0 - (r_all[~y] - r_neg) / n1  # share of positives above each negative
    auc = float(v10.mean())
    return auc, v10, v01


def delong(
    labels: Any, scores_champion: Any, scores_challenger: Any, *, coverage: float = 0.95
) -> PairedTest:
    """DeLong's test for the difference of two correlated ROC AUCs.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 600)
    >>> a = y + rng.normal(0, 1.2, 600)
    >>> b = y + rng.normal(0, 0.6, 600)
    >>> r = delong(y, a, b)
    >>> r.challenger > r.champion, r.p_value < 0.001
    (True, True)
    """
    from scipy import stats

    y = _labels(labels)
    a = _scores("scores_champion", scores_champion, y.size)
    b = _scores("scores_challenger", scores_challenger, y.size)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 < 2 or n0 < 2:
        raise ValueError("labels: need at least two events of each class")
    cov = _coverage(coverage)
    auc_a, v10_a, v01_a = _placements(y, a)
    auc_b, v10_b, v01_b = _placements(y, b)
    s10 = np.cov(np.vstack([v10_a, v10_b]))
    s01 = np.cov(np.vstack([v01_a, v01_b]))
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / n1 + (
        s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]
    ) / n0
    diff = auc_b - auc_a
    se = math.sqrt(max(float(var), 0.0))
    if se == 0:
        p_two = 1.0 if diff == 0 else 0.0
        p_better = 1.0 if diff <= 0 else 0.0
        p_worse = 1.0 if diff >= 0 else 0.0
    else:
        z = diff / se
        p_two = float(2 * stats.norm.sf(abs(z)))
        p_better = float(stats.norm.sf(z))
        p_worse = float(stats.norm.cdf(z))
    q = float(stats.norm.ppf(0.5 + cov / 2))
    return PairedTest(
        method="delong",
        metric="auc",
        champion=auc_a,
        challenger=auc_b,
        difference=diff,
        improvement=diff,
        ci_low=diff - q * se,
        ci_high=diff + q * se,
        p_value=p_two,
        p_better=p_better,
        p_worse=p_worse,
        se=se,
        n=int(y.size),
        coverage=cov,
        details={"n_positive": n1, "n_negative": n0},
    )


def threshold_at_tpr(labels: Any, scores: Any, target_tpr: float) -> float:
    """The highest threshold whose TPR (share of positives with ``score >= t``) reaches the target.

    Examples
    --------
    >>> threshold_at_tpr([1, 1, 1, 1, 0], [0.9, 0.8, 0.7, 0.2, 0.1], 0.75)
    0.7
    """
    y = _labels(labels)
    s = _scores("scores", scores, y.size)
    if not 0 < target_tpr <= 1:
        raise ValueError(f"target_tpr must be in (0, 1], got {target_tpr}")
    pos = np.sort(s[y])[::-1]
    if pos.size == 0:
        raise ValueError("labels: no positives")
    k = max(1, math.ceil(target_tpr * pos.size - 1e-9))
    return float(pos[k - 1])


def _fpr_at_tpr_rows(pos: np.ndarray, neg: np.ndarray, target_tpr: float) -> np.ndarray:
    """FPR at the re-fitted threshold for each row of resampled (B, n_pos) and (B, n_neg)."""
    k = max(1, math.ceil(target_tpr * pos.shape[1] - 1e-9))
    # the k-th largest positive score of each row: partition instead of a full sort
    kth = np.partition(pos, pos.shape[1] - k, axis=1)[:, pos.shape[1] - k]
    return np.asarray((neg >= kth[:, None]).mean(axis=1))


def fpr_at_tpr(
    labels: Any,
    scores_champion: Any,
    scores_challenger: Any,
    target_tpr: float = 0.9,
    *,
    n_bootstrap: int = 1000,
    coverage: float = 0.95,
    seed: int | None = 0,
) -> PairedTest:
    """Each model's FPR at its threshold re-fitted to ``target_tpr``, compared by bootstrap.

    The thresholds are re-fitted inside every resample (positives and negatives resampled
    separately, the same events for both models), so the interval carries the noise of the
    threshold as well as that of the FPR. ``improvement`` is ``champion - challenger`` (a lower
    FPR is better); the one-sided p-value is the bootstrap share of resamples with no
    improvement (with the usual +1 correction).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> y = rng.integers(0, 2, 2000)
    >>> a = y + rng.normal(0, 0.7, 2000)
    >>> b = y + rng.normal(0, 0.4, 2000)
    >>> r = fpr_at_tpr(y, a, b, 0.9, n_bootstrap=300)
    >>> r.challenger < r.champion, r.ci_low > 0
    (True, True)
    """
    y = _labels(labels)
    a = _scores("scores_champion", scores_champion, y.size)
    b = _scores("scores_challenger", scores_challenger, y.size)
    if not 0 < target_tpr <= 1:
        raise ValueError(f"target_tpr must be in (0, 1], got {target_tpr}")
    if not 1 <= int(n_bootstrap) <= 100_000:
        raise ValueError(f"n_bootstrap must be in [1, 100000], got {n_bootstrap}")
    cov = _coverage(coverage)
    n1, n0 = int(y.sum()), int((~y).sum())
    if n1 < 2 or n0 < 2:
        raise ValueError("labels: need at least two events of each class")
    pa, na, pb, nb = a[y], a[~y], b[y], b[~y]
    thr_a = threshold_at_tpr(y, a, target_tpr)
    thr_b = threshold_at_tpr(y, b, target_tpr)
    fpr_a = float((na >= thr_a).mean())
    fpr_b = float((nb >= thr_b).mean())
    rng = np.random.default_rng(seed)
    diffs = np.empty(int(n_bootstrap))
    # in blocks, so memory stays bounded whatever the sample size
    block = max(1, min(int(n_bootstrap), 4_000_000 // max(n1 + n0, 1)))
    for start in range(0, int(n_bootstrap), block):
        size = min(block, int(n_bootstrap) - start)
        ip = rng.integers(0, n1, (size, n1))
        ineg = rng.integers(0, n0, (size, n0))
        fa = _fpr_at_tpr_rows(pa[ip], na[ineg], target_tpr)
        fb = _fpr_at_tpr_rows(pb[ip], nb[ineg], target_tpr)
        diffs[start : start + size] = fa - fb
    improvement = fpr_a - fpr_b
    tail = (1 - cov) / 2
    lo, hi = np.quantile(diffs, [tail, 1 - tail])
    # basic bootstrap p-values, one- and two-sided, from the resampled improvements centred at 0
    p_better = float((np.count_nonzero(diffs - improvement >= improvement) + 1) / (diffs.size + 1))
    p_two = float(
        min(1.0, (np.count_nonzero(np.abs(diffs - improvement) >= abs(improvement)) + 1)
            / (diffs.size + 1))
    )  # fmt: skip
    p_worse = float((np.count_nonzero(diffs - improvement <= improvement) + 1) / (diffs.size + 1))
    se = float(diffs.std(ddof=1)) if diffs.size > 1 else None
    return PairedTest(
        method="bootstrap",
        metric="fpr_at_tpr",
        champion=fpr_a,
        challenger=fpr_b,
        difference=fpr_b - fpr_a,
        improvement=improvement,
        ci_low=float(lo),
        ci_high=float(hi),
        p_value=p_two,
        p_better=p_better,
        p_worse=p_worse,
        se=se,
        n=int(y.size),
        coverage=cov,
        details={
            "target_tpr": float(target_tpr),
            "threshold_champion": thr_a,
            "threshold_challenger": thr_b,
            "n_bootstrap": int(n_bootstrap),
            "n_positive": n1,
            "n_negative": n0,
        },
    )
