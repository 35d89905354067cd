"""Properties of the flag band and the verdict over many operating points (hypothesis)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from watchkeeper.estimation import OperatingPoint, check_flags, expect_flags

rates = st.floats(0.0, 1.0, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    tpr=rates,
    fpr=rates,
    prevalence=rates,
    volume=st.integers(0, 20_000),
    frac=st.floats(0.0, 1.0),
)
def test_band_holds_the_mean_and_the_verdict_is_consistent(
    tpr: float, fpr: float, prevalence: float, volume: int, frac: float
) -> None:
    if tpr <= fpr:
        tpr, fpr = max(tpr, fpr), min(tpr, fpr)
        if tpr == fpr:
            return
    op = OperatingPoint(None, tpr, fpr)
    e = expect_flags(op, prevalence, volume)
    assert 0 <= e.low <= e.high <= volume
    assert e.low - 1 <= e.expected <= e.high + 1
    observed = round(frac * volume)
    c = check_flags(op, prevalence, volume, observed)
    assert 0.0 <= c.p_value <= 1.0
    assert (c.verdict == "as_expected") == (c.p_value >= 0.05)
    inside = e.low <= observed <= e.high
    if c.verdict != "as_expected":
        assert not inside or e.high == e.low  # a count in the band is never an alarm
    json.dumps(c.to_dict(), allow_nan=False)
