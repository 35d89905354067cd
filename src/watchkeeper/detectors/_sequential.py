"""Detectors run by compiled sequential kernels: ADWIN, KSWIN, EDDM, HDDM_A, HDDM_W.

Their state (a window of buckets, a sliding window, running extrema of moving averages) does
not reduce to a cumulative sum, so ``update_many`` runs a numba kernel over the array, and
``update`` runs the same kernel on one value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from fractions import Fraction
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

from watchkeeper.detectors._base import (
    BinaryDetector,
    FloatArray,
    IntArray,
    RealDetector,
    State,
    WarningMixin,
    check_float,
    check_int,
)

_ADWIN_LEVELS = 64  # 2**63 values fit: more levels than any stream can fill


class _Kernelled:
    """Shared plumbing: one value goes through the same kernel as many."""

    _one: FloatArray | None = None

    def _update_one(self, x: float) -> None:
        if self._one is None:
            self._one = np.empty(1, dtype=np.float64)
        self._one[0] = x
        self._update_block(self._one)  # type: ignore[attr-defined]


class ADWIN(_Kernelled, RealDetector):
    r"""ADaptive WINdowing (Bifet & Gavaldà, 2007) for a change in the mean.

    Keeps a window of recent values summarised in an exponential histogram of buckets and, every
    ``clock`` values, drops its oldest part while some split into an older and a newer
    sub-window has means further apart than the bound
    :math:`\varepsilon = \sqrt{2 m^{-1} \hat\sigma^2 \delta'} + \tfrac{2}{3} \delta' m^{-1}`,
    :math:`\delta' = \ln(2 \ln |W| / \delta)`. Same decisions as River's ``ADWIN`` at equal
    parameters with ``reset_after_drift=True`` (River's behaviour: after a detection the whole
    window is discarded). With ``reset_after_drift=False`` the detector keeps the shrunk window,
    as in the paper.

    With the default ``delta`` (River's) the expected number of false alarms per 100,000
    standard-normal values is at most :attr:`false_alarms_per_100k` (0.5; checked by
    simulation).

    Parameters
    ----------
    delta
        Confidence of the cut test, in (0, 1): smaller means fewer false alarms.
    clock
        Check for a change every ``clock`` values.
    max_buckets
        Buckets kept per level of the histogram before two are merged.
    min_window_length
        Minimum length of each sub-window in a split.
    grace_period
        Values seen before the first check.
    reset_after_drift
        Start afresh with the value after a detection.

    Examples
    --------
    >>> import numpy as np
    >>> from watchkeeper.detectors import ADWIN
    >>> rng = np.random.default_rng(0)
    >>> stream = np.r_[rng.normal(0, 1, 5000), rng.normal(1, 1, 5000)]
    >>> ADWIN().update_many(stream)
    array([5055])
    """

    method: ClassVar[str] = "ADWIN"
    false_alarms_per_100k: ClassVar[float] = 0.5
    params: ClassVar[tuple[str, ...]] = (
        "delta",
        "clock",
        "max_buckets",
        "min_window_length",
        "grace_period",
        "reset_after_drift",
    )

    def __init__(
        self,
        delta: float = 0.002,
        clock: int = 32,
        max_buckets: int = 5,
        min_window_length: int = 5,
        grace_period: int = 10,
        reset_after_drift: bool = True,
    ) -> None:
        super().__init__()
        self.delta = delta
        self.clock = clock
        self.max_buckets = max_buckets
        self.min_window_length = min_window_length
        self.grace_period = grace_period
        self.reset_after_drift = reset_after_drift

    def _validate(self) -> None:
        check_float(self.delta, "delta", low=0.0, high=1.0, low_open=True, high_open=True)
        check_int(self.clock, "clock", low=1)
        check_int(self.max_buckets, "max_buckets", low=1)
        check_int(self.min_window_length, "min_window_length", low=1)
        check_int(self.grace_period, "grace_period", low=0)

    def _fresh_state(self) -> State:
        m = int(self.max_buckets) + 1
        return {
            "scalars": np.zeros(6, dtype=np.float64),
            "counts": np.zeros(_ADWIN_LEVELS, dtype=np.int64),
            "totals": np.zeros((_ADWIN_LEVELS, m), dtype=np.float64),
            "variances": np.zeros((_ADWIN_LEVELS, m), dtype=np.float64),
        }

    def _update_block(self, values: FloatArray) -> IntArray:
        from watchkeeper.detectors import _backend

        s = self._state
        assert s is not None
        det: IntArray = _backend.adwin(
            values,
            s["scalars"],
            s["counts"],
            s["totals"],
            s["variances"],
            float(self.delta),
            int(self.clock),
            int(self.max_buckets),
            float(self.min_window_length),
            float(self.grace_period),
            bool(self.reset_after_drift),
        )
        self._drift = bool(s["scalars"][5])
        return det

    def _state_for_json(self, state: State) -> State:
        # Only the levels in use: a window of n values fills about log2(n) of the 64.
        used = int(np.flatnonzero(state["counts"]).max(initial=-1)) + 1
        return {
            "scalars": state["scalars"],
            "counts": state["counts"][:used],
            "totals": state["totals"][:used],
            "variances": state["variances"][:used],
        }

    def _state_from_json(self, state: Mapping[str, Any]) -> State:
        out = self._fresh_state()
        for key in ("counts", "totals", "variances"):
            if key not in state:
                raise ValueError(f"state is missing {key!r} for {self.method}")
            saved = np.asarray(state[key], dtype=out[key].dtype)
            if saved.size:
                out[key][: saved.shape[0]] = saved
        if "scalars" not in state:
            raise ValueError(f"state is missing 'scalars' for {self.method}")
        out["scalars"][:] = np.asarray(state["scalars"], dtype=np.float64)
        return out

    @property
    def width(self) -> int:
        """Number of values in the current window."""
        return 0 if self._state is None else int(self._state["scalars"][2])

    @property
    def estimation(self) -> float:
        """Mean of the current window (0 when empty)."""
        if self._state is None or self._state["scalars"][2] == 0:
            return 0.0
        return float(self._state["scalars"][0] / self._state["scalars"][2])


@lru_cache(maxsize=64)
def ks_pvalue_equal_sizes(n: int, k: int) -> float:
    """Exact two-sided p-value of the two-sample KS statistic ``D = k/n`` for sizes ``n, n``.

    ``P(D >= k/n) = 2 * sum_j (-1)**(j+1) C(2n, n - j k) / C(2n, n)`` (Gnedenko & Korolyuk),
    computed with exact integers.

    Examples
    --------
    >>> round(ks_pvalue_equal_sizes(30, 10), 6)
    0.070888
    """
    if k <= 0:
        return 1.0
    total = Fraction(0)
    for j in range(1, n // k + 1):
        total += (-1) ** (j + 1) * Fraction(math.comb(2 * n, n - j * k))
    return float(min(Fraction(1), 2 * total / math.comb(2 * n, n)))


@lru_cache(maxsize=64)
def _critical_count(n: int, alpha: float) -> int:
    for k in range(1, n + 1):
        if 10 * k > n and ks_pvalue_equal_sizes(n, k) <= alpha:
            return k
    return n + 1


class KSWIN(_Kernelled, RealDetector):
    r"""Kolmogorov-Smirnov WINdowing (Raab, Heusinger & Schleif, 2020).

    Keeps the last ``window_size`` values; once full, each new value triggers a two-sample KS
    test between the ``stat_size`` most recent values and ``stat_size`` values drawn at random
    without replacement from the older part. A change is signalled when the exact p-value is at
    most ``alpha`` and the statistic exceeds 0.1 (River's rule). Because both samples have
    ``stat_size`` values the statistic takes ``stat_size + 1`` values, so the test reduces to a
    critical count computed once. The kernel keeps both parts of the window sorted as it
    slides, so a sample comes out sorted without sorting, and the statistic is one merge.

    The random sample is drawn by a counter-based generator seeded by ``seed``: the sample of
    the t-th test depends only on (seed, t), so a detector restored from JSON draws the same
    samples as one that never stopped. River draws with Python's ``random`` instead, so the two
    cannot draw the same samples; "equivalent" here means: given the same samples, the same
    decisions (tested by replaying River's draws through this kernel), and for random draws the
    same detection behaviour in distribution.

    Defaults differ from River's (``alpha=0.005``, ``window_size=100``, ``stat_size=30``), which
    tests every value and raises about 120 false alarms per 100,000 standard-normal values. With
    ``alpha=1e-5`` the expected number per 100,000 values of a stationary stream is at most
    :attr:`false_alarms_per_100k` (1.5; about 0.7 measured over 45 streams), and samples of 150
    values keep some power: a shift of half a standard deviation is found after 100 to 150
    values four times in five (with samples of 30 it is mostly missed, because KSWIN only sees
    a change while it straddles its window). Cost grows with the window: about 0.1 M values/s
    on the shared benchmark machine at the defaults, 0.6 M at River's.

    Parameters
    ----------
    alpha
        Level of each KS test, in (0, 1).
    window_size
        Length of the sliding window.
    stat_size
        Size of each of the two samples compared; less than ``window_size``, and at most
        ``window_size - stat_size`` older values must remain to draw from.
    seed
        Seed of the sampling (default 0, so reruns on the same stream agree); ``None`` draws
        one at the first value (kept in the state).
    reset_after_drift
        Start afresh with the value after a detection (River); ``False`` keeps the
        ``stat_size`` most recent values as the new window (the paper).

    No test runs before ``window_size`` values have been seen: :meth:`tested` says whether
    one has, and ``watchkeeper detect`` says so when a stream is shorter than the window.

    Examples
    --------
    >>> import numpy as np
    >>> from watchkeeper.detectors import KSWIN
    >>> rng = np.random.default_rng(0)
    >>> stream = np.r_[rng.normal(0, 1, 5000), rng.normal(1.5, 1, 5000)]
    >>> KSWIN(seed=1).update_many(stream)
    array([5046])
    """

    method: ClassVar[str] = "KSWIN"
    false_alarms_per_100k: ClassVar[float] = 1.5
    params: ClassVar[tuple[str, ...]] = (
        "alpha",
        "window_size",
        "stat_size",
        "seed",
        "reset_after_drift",
    )

    def __init__(
        self,
        alpha: float = 1e-5,
        window_size: int = 500,
        stat_size: int = 150,
        seed: int | None = 0,
        reset_after_drift: bool = True,
    ) -> None:
        super().__init__()
        self.alpha = alpha
        self.window_size = window_size
        self.stat_size = stat_size
        self.seed = seed
        self.reset_after_drift = reset_after_drift

    def _validate(self) -> None:
        check_float(self.alpha, "alpha", low=0.0, high=1.0, low_open=True, high_open=True)
        check_int(self.stat_size, "stat_size", low=1)
        check_int(self.window_size, "window_size", low=2 * int(self.stat_size))
        if self.seed is not None:
            check_int(self.seed, "seed", low=0)
            if int(self.seed) >= 2**63:
                raise ValueError(f"seed must be below 2**63; got {self.seed!r}")

    def tested(self) -> bool:
        """Whether the window has filled since the start (or the last reset), so that at
        least one test ran: a stream shorter than ``window_size`` is never tested."""
        s = self._state
        return s is not None and float(s["scalars"][2]) > 0

    def critical_count(self) -> int:
        """Smallest ``k`` such that ``D = k / stat_size`` signals a change (``stat_size + 1``
        when none does)."""
        self._validate()
        return _critical_count(int(self.stat_size), float(self.alpha))

    def _fresh_state(self) -> State:
        if self.seed is not None:
            seed = int(self.seed)
        elif self._state is not None:
            seed = int(self._state["seed"])
        else:
            seed = int(np.random.default_rng().integers(0, 2**63 - 1))
        return {
            "seed": seed,
            "ring": np.zeros(int(self.window_size), dtype=np.float64),
            "scalars": np.zeros(4, dtype=np.float64),
        }

    def reset(self) -> KSWIN:
        """Forget everything seen so far (a ``None`` seed is drawn afresh)."""
        super().reset()
        return self

    def _run(self, values: FloatArray, samples: IntArray) -> IntArray:
        from watchkeeper.detectors import _backend

        s = self._state
        assert s is not None
        det: IntArray = _backend.kswin(
            values,
            s["ring"],
            s["scalars"],
            int(s["seed"]),
            int(self.window_size),
            int(self.stat_size),
            _critical_count(int(self.stat_size), float(self.alpha)),
            bool(self.reset_after_drift),
            samples,
        )
        self._drift = bool(s["scalars"][3])
        return det

    def _update_block(self, values: FloatArray) -> IntArray:
        return self._run(values, np.empty((0, int(self.stat_size)), dtype=np.int64))


class EDDM(_Kernelled, WarningMixin, BinaryDetector):
    r"""Early Drift Detection Method (Baena-García et al., 2006) on a stream of 0/1 errors.

    Tracks the mean :math:`p'` and standard deviation :math:`s'` of the distance between
    consecutive errors and the maximum of :math:`p' + 2 s'`; warns when the ratio of the current
    value to the maximum falls below ``alpha`` and signals drift below ``beta``. Same decisions
    as River's ``EDDM`` at equal parameters.

    River's defaults (``alpha=0.95, beta=0.9``, 30 errors of warm-up) raise about 100 false
    alarms per 500,000 values at an error rate of 0.1. The defaults here (``beta=0.85``,
    ``warm_start=500`` errors) keep the expected number of false alarms per 100,000 values at
    a constant error rate between 0.02 and 0.3 at most :attr:`false_alarms_per_100k` (2;
    checked by simulation), most of them soon after the warm-up.

    Parameters
    ----------
    warm_start
        Errors (and values) needed since the last reset before a warning or change.
    alpha
        Warning level of the ratio, in (0, 1].
    beta
        Drift level of the ratio, in (0, ``alpha``].
    reset_after_drift
        Start afresh with the value after a detection.

    Examples
    --------
    >>> import numpy as np
    >>> from watchkeeper.detectors import EDDM
    >>> rng = np.random.default_rng(3)
    >>> errors = np.r_[rng.random(20000) < 0.1, rng.random(5000) < 0.3]
    >>> EDDM().update_many(errors)
    array([23256])
    """

    method: ClassVar[str] = "EDDM"
    false_alarms_per_100k: ClassVar[float] = 2.0
    params: ClassVar[tuple[str, ...]] = ("warm_start", "alpha", "beta", "reset_after_drift")

    def __init__(
        self,
        warm_start: int = 500,
        alpha: float = 0.95,
        beta: float = 0.85,
        reset_after_drift: bool = True,
    ) -> None:
        super().__init__()
        self.warm_start = warm_start
        self.alpha = alpha
        self.beta = beta
        self.reset_after_drift = reset_after_drift

    def _validate(self) -> None:
        check_int(self.warm_start, "warm_start", low=0)
        check_float(self.alpha, "alpha", low=0.0, high=1.0, low_open=True)
        check_float(self.beta, "beta", low=0.0, high=float(self.alpha), low_open=True)

    def _fresh_state(self) -> State:
        s = np.zeros(8, dtype=np.float64)
        s[5] = -1.0
        return {"scalars": s}

    def _update_block(self, values: FloatArray) -> IntArray:
        from watchkeeper.detectors import _backend

        s = self._state
        assert s is not None
        det: IntArray = _backend.eddm(
            values,
            s["scalars"],
            float(self.warm_start),
            float(self.alpha),
            float(self.beta),
            bool(self.reset_after_drift),
        )
        self._drift, self._warning = bool(s["scalars"][6]), bool(s["scalars"][7])
        return det


class HDDM_A(_Kernelled, WarningMixin, BinaryDetector):
    r"""Drift detection with Hoeffding bounds on averages (Frías-Blanco et al., 2015), "A-test".

    Remembers the cut point where the mean since the last reset plus its Hoeffding bound was
    smallest and signals drift when the mean after it is larger by more than the bound at
    ``drift_confidence`` (a warning at ``warning_confidence``); ``two_sided`` also watches
    decreases. Same decisions as River's ``HDDMA`` at equal parameters.

    With River's defaults, kept here, the expected number of false alarms per 100,000 values at
    a constant error rate between 0.02 and 0.3 is at most :attr:`false_alarms_per_100k` (1.5;
    checked by simulation).

    Parameters
    ----------
    drift_confidence
        Confidence level of the drift test, in (0, 1).
    warning_confidence
        Confidence level of the warning test, in (0, 1).
    two_sided
        Also signal decreases of the mean.
    reset_after_drift
        Start afresh with the value after a detection.

    Examples
    --------
    >>> import numpy as np
    >>> from watchkeeper.detectors import HDDM_A
    >>> rng = np.random.default_rng(3)
    >>> errors = np.r_[rng.random(20000) < 0.1, rng.random(5000) < 0.3]
    >>> HDDM_A().update_many(errors)
    array([20137])
    """

    method: ClassVar[str] = "HDDM_A"
    false_alarms_per_100k: ClassVar[float] = 1.5
    params: ClassVar[tuple[str, ...]] = (
        "drift_confidence",
        "warning_confidence",
        "two_sided",
        "reset_after_drift",
    )

    def __init__(
        self,
        drift_confidence: float = 0.001,
        warning_confidence: float = 0.005,
        two_sided: bool = False,
        reset_after_drift: bool = True,
    ) -> None:
        super().__init__()
        self.drift_confidence = drift_confidence
        self.warning_confidence = warning_confidence
        self.two_sided = two_sided
        self.reset_after_drift = reset_after_drift

    def _validate(self) -> None:
        for name in ("drift_confidence", "warning_confidence"):
            check_float(getattr(self, name), name, low=0.0, high=1.0, low_open=True, high_open=True)
        if not isinstance(self.two_sided, bool):
            raise ValueError(f"two_sided must be True or False; got {self.two_sided!r}")

    def _fresh_state(self) -> State:
        return {"scalars": np.zeros(8, dtype=np.float64)}

    def _update_block(self, values: FloatArray) -> IntArray:
        from watchkeeper.detectors import _backend

        s = self._state
        assert s is not None
        det: IntArray = _backend.hddm_a(
            values,
            s["scalars"],
            float(self.drift_confidence),
            float(self.warning_confidence),
            bool(self.two_sided),
            bool(self.reset_after_drift),
        )
        self._drift, self._warning = bool(s["scalars"][6]), bool(s["scalars"][7])
        return det


class HDDM_W(_Kernelled, WarningMixin, BinaryDetector):
    r"""Drift detection with McDiarmid bounds on weighted averages (Frías-Blanco et al., 2015).

    The "W-test": like :class:`HDDM_A` on exponentially weighted moving averages with weight
    ``lambda_``. Same decisions as River's ``HDDMW`` at equal parameters, including River's
    choice that the first value already counts as weighted by ``lambda_`` in the bound.

    River's defaults (``drift_confidence=0.001``, ``lambda_=0.05``) compare the current average
    with the lowest one seen since the last reset, and at an error rate of 0.3 raise about 40
    false alarms per 100,000 values. The defaults here (``drift_confidence=1e-5``,
    ``warning_confidence=1e-4``, ``lambda_=0.02``) keep the expected number per 100,000 values
    at a constant error rate between 0.02 and 0.3 at most :attr:`false_alarms_per_100k` (2;
    checked by simulation); a rise from 0.1 to 0.3 is found after about 300 values.

    Parameters
    ----------
    drift_confidence
        Confidence level of the drift test, in (0, 1).
    warning_confidence
        Confidence level of the warning test, in (0, 1).
    lambda_
        Weight of the newest value in the moving averages, in (0, 1].
    two_sided
        Also signal decreases of the mean.
    reset_after_drift
        Start afresh with the value after a detection.

    Examples
    --------
    >>> import numpy as np
    >>> from watchkeeper.detectors import HDDM_W
    >>> rng = np.random.default_rng(3)
    >>> errors = np.r_[rng.random(20000) < 0.1, rng.random(5000) < 0.3]
    >>> HDDM_W().update_many(errors)
    array([20166])
    """

    method: ClassVar[str] = "HDDM_W"
    false_alarms_per_100k: ClassVar[float] = 2.0
    params: ClassVar[tuple[str, ...]] = (
        "drift_confidence",
        "warning_confidence",
        "lambda_",
        "two_sided",
        "reset_after_drift",
    )

    def __init__(
        self,
        drift_confidence: float = 1e-5,
        warning_confidence: float = 1e-4,
        lambda_: float = 0.02,
        two_sided: bool = False,
        reset_after_drift: bool = True,
    ) -> None:
        super().__init__()
        self.drift_confidence = drift_confidence
        self.warning_confidence = warning_confidence
        self.lambda_ = lambda_
        self.two_sided = two_sided
        self.reset_after_drift = reset_after_drift

    def _validate(self) -> None:
        for name in ("drift_confidence", "warning_confidence"):
            check_float(getattr(self, name), name, low=0.0, high=1.0, low_open=True, high_open=True)
        check_float(self.lambda_, "lambda_", low=0.0, high=1.0, low_open=True)
        if not isinstance(self.two_sided, bool):
            raise ValueError(f"two_sided must be True or False; got {self.two_sided!r}")

    def _fresh_state(self) -> State:
        s = np.zeros(19, dtype=np.float64)
        s[2:15:3] = 1.0
        s[15], s[16] = math.inf, -math.inf
        return {"scalars": s}

    def _update_block(self, values: FloatArray) -> IntArray:
        from watchkeeper.detectors import _backend

        s = self._state
        assert s is not None
        det: IntArray = _backend.hddm_w(
            values,
            s["scalars"],
            float(self.drift_confidence),
            float(self.warning_confidence),
            float(self.lambda_),
            bool(self.two_sided),
            bool(self.reset_after_drift),
        )
        self._drift, self._warning = bool(s["scalars"][17]), bool(s["scalars"][18])
        return det
