"""Calibration by simulation: false-alarm rate near alpha under no drift, power on known shifts.

Binomial bands: with 1,000 pairs at alpha=0.05 the rate's standard error is 0.0069, so
[0.03, 0.07] is about ±3 standard errors. Permutation and classifier tests run fewer pairs and
are checked against a correspondingly wider band.
"""

from __future__ import annotations

import numpy as np
import pytest

from watchkeeper import stats as wk

pytestmark = pytest.mark.slow
ALPHA = 0.05


def _rate(test, make, trials: int, seed: int) -> float:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(trials):
        x, y = make(rng)
        hits += bool(test(x, y).drift)
    return hits / trials


def _normal_pair(n: int, shift: float = 0.0):  # type: ignore[no-untyped-def]
    return lambda rng: (rng.normal(size=n), rng.normal(shift, size=n))


def _binned_pair(n: int, shift: float = 0.0):  # type: ignore[no-untyped-def]
    # A categorical column: a normal cut into 8 categories, so "0.2 sigma" has a meaning.
    edges = np.linspace(-2, 2, 7)
    labels = np.array([f"c{i}" for i in range(8)], dtype=object)
    return lambda rng: (labels[np.searchsorted(edges, rng.normal(size=n))],
                        labels[np.searchsorted(edges, rng.normal(shift, size=n))])


P_TESTS = {
    "ks": (wk.ks, _normal_pair),
    "anderson_darling": (wk.anderson_darling, _normal_pair),
    "cramer_von_mises": (wk.cramer_von_mises, _normal_pair),
    "chi2": (wk.chi2, _binned_pair),
    "g_test": (wk.g_test, _binned_pair),
}


@pytest.mark.parametrize("name", list(P_TESTS))
def test_false_alarm_rate_under_no_drift(name: str) -> None:
    test, pair = P_TESTS[name]
    rate = _rate(test, pair(200), trials=1000, seed=1)
    assert 0.03 <= rate <= 0.07, rate


@pytest.mark.parametrize("name", list(P_TESTS))
def test_power_for_a_0_2_sigma_shift_at_5000(name: str) -> None:
    test, pair = P_TESTS[name]
    assert _rate(test, pair(5000, 0.2), trials=100, seed=2) >= 0.95


def test_fisher_never_exceeds_alpha() -> None:
    # Fisher's test is exact and conservative: its rate is at most alpha.
    make = lambda rng: (rng.random(30) < 0.3, rng.random(30) < 0.3)  # noqa: E731
    assert _rate(wk.fisher, make, trials=1000, seed=3) <= 0.06


def test_column_drift_family_wise_rate() -> None:
    # Ten unchanged columns, Holm correction: the dataset false-alarm rate stays below alpha.
    def make(rng: np.random.Generator):  # type: ignore[no-untyped-def]
        return ({f"c{j}": rng.normal(size=200) for j in range(10)},
                {f"c{j}": rng.normal(size=200) for j in range(10)})

    rate = _rate(lambda x, y: wk.detect_drift(x, y, n_jobs=1), make, trials=300, seed=4)
    assert rate <= 0.08, rate


def _mv_pair(n: int, d: int, shift: float = 0.0):  # type: ignore[no-untyped-def]
    return lambda rng: (rng.normal(size=(n, d)), rng.normal(size=(n, d)) + shift)


def test_mmd_false_alarm_rate() -> None:
    det = lambda x, y: wk.MMDDrift(n_permutations=100).fit(x).test(y)  # noqa: E731
    rate = _rate(det, _mv_pair(100, 5), trials=200, seed=5)
    assert 0.01 <= rate <= 0.10, rate  # ±3 standard errors at 200 pairs


def test_rff_and_linear_mmd_false_alarm_rates() -> None:
    rff = lambda x, y: wk.RFFMMDDrift(n_features=64).fit(x).test(y)  # noqa: E731
    rate = _rate(rff, _mv_pair(300, 4), trials=300, seed=6)
    assert 0.015 <= rate <= 0.09, rate  # ±3 standard errors at 300 pairs
    lin = lambda x, y: wk.LinearMMDDrift().fit(x).test(y)  # noqa: E731
    rate = _rate(lin, _mv_pair(600, 4), trials=300, seed=7)
    assert 0.015 <= rate <= 0.09, rate


def test_classifier_false_alarm_rate_is_at_most_alpha() -> None:
    det = lambda x, y: wk.ClassifierDrift(n_folds=3).fit(x).test(y)  # noqa: E731
    rate = _rate(det, _mv_pair(100, 4), trials=50, seed=8)
    assert rate <= 0.12, rate  # Bonferroni over folds: conservative by construction


def test_multivariate_power_on_a_0_2_sigma_shift() -> None:
    for det in (lambda x, y: wk.MMDDrift().fit(x).test(y),
                lambda x, y: wk.RFFMMDDrift().fit(x).test(y),
                lambda x, y: wk.ClassifierDrift().fit(x).test(y)):
        assert _rate(det, _mv_pair(1000, 4, 0.2), trials=6, seed=9) >= 5 / 6


def test_projection_false_alarm_rate() -> None:
    det = lambda x, y: wk.ProjectionDrift(n_components=5).fit(x).test(y)  # noqa: E731
    rate = _rate(det, _mv_pair(300, 12), trials=300, seed=10)
    assert rate <= 0.08, rate
