"""A sequential paired test: decide champion or challenger as soon as the labels suffice.

While the challenger runs in shadow, labelled events arrive a few at a time. Testing again each
time with a fixed-sample test would inflate its error rate; :class:`SequentialPairedTest` is
valid at every look instead (always-valid, "anytime" inference).

Only discordant events carry information about which model is more accurate: one model right,
the other wrong. Let ``p`` be the chance the challenger is the one that is right on such an
event; the models are equally accurate when ``p = 1/2``. With ``k`` challenger wins among ``m``
discordant events, two mixture likelihood ratios against ``p = 1/2`` are kept, one over
``p > 1/2`` and one over ``p < 1/2`` (a Beta(a, a) mixing density, ``a = prior_strength``, cut
at 1/2 and renormalised)::

    M+ = 2 * 2^m * B(a + k, a + m - k) / B(a, a) * P(Beta(a + k, a + m - k) > 1/2)

and ``M-`` with ``<``. Each is a non-negative supermartingale whenever the challenger is *not*
better (for ``M+``) or *not* worse (for ``M-``), so by Ville's inequality it ever reaches
``2 / alpha`` with probability at most ``alpha / 2``. The test declares ``"better"`` when ``M+``
crosses, ``"worse"`` when ``M-`` crosses, and ``"inconclusive"`` when ``max_events`` labelled
events pass without either: the chance of a wrong call is at most ``alpha / 2`` in each
direction, ``alpha`` in all, however often one looks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

DECISIONS = ("better", "worse", "inconclusive")


@dataclass(frozen=True, slots=True)
class SequentialState:
    """Where a :class:`SequentialPairedTest` stands."""

    decision: str | None
    n: int
    discordant: int
    challenger_wins: int
    log_e_better: float
    log_e_worse: float
    threshold: float
    decided_at: int | None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {
            "decision": self.decision,
            "n": self.n,
            "discordant": self.discordant,
            "challenger_wins": self.challenger_wins,
            "e_better": math.exp(min(self.log_e_better, 700.0)),
            "e_worse": math.exp(min(self.log_e_worse, 700.0)),
            "threshold": self.threshold,
            "decided_at": self.decided_at,
        }


def _log_e(k: np.ndarray, m: np.ndarray, a: float) -> tuple[np.ndarray, np.ndarray]:
    """log M+ and log M- for arrays of (wins, discordant)."""
    from scipy import special

    base = (
        math.log(2.0) + m * math.log(2.0)
        + special.betaln(a + k, a + m - k) - special.betaln(a, a)
    )  # fmt: skip
    with np.errstate(divide="ignore"):  # a vanishing tail is log 0 = -inf: no evidence that way
        up = np.log(special.betaincc(a + k, a + m - k, 0.5))
        down = np.log(special.betainc(a + k, a + m - k, 0.5))
    return base + up, base + down


class SequentialPairedTest:
    """Always-valid paired test of two models' accuracy, fed labelled events in batches.

    Parameters
    ----------
    alpha
        Probability of any wrong call (``alpha / 2`` per direction), at any number of looks.
    prior_strength
        ``a`` of the Beta(a, a) mixing density: larger values favour small differences (a
        win rate near 1/2), smaller ones large differences. 10 suits win rates of 0.6-0.75.
    max_events
        Stop with ``"inconclusive"`` after this many labelled events (the shadow's maximum
        duration); ``None`` for no limit.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> test = SequentialPairedTest(alpha=0.05)
    >>> champion = rng.random(2000) < 0.80        # right 80% of the time
    >>> challenger = rng.random(2000) < 0.90      # right 90% of the time
    >>> test.update(champion[:500], challenger[:500]).decision
    'better'
    >>> test.state.decided_at < 500
    True
    """

    def __init__(
        self, alpha: float = 0.05, prior_strength: float = 10.0, max_events: int | None = None
    ) -> None:
        self.alpha = alpha
        self.prior_strength = prior_strength
        self.max_events = max_events
        self.reset()

    def _check(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if not 0 < self.prior_strength <= 1e6:
            raise ValueError(f"prior_strength must be in (0, 1e6], got {self.prior_strength}")
        if self.max_events is not None and (
            isinstance(self.max_events, bool) or int(self.max_events) < 1
        ):
            raise ValueError(f"max_events must be a positive integer, got {self.max_events}")

    def reset(self) -> SequentialPairedTest:
        """Forget every event."""
        self._n = 0
        self._m = 0
        self._k = 0
        self._log_up = 0.0
        self._log_down = 0.0
        self._decision: str | None = None
        self._decided_at: int | None = None
        return self

    @property
    def decision(self) -> str | None:
        """``"better"``, ``"worse"``, ``"inconclusive"``, or ``None`` while undecided."""
        return self._decision

    @property
    def state(self) -> SequentialState:
        """The counts, both e-values and the decision."""
        return SequentialState(
            decision=self._decision,
            n=self._n,
            discordant=self._m,
            challenger_wins=self._k,
            log_e_better=self._log_up,
            log_e_worse=self._log_down,
            threshold=2.0 / self.alpha,
            decided_at=self._decided_at,
        )

    def update(self, correct_champion: Any, correct_challenger: Any) -> SequentialPairedTest:
        """Add a batch of labelled events: was each model right on each of them?

        The decision is checked after every event of the batch (vectorised), so a batch gives
        the same answer as feeding its events one by one. Events after a decision are ignored.
        """
        self._check()
        a = np.asarray(correct_champion, dtype=bool).ravel()
        b = np.asarray(correct_challenger, dtype=bool).ravel()
        if a.shape != b.shape:
            raise ValueError(
                f"correct_challenger: expected {a.size} values like correct_champion, got {b.size}"
            )
        if self._decision is not None or a.size == 0:
            return self
        if self.max_events is not None:
            a = a[: max(int(self.max_events) - self._n, 0)]
            b = b[: a.size]
        disc = a != b
        m = self._m + np.cumsum(disc)
        k = self._k + np.cumsum(disc & b)
        log_up, log_down = _log_e(k.astype(np.float64), m.astype(np.float64), self.prior_strength)
        bound = math.log(2.0 / self.alpha)
        hit = np.flatnonzero((log_up >= bound) | (log_down >= bound))
        last = int(hit[0]) if hit.size else a.size - 1
        self._n += last + 1
        self._m, self._k = int(m[last]), int(k[last])
        self._log_up, self._log_down = float(log_up[last]), float(log_down[last])
        if hit.size:
            self._decision = "better" if self._log_up >= bound else "worse"
            self._decided_at = self._n
        elif self.max_events is not None and self._n >= int(self.max_events):
            self._decision = "inconclusive"
            self._decided_at = self._n
        return self

    def to_dict(self) -> dict[str, Any]:
        """Parameters and state as plain JSON, to resume after a restart."""
        return {
            "alpha": self.alpha,
            "prior_strength": self.prior_strength,
            "max_events": self.max_events,
            "n": self._n,
            "discordant": self._m,
            "challenger_wins": self._k,
            "log_e_better": self._log_up,
            "log_e_worse": self._log_down,
            "decision": self._decision,
            "decided_at": self._decided_at,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SequentialPairedTest:
        """Rebuild a test from :meth:`to_dict`."""
        t = cls(d["alpha"], d["prior_strength"], d["max_events"])
        t._check()
        t._n, t._m, t._k = int(d["n"]), int(d["discordant"]), int(d["challenger_wins"])
        t._log_up, t._log_down = float(d["log_e_better"]), float(d["log_e_worse"])
        t._decision, t._decided_at = d["decision"], d["decided_at"]
        return t


def fixed_horizon_discordant(win_rate: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Discordant events an exact two-sided McNemar test needs to reach ``power`` at ``win_rate``.

    The yardstick for the sequential test: the smallest ``m`` such that the exact binomial test
    at level ``alpha`` rejects with probability ``power`` when the challenger wins each
    discordant event with probability ``win_rate``.

    Examples
    --------
    >>> fixed_horizon_discordant(0.7)
    49
    """
    from scipy import stats

    if not 0.5 < win_rate < 1:
        raise ValueError(f"win_rate must be in (0.5, 1), got {win_rate}")
    for m in range(2, 200_000):
        # smallest k with two-sided exact p-value <= alpha: P(X >= k) <= alpha/2 under p = 1/2
        k = int(stats.binom.isf(alpha / 2, m, 0.5)) + 1
        while k > 0 and stats.binom.sf(k - 2, m, 0.5) <= alpha / 2:
            k -= 1
        valid = stats.binom.sf(k - 1, m, 0.5) <= alpha / 2
        if valid and stats.binom.sf(k - 1, m, win_rate) >= power:
            return m
    raise ValueError("win_rate too close to 1/2 for a fixed horizon below 200000")
