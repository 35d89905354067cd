"""Sequential decisions over a run of windows: repeated testing without inflated false alarms.

Testing every window at level alpha raises a false alarm in a run of L windows with probability
``1 - (1 - alpha)^L`` (64% for alpha = 0.01 over 100 windows). Two remedies, both fed the
p-value of each window:

``"spending"``
    Bonferroni spending over the run: window i of a run of ``run_length`` windows is tested at
    ``false_alarm_rate / run_length``, so the run's false-alarm probability is at most
    ``false_alarm_rate`` whatever the dependence between windows. After ``run_length`` windows
    a new run starts. Simple and exact, but weak against small lasting shifts.
``"cusum"``
    A one-sided CUSUM on ``z = Phi^-1(1 - p)`` (standard normal under the null):
    ``S = max(0, S + z - drift)``, alarm while ``S > h``. The bound ``h`` is calibrated by
    simulation so that ``P(max S > h within run_length windows) = false_alarm_rate`` under
    independent uniform p-values; small lasting shifts accumulate and are found sooner.

Windows compared with one fixed reference share its sampling noise, so their p-values are
positively dependent: spending stays valid under any dependence, while the CUSUM bound then
raises somewhat more false alarms than stated unless the reference is much larger than a
window. Spending is therefore the default.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

METHODS = ("spending", "cusum")


@functools.lru_cache(maxsize=64)
def cusum_bound(
    false_alarm_rate: float, run_length: int, drift: float = 0.5, runs: int = 20_000
) -> float:
    """The CUSUM bound ``h`` with the given false-alarm probability over ``run_length`` windows.

    Computed by simulating ``runs`` null runs (seeded, vectorised across runs), so the same
    arguments always give the same bound.

    Examples
    --------
    >>> h = cusum_bound(0.05, 100)
    >>> 3.0 < h < 8.0
    True
    """
    if not 0 < false_alarm_rate < 1:
        raise ValueError(f"false_alarm_rate must be in (0, 1), got {false_alarm_rate}")
    if run_length < 1:
        raise ValueError(f"run_length must be >= 1, got {run_length}")
    rng = np.random.default_rng(1729)
    s = np.zeros(runs)
    peak = np.zeros(runs)
    for _ in range(run_length):
        s = np.maximum(0.0, s + rng.standard_normal(runs) - drift)
        np.maximum(peak, s, out=peak)
    return float(np.quantile(peak, 1 - false_alarm_rate))


def p_to_z(p_value: float) -> float:
    """``Phi^-1(1 - p)``, clipped to [-8, 8] so p = 0 or 1 stay finite.

    >>> round(p_to_z(0.05), 3)
    1.645
    """
    from statistics import NormalDist

    p = min(max(float(p_value), 1e-15), 1 - 1e-15)
    return max(-8.0, min(8.0, NormalDist().inv_cdf(1 - p)))


class SequentialTest:
    """One stream of p-values judged sequentially; state is a plain dict for the store.

    Parameters
    ----------
    method
        ``"spending"`` or ``"cusum"``.
    false_alarm_rate
        Probability of any alarm over ``run_length`` windows without change.
    run_length
        Windows the false-alarm rate is stated over.
    drift
        CUSUM reference value (half the shift in ``z`` it is tuned to find fastest).

    Examples
    --------
    >>> t = SequentialTest("cusum", 0.05, 100)
    >>> state = None
    >>> for p in [0.5, 0.3, 0.001, 0.0001, 0.001]:
    ...     alarm, state = t.update(p, state)
    >>> alarm
    True
    """

    def __init__(
        self,
        method: str = "spending",
        false_alarm_rate: float = 0.05,
        run_length: int = 100,
        drift: float = 0.5,
    ) -> None:
        self.method = method
        self.false_alarm_rate = false_alarm_rate
        self.run_length = run_length
        self.drift = drift

    def validate(self) -> SequentialTest:
        """Raise ``ValueError`` naming the bad field."""
        if self.method not in METHODS:
            raise ValueError(f"sequential.method must be one of {METHODS}, got {self.method!r}")
        if not 0 < float(self.false_alarm_rate) < 1:
            raise ValueError(
                f"sequential.false_alarm_rate must be in (0, 1), got {self.false_alarm_rate}"
            )
        if int(self.run_length) < 1:
            raise ValueError(f"sequential.run_length must be >= 1, got {self.run_length}")
        if not math.isfinite(self.drift) or self.drift < 0:
            raise ValueError(f"sequential.drift must be >= 0, got {self.drift}")
        return self

    def update(
        self, p_value: float | None, state: dict[str, Any] | None
    ) -> tuple[bool, dict[str, Any]]:
        """Feed one window's p-value (None: no test this window); return (alarm, new state)."""
        st = dict(state or {"i": 0, "s": 0.0})
        if p_value is None or not math.isfinite(p_value):
            return bool(st.get("alarm", False)), st
        st["i"] = int(st["i"]) + 1
        if self.method == "spending":
            if st["i"] > self.run_length:
                st["i"] = 1  # a new run: the budget is spent afresh
            alarm = p_value < self.false_alarm_rate / self.run_length
        else:
            st["s"] = max(0.0, float(st["s"]) + p_to_z(p_value) - self.drift)
            alarm = st["s"] > cusum_bound(
                float(self.false_alarm_rate), int(self.run_length), float(self.drift)
            )
        st["alarm"] = bool(alarm)
        return bool(alarm), st

    def to_dict(self) -> dict[str, Any]:
        """Plain data, as in a rule's ``sequential`` entry."""
        return {
            "method": self.method,
            "false_alarm_rate": self.false_alarm_rate,
            "run_length": self.run_length,
            "drift": self.drift,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SequentialTest:
        """Inverse of :meth:`to_dict`; missing keys take their defaults."""
        known = {"method", "false_alarm_rate", "run_length", "drift"}
        extra = set(d) - known
        if extra:
            raise ValueError(f"sequential: unknown key(s) {', '.join(sorted(extra))}")
        return cls(
            str(d.get("method", "spending")),
            float(d.get("false_alarm_rate", 0.05)),
            int(d.get("run_length", 100)),
            float(d.get("drift", 0.5)),
        )
