"""Past the exact cut-off the flag band comes from a Cornish-Fisher expansion: its cost does not
grow with the volume, and it agrees with the exact convolution where both can be computed."""

from __future__ import annotations

import time

import numpy as np
import pytest

import watchkeeper.estimation._operating as operating
from watchkeeper.estimation import (
    OperatingPoint,
    check_flags,
    expect_class_counts,
    expect_flags,
)


def _both(
    monkeypatch: pytest.MonkeyPatch, op: OperatingPoint, prevalence: float, volume: int
) -> tuple[operating._FlagCount, operating._FlagCount]:
    validation = op.n_positive is not None
    monkeypatch.setattr(operating, "EXACT_SUPPORT", 10**9)
    exact = operating._FlagCount(op.validated(), prevalence, volume, validation)
    monkeypatch.setattr(operating, "EXACT_SUPPORT", 0)
    approx = operating._FlagCount(op.validated(), prevalence, volume, validation)
    assert exact.exact and not approx.exact
    return exact, approx


@pytest.mark.parametrize(
    ("op", "prevalence", "volume", "band_tol"),
    [
        # binomial rates: within one flag
        (OperatingPoint(None, 0.9, 0.02), 0.1, 3_000_000, 1),
        (OperatingPoint(None, 0.99, 0.001), 0.01, 20_000_000, 1),
        # validation counts (beta-binomial, heavier tails): within 0.1% of sigma
        (OperatingPoint(None, 0.9, 0.02, 500, 4500), 0.1, 3_000_000, 0.001),
        (OperatingPoint(None, 0.8, 0.05, 200, 800), 0.2, 200_000, 0.001),
    ],
)
def test_approximation_matches_the_exact_band(
    monkeypatch: pytest.MonkeyPatch,
    op: OperatingPoint,
    prevalence: float,
    volume: int,
    band_tol: float,
) -> None:
    exact, approx = _both(monkeypatch, op, prevalence, volume)
    tol = band_tol if band_tol >= 1 else band_tol * exact.sd
    for coverage in (0.9, 0.95, 0.99):
        (lo_e, hi_e), (lo_a, hi_a) = exact.band(coverage), approx.band(coverage)
        assert abs(lo_e - lo_a) <= tol and abs(hi_e - hi_a) <= tol, (coverage, lo_e, lo_a)
    for z in (-3.0, -2.0, 0.0, 2.0, 3.0):
        k = round(exact.mean + z * exact.sd)
        assert approx.at_most(k) == pytest.approx(exact.at_most(k), abs=2e-5, rel=0.02)
        assert approx.at_least(k) == pytest.approx(exact.at_least(k), abs=2e-5, rel=0.02)


def test_cost_does_not_grow_with_the_volume() -> None:
    op = OperatingPoint(None, 0.9, 0.02, 500, 4500)
    expect_flags(op, 0.1, 10**6)  # imports scipy outside the timing
    start = time.perf_counter()
    e = expect_flags(op, 0.1, 10**15)
    c = check_flags(op, 0.1, 10**15, observed=10**14)
    assert time.perf_counter() - start < 0.5
    assert e.method.endswith("Cornish-Fisher")
    assert e.low < e.expected < e.high
    assert c.p_value < 0.05 and c.verdict == "prior_shift"
    assert 0 <= c.p_value <= 1


def test_small_volumes_stay_exact() -> None:
    e = expect_flags(OperatingPoint(None, tpr=0.9, fpr=0.02), prevalence=0.1, volume=1000)
    assert e.method == "binomial" and (e.low, e.high) == (89, 128)
    f = expect_flags(
        OperatingPoint(None, tpr=0.9, fpr=0.02), prevalence=0.1, volume=1000, mix="fixed"
    )
    assert f.method == "poisson-binomial"
    assert (f.low, f.high) == (98, 118)


@pytest.mark.parametrize("rho", [0.0, 1e-4, 0.003])
def test_random_mix_approximation_matches_the_exact_band(
    monkeypatch: pytest.MonkeyPatch, rho: float
) -> None:
    op = OperatingPoint(None, 0.9, 0.02, 500, 4500).validated()
    bands = []
    for support in (10**9, 0):
        monkeypatch.setattr(operating, "EXACT_SUPPORT", support)
        dist = operating._FlagCount(op, 0.1, 3_000_000, True, "random", rho)
        bands.append((dist, dist.band(0.95), dist.band(0.99)))
    (exact, *b_exact), (approx, *b_approx) = bands
    assert exact.exact and not approx.exact
    for (lo_e, hi_e), (lo_a, hi_a) in zip(b_exact, b_approx, strict=True):
        assert abs(lo_e - lo_a) <= 0.002 * exact.sd and abs(hi_e - hi_a) <= 0.002 * exact.sd


def test_tails_and_extremes_of_the_approximation() -> None:
    op = OperatingPoint(None, 0.9, 0.02)
    for observed in (0, 10**11, 10**12):
        c = check_flags(op, 0.1, 10**12, observed=observed)
        assert 0.0 <= c.p_value <= 1.0
    assert check_flags(op, 0.1, 10**12, observed=108 * 10**9).verdict == "as_expected"


def test_class_counts_at_a_large_volume_agree_with_the_exact_band(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conf = [[90, 5], [10, 95]]
    exact = expect_class_counts(conf, [0.8, 0.2], 10**6)
    monkeypatch.setattr(operating, "EXACT_SUPPORT", 0)
    approx = expect_class_counts(conf, [0.8, 0.2], 10**6)
    assert np.abs(exact.low - approx.low).max() <= 1
    assert np.abs(exact.high - approx.high).max() <= 1
    start = time.perf_counter()
    big = expect_class_counts(conf, [0.8, 0.2], 10**15)
    assert time.perf_counter() - start < 0.5
    assert (big.low < big.expected).all() and (big.expected < big.high).all()
