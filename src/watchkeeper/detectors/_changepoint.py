"""Change-point detectors for signals with structure: BOCPD and the seasonal-residual CUSUM.

:class:`BOCPD` keeps a posterior over the time since the last change (Adams & MacKay 2007) and
so needs no target or window; :class:`SeasonalCUSUM` first takes out what a daily signal does
every week (a level, a trend, a seasonal pattern, all fitted robustly on recent history) and
runs a CUSUM on what is left, scaled by the residuals' own robust spread and autocorrelation.
Both run compiled kernels (``update`` runs the same kernel on one value) and keep bounded state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from watchkeeper.detectors._base import (
    FloatArray,
    IntArray,
    RealDetector,
    State,
    check_float,
    check_int,
)
from watchkeeper.detectors._sequential import _Kernelled

_MAX_RUN = 100_000
_MAX_WINDOW = 100_000


class BOCPD(_Kernelled, RealDetector):
    r"""Bayesian online change-point detection (Adams & MacKay, 2007).

    Keeps the posterior of the *run length* :math:`r_t`, the number of values since the last
    change, under a constant hazard :math:`H` (the prior probability of a change at each
    value). Within a run the values are Gaussian with unknown mean and variance (a
    Normal-Gamma prior), so each run predicts the next value with a Student-t; the recursion

    .. math::
        p(r_t = r + 1, x_{1:t}) = p(r_{t-1} = r, x_{1:t-1})\, \pi_r(x_t)\, (1 - H), \qquad
        p(r_t = 0, x_{1:t}) = H \sum_r p(r_{t-1} = r, x_{1:t-1})\, \pi_r(x_t)

    is vectorised over the run lengths. Run lengths are truncated at ``max_run_length``: the
    longest run absorbs the mass that would grow past it (and keeps the statistics of whichever
    of the two merged runs held more mass), so memory and time per value are bounded. A change is
    signalled when the posterior probability that one happened within the last ``lag + 1``
    values, :math:`P(r_t \le \text{lag})`, exceeds ``threshold``.

    The first ``warm_start`` values (after each restart) are taken as one segment; unless
    ``mu`` and ``sigma`` are given they also set the prior's centre and scale, so the detector
    works in any units. With the defaults, the expected number of false alarms per 100,000
    values of an unchanging Gaussian stream is at most :attr:`false_alarms_per_100k` (3;
    checked by simulation), and a shift of two standard deviations is signalled a few values
    after it happens. The model assumes independent values around a piecewise-constant level:
    on a signal with a trend, a weekly pattern or strong autocorrelation use
    :class:`SeasonalCUSUM`, which takes those out first.

    Parameters
    ----------
    hazard
        Prior probability of a change at each value (1 / the expected run length), in (0, 1).
    threshold
        Posterior probability of a recent change needed to signal, in (0, 1).
    lag
        "Recent" means within the last ``lag + 1`` values.
    max_run_length
        Number of run lengths kept (memory and time per value are proportional to it).
    warm_start
        Values taken as the first segment after each (re)start; at least ``lag + 2``.
    mu, sigma
        Prior centre and scale of the values; learnt from the warm-up when ``None``.
    prior_strength
        How many values' worth of weight the prior mean carries (kappa_0 > 0); small values let
        a new segment sit anywhere.
    reset_after_drift
        Start afresh with the value after a detection.

    Examples
    --------
    >>> import numpy as np
    >>> from watchkeeper.detectors import BOCPD
    >>> rng = np.random.default_rng(0)
    >>> stream = np.r_[rng.normal(0, 1, 300), rng.normal(3, 1, 300)]
    >>> BOCPD().update_many(stream)
    array([301])
    >>> det = BOCPD(reset_after_drift=False)  # carries on after a detection
    >>> det.update_many(stream[:310]).tolist()
    [301, 302, 303, 304]
    >>> det.run_length  # values since the change: the posterior dates it to value 300
    10
    """

    method: ClassVar[str] = "BOCPD"
    false_alarms_per_100k: ClassVar[float] = 3.0
    params: ClassVar[tuple[str, ...]] = (
        "hazard",
        "threshold",
        "lag",
        "max_run_length",
        "warm_start",
        "mu",
        "sigma",
        "prior_strength",
        "reset_after_drift",
    )

    def __init__(
        self,
        hazard: float = 0.001,
        threshold: float = 0.5,
        lag: int = 5,
        max_run_length: int = 300,
        warm_start: int = 20,
        mu: float | None = None,
        sigma: float | None = None,
        prior_strength: float = 1.0,
        reset_after_drift: bool = True,
    ) -> None:
        super().__init__()
        self.hazard = hazard
        self.threshold = threshold
        self.lag = lag
        self.max_run_length = max_run_length
        self.warm_start = warm_start
        self.mu = mu
        self.sigma = sigma
        self.prior_strength = prior_strength
        self.reset_after_drift = reset_after_drift

    def _validate(self) -> None:
        check_float(self.hazard, "hazard", low=0.0, high=1.0, low_open=True, high_open=True)
        check_float(self.threshold, "threshold", low=0.0, high=1.0, low_open=True, high_open=True)
        check_int(self.lag, "lag", low=0)
        if self.lag > _MAX_RUN:
            raise ValueError(f"lag must be an integer <= {_MAX_RUN}; got {self.lag!r}")
        check_int(self.max_run_length, "max_run_length", low=int(self.lag) + 3)
        if self.max_run_length > _MAX_RUN:
            raise ValueError(
                f"max_run_length must be an integer <= {_MAX_RUN}; got {self.max_run_length!r}"
            )
        check_int(self.warm_start, "warm_start", low=int(self.lag) + 2)
        if self.warm_start > _MAX_RUN:
            raise ValueError(f"warm_start must be an integer <= {_MAX_RUN}")
        if self.mu is not None:
            check_float(self.mu, "mu")
        if self.sigma is not None:
            check_float(self.sigma, "sigma", low=0.0, low_open=True)
        check_float(self.prior_strength, "prior_strength", low=0.0, low_open=True)

    def _fresh_state(self) -> State:
        size = int(self.max_run_length)
        return {
            "scalars": np.zeros(9, dtype=np.float64),
            "logp": np.full(size, -np.inf),
            "mu": np.zeros(size),
            "beta": np.zeros(size),
        }

    def _update_block(self, values: FloatArray) -> IntArray:
        from watchkeeper.detectors import _changepoint_kernels as kernels

        s = self._state
        assert s is not None
        hazard = float(self.hazard)
        det: IntArray = kernels.bocpd(
            values,
            s["scalars"],
            s["logp"],
            s["mu"],
            s["beta"],
            math.log(hazard),
            math.log1p(-hazard),
            float(self.prior_strength),
            2.0,
            math.nan if self.mu is None else float(self.mu),
            math.nan if self.sigma is None else float(self.sigma),
            float(self.warm_start),
            int(self.lag),
            float(self.threshold),
            bool(self.reset_after_drift),
        )
        self._drift = bool(s["scalars"][2])
        return det

    def _state_for_json(self, state: State) -> State:
        used = int(state["scalars"][1])  # run lengths in use; the rest is never read
        return {
            "scalars": state["scalars"],
            "logp": state["logp"][:used],
            "mu": state["mu"][:used],
            "beta": state["beta"][:used],
        }

    def _state_from_json(self, state: Mapping[str, Any]) -> State:
        from watchkeeper.detectors._base import _decode

        out = self._fresh_state()
        for key in ("scalars", "logp", "mu", "beta"):
            if key not in state:
                raise ValueError(f"state is missing {key!r} for {self.method}")
            saved = np.asarray(_decode(state[key]), dtype=np.float64).ravel()
            if saved.size > out[key].size:
                raise ValueError(f"state {key!r} is longer than max_run_length")
            out[key][: saved.size] = saved
        return out

    @property
    def change_probability(self) -> float:
        """Posterior probability that a change happened within the last ``lag + 1`` values."""
        return 0.0 if self._state is None else float(self._state["scalars"][7])

    @property
    def run_length(self) -> int:
        """The most probable number of values since the last change (0 during the warm-up)."""
        if self._state is None or self._state["scalars"][0] < self.warm_start:
            return 0
        used = int(self._state["scalars"][1])
        return int(np.argmax(self._state["logp"][:used]))


class SeasonalCUSUM(_Kernelled, RealDetector):
    r"""CUSUM on the residuals of a robust level, trend and seasonal model.

    Daily signals (a flag rate, a mean score, a volume) have a weekly pattern, a slow trend and
    autocorrelation; a detector that assumes independent values around a constant mean fires
    on all three. This one predicts each value from the last ``window`` values before it:

    - the seasonal profile (when ``period > 1`` and two cycles are known) is the median, at
      each phase, of the values minus their moving mean over one cycle;
    - the level is the median of the last ``level_window`` deseasonalised values, and the trend
      (with ``trend=True``) the difference between the medians of the newer and older halves
      of the history per value, extrapolated to the new value;

    and standardises the one-step residual :math:`e_t` robustly: centred on the median of the
    last ``window`` residuals, divided by 1.4826 × their median absolute deviation and clipped
    at ``±clip`` (one outlier cannot signal) and, with ``autocorrelation=True``, divided by
    :math:`\sqrt{(1 + \phi)/(1 - \phi)}` with :math:`\phi` the residuals' lag-1
    autocorrelation (the long-run standard deviation of an AR(1), so autocorrelated residuals
    do not make the sums wander). A two-sided tabular CUSUM with slack ``k`` and threshold
    ``h`` runs on the result. Medians make the model follow neither a single outlier nor the
    first values after a change, so a level shift leaves residuals of its size for about
    ``level_window / 2`` values.

    Defaults (``k=1``, ``h=12``, a level over 15 values) were chosen on generated daily series
    with a weekly pattern, trend, AR(1) noise and level shifts (benchmark W6 streaming). With
    them (``period=1``) the expected number of false alarms per 100,000 values of an
    unchanging Gaussian stream is at most :attr:`false_alarms_per_100k` (3; checked by
    simulation). Set ``period`` to the length of the cycle (7 for daily values with a weekly
    pattern, 24 for hourly values with a daily one).

    Parameters
    ----------
    period
        Length of the seasonal cycle in values; 1 for none.
    window
        Values of history the model is fitted on (default ``max(8 * period, 30)``).
    level_window
        Values the level is the median of (default ``max(period, 15)``, at most ``window``).
    trend
        Whether to extrapolate a trend.
    k, h
        Slack and threshold of the CUSUM, in units of the residuals' long-run scale.
    clip
        Standardised residuals are clipped to ``[-clip, clip]``.
    autocorrelation
        Also divide by the long-run factor of autocorrelated residuals (fewer false alarms on
        strongly autocorrelated signals, later detections everywhere).
    warm_start
        Values needed before the first prediction (default ``min(window, max(2 * period, 10))``);
        a further 10 residuals are needed before the first test.
    reset_after_drift
        Start afresh with the value after a detection.

    Examples
    --------
    >>> import numpy as np
    >>> from watchkeeper.detectors import SeasonalCUSUM
    >>> rng = np.random.default_rng(0)
    >>> days = np.arange(280)
    >>> weekly = 0.05 + 0.01 * np.sin(2 * np.pi * days / 7) + 1e-5 * days
    >>> rate = weekly + rng.normal(0, 0.002, days.size) + 0.01 * (days >= 200)
    >>> SeasonalCUSUM(period=7).update_many(rate)
    array([204])
    """

    method: ClassVar[str] = "SeasonalCUSUM"
    false_alarms_per_100k: ClassVar[float] = 3.0
    params: ClassVar[tuple[str, ...]] = (
        "period",
        "window",
        "level_window",
        "trend",
        "k",
        "h",
        "clip",
        "autocorrelation",
        "warm_start",
        "reset_after_drift",
    )

    def __init__(
        self,
        period: int = 1,
        window: int | None = None,
        level_window: int | None = None,
        trend: bool = True,
        k: float = 1.0,
        h: float = 12.0,
        clip: float = 4.0,
        autocorrelation: bool = False,
        warm_start: int | None = None,
        reset_after_drift: bool = True,
    ) -> None:
        super().__init__()
        self.period = period
        self.window = window
        self.level_window = level_window
        self.trend = trend
        self.k = k
        self.h = h
        self.clip = clip
        self.autocorrelation = autocorrelation
        self.warm_start = warm_start
        self.reset_after_drift = reset_after_drift

    def _sizes(self) -> tuple[int, int, int]:
        p = int(self.period)
        window = max(8 * p, 30) if self.window is None else int(self.window)
        level = max(p, 15) if self.level_window is None else int(self.level_window)
        warm = min(window, max(2 * p, 10)) if self.warm_start is None else int(self.warm_start)
        return window, min(level, window), warm

    def _validate(self) -> None:
        check_int(self.period, "period", low=1)
        if self.period > _MAX_WINDOW // 2:
            raise ValueError(f"period must be an integer <= {_MAX_WINDOW // 2}")
        if self.window is not None:
            check_int(self.window, "window", low=max(4, 2 * int(self.period)))
            if self.window > _MAX_WINDOW:
                raise ValueError(f"window must be an integer <= {_MAX_WINDOW}")
        if self.level_window is not None:
            check_int(self.level_window, "level_window", low=1)
        for flag in ("trend", "autocorrelation"):
            if not isinstance(getattr(self, flag), bool | np.bool_):
                raise ValueError(f"{flag} must be True or False; got {getattr(self, flag)!r}")
        check_float(self.k, "k", low=0.0)
        check_float(self.h, "h", low=0.0, low_open=True)
        check_float(self.clip, "clip", low=0.0, low_open=True)
        if self.warm_start is not None:
            check_int(self.warm_start, "warm_start", low=2)
            window, _, _ = self._sizes()
            if self.warm_start > window:
                raise ValueError(f"warm_start must be an integer <= window ({window})")

    def _fresh_state(self) -> State:
        window, _, _ = self._sizes()
        return {
            "scalars": np.zeros(9, dtype=np.float64),
            "ring": np.zeros(window),
            "resid": np.zeros(window),
        }

    def _update_block(self, values: FloatArray) -> IntArray:
        from watchkeeper.detectors import _changepoint_kernels as kernels

        s = self._state
        assert s is not None
        _, level, warm = self._sizes()
        det: IntArray = kernels.seasonal_residual(
            values,
            s["scalars"],
            s["ring"],
            s["resid"],
            int(self.period),
            level,
            bool(self.trend),
            warm,
            10,
            float(self.k),
            float(self.h),
            float(self.clip),
            0.9 if self.autocorrelation else 0.0,
            bool(self.reset_after_drift),
        )
        self._drift = bool(s["scalars"][7])
        return det

    @property
    def residual(self) -> float:
        """The last standardised residual fed to the CUSUM (0 before the first test)."""
        return 0.0 if self._state is None else float(self._state["scalars"][8])
