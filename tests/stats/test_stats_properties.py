"""Property tests: identical samples never drift, order invariance, symmetry, invariance."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from watchkeeper import stats as wk

finite = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
samples = arrays(np.float64, st.integers(2, 60), elements=finite)
# Values on a 0.001 grid: an affine map then cannot merge distinct values by rounding.
gridded = arrays(np.float64, st.integers(2, 60),
                 elements=st.integers(-10**6, 10**6).map(lambda v: v / 1000))
cats = arrays(object, st.integers(2, 60), elements=st.sampled_from(["a", "b", "c", None]))

P_NUMERIC = [wk.ks, wk.anderson_darling, wk.cramer_von_mises]
D_NUMERIC = [wk.wasserstein, wk.energy, wk.psi, wk.jensen_shannon, wk.hellinger,
             wk.kl_divergence]
CATEGORICAL = [wk.chi2, wk.g_test, wk.psi, wk.jensen_shannon, wk.hellinger, wk.linf,
               wk.kl_divergence]
SYMMETRIC_NUMERIC = [wk.ks, wk.anderson_darling, wk.cramer_von_mises]
SYMMETRIC_CAT = [wk.chi2, wk.g_test, wk.psi, wk.jensen_shannon, wk.hellinger, wk.linf]
SETTINGS = settings(max_examples=40, deadline=None)


@SETTINGS
@given(samples)
def test_identical_numeric_samples_never_drift(x: np.ndarray) -> None:
    for fn in P_NUMERIC + D_NUMERIC:
        r = fn(x, x.copy())
        assert not r.drift, fn.__name__
        if r.p_value is not None:
            assert r.p_value > 0.2, fn.__name__
        else:
            assert r.statistic <= 1e-12, fn.__name__


@SETTINGS
@given(cats)
def test_identical_categorical_samples_never_drift(x: np.ndarray) -> None:
    for fn in CATEGORICAL:
        r = fn(x, x.copy())
        assert not r.drift, fn.__name__


@SETTINGS
@given(samples, samples, st.randoms(use_true_random=False))
def test_order_invariance(x: np.ndarray, y: np.ndarray, rnd) -> None:  # type: ignore[no-untyped-def]
    xp, yp = x.copy(), y.copy()
    rnd.shuffle(xp)
    rnd.shuffle(yp)
    for fn in P_NUMERIC + D_NUMERIC:
        a, b = fn(x, y), fn(xp, yp)
        assert np.isclose(a.statistic, b.statistic, rtol=1e-9, atol=1e-12), fn.__name__
        assert a.drift == b.drift, fn.__name__


@SETTINGS
@given(samples, samples)
def test_symmetric_numeric_tests(x: np.ndarray, y: np.ndarray) -> None:
    for fn in SYMMETRIC_NUMERIC:
        a, b = fn(x, y), fn(y, x)
        assert np.isclose(a.statistic, b.statistic, rtol=1e-9, atol=1e-12), fn.__name__
        assert np.isclose(a.p_value, b.p_value, rtol=1e-9, atol=1e-12), fn.__name__


@SETTINGS
@given(cats, cats)
def test_symmetric_categorical_measures(x: np.ndarray, y: np.ndarray) -> None:
    for fn in SYMMETRIC_CAT:
        a, b = fn(x, y), fn(y, x)
        assert np.isclose(a.statistic, b.statistic, rtol=1e-9, atol=1e-12), fn.__name__


@SETTINGS
@given(gridded, gridded, st.floats(1e-2, 1e2), st.floats(-1e2, 1e2))
def test_affine_invariance(x: np.ndarray, y: np.ndarray, scale: float, shift: float) -> None:
    # Rank tests are invariant under increasing affine maps; the normalised distances are
    # invariant under scaling both samples (they are in units of the reference's spread).
    for fn in P_NUMERIC:
        a, b = fn(x, y), fn(x * scale + shift, y * scale + shift)
        assert np.isclose(a.statistic, b.statistic, rtol=1e-6, atol=1e-9), fn.__name__
    for fn in (wk.wasserstein, wk.energy):
        a, b = fn(x, y), fn(x * scale, y * scale)
        assert np.isclose(a.statistic, b.statistic, rtol=1e-6, atol=1e-9), fn.__name__


@settings(max_examples=15, deadline=None)
@given(samples)
def test_mmd_identical_samples_never_drift(x: np.ndarray) -> None:
    m = np.column_stack([x, x[::-1]])
    for det in (wk.MMDDrift(n_permutations=40), wk.RFFMMDDrift(n_features=16)):
        assert not det.fit(m).test(m.copy()).drift, type(det).__name__
