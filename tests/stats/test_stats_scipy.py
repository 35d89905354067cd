"""Agreement with scipy, the reference implementation, to 1e-9 on seeded data."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats as ss

from watchkeeper import stats as wk

SIZES = [(7, 7), (15, 23), (200, 200), (333, 1000), (12_000, 9_000)]


def _samples(n1: int, n2: int, seed: int, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n1)
    y = rng.normal(0.1, 1.2, size=n2)
    if ties:
        x, y = np.round(x, 1), np.round(y, 1)
    return x, y


@pytest.mark.parametrize("shift", [0.0, 0.01, 0.02, 0.03])
def test_ks_large_n_limit_within_its_stated_error_of_scipy(shift: float) -> None:
    # From an effective size of 10,000 on, the p-value is the corrected limit (docs: within
    # 0.16% relative of scipy's kstwo); the statistic stays exact.
    rng = np.random.default_rng(11)
    x, y = rng.normal(size=40_000), rng.normal(shift, size=30_000)
    ours = wk.ks(x, y)
    ref = ss.ks_2samp(x, y)
    assert ours.statistic == pytest.approx(ref.statistic, abs=1e-12)
    assert ours.p_value == pytest.approx(ref.pvalue, rel=2e-3, abs=1e-300)
    assert ours.drift == (ref.pvalue < 0.05)


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize(("n1", "n2"), SIZES)
def test_ks_matches_scipy(n1: int, n2: int, ties: bool) -> None:
    x, y = _samples(n1, n2, n1 + n2, ties)
    ours = wk.ks(x, y)
    ref = ss.ks_2samp(x, y)
    assert ours.statistic == pytest.approx(ref.statistic, abs=1e-9)
    assert ours.p_value == pytest.approx(ref.pvalue, abs=1e-9, rel=1e-9)


@pytest.mark.parametrize("mode", ["exact", "asymp"])
def test_ks_modes_match_scipy(mode: str) -> None:
    x, y = _samples(80, 120, 3)
    ours = wk.ks(x, y, mode=mode)
    ref = ss.ks_2samp(x, y, method=mode)
    assert ours.p_value == pytest.approx(ref.pvalue, abs=1e-9, rel=1e-9)
    assert ours.details["mode"] == mode


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize(("n1", "n2"), SIZES)
def test_anderson_darling_matches_scipy(n1: int, n2: int, ties: bool) -> None:
    x, y = _samples(n1, n2, 7 * n1 + n2, ties)
    ours = wk.anderson_darling(x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = ss.anderson_ksamp([x, y], variant="midrank")
    assert ours.statistic == pytest.approx(ref.statistic, abs=1e-9, rel=1e-9)
    assert ours.p_value == pytest.approx(ref.pvalue, abs=1e-9, rel=1e-9)


def test_anderson_darling_cap_is_flagged() -> None:
    x, y = _samples(500, 500, 1)
    assert wk.anderson_darling(x, y + 3).details["p_value_capped"] == "lower"
    assert wk.anderson_darling(x, x).details["p_value_capped"] == "upper"


@pytest.mark.parametrize("ties", [False, True])
@pytest.mark.parametrize(("n1", "n2"), SIZES)
def test_cramer_von_mises_matches_scipy(n1: int, n2: int, ties: bool) -> None:
    x, y = _samples(n1, n2, 11 * n1 + n2, ties)
    ours = wk.cramer_von_mises(x, y)
    ref = ss.cramervonmises_2samp(x, y)
    assert ours.statistic == pytest.approx(ref.statistic, abs=1e-9, rel=1e-9)
    assert ours.p_value == pytest.approx(ref.pvalue, abs=1e-9, rel=1e-9)


@pytest.mark.parametrize(("n1", "n2"), SIZES)
def test_wasserstein_and_energy_match_scipy(n1: int, n2: int) -> None:
    x, y = _samples(n1, n2, 13 * n1 + n2, ties=n1 == 200)
    w = wk.wasserstein(x, y)
    assert w.details["distance"] == pytest.approx(ss.wasserstein_distance(x, y), abs=1e-9)
    assert w.statistic == pytest.approx(w.details["distance"] / x.std(), rel=1e-12)
    e = wk.energy(x, y)
    assert e.details["distance"] == pytest.approx(ss.energy_distance(x, y), abs=1e-9)


def _categories(n1: int, n2: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    levels = np.array([f"c{i}" for i in range(k)], dtype=object)
    p = rng.dirichlet(np.ones(k))
    return rng.choice(levels, size=n1, p=p), rng.choice(levels, size=n2, p=p[::-1])


@pytest.mark.parametrize("k", [2, 3, 10])
@pytest.mark.parametrize(("n1", "n2"), [(30, 40), (1000, 700)])
def test_chi2_and_g_test_match_scipy(n1: int, n2: int, k: int) -> None:
    x, y = _categories(n1, n2, k, n1 + k)
    levels = sorted(set(x) | set(y))
    table = np.array([[np.sum(x == c) for c in levels], [np.sum(y == c) for c in levels]])
    ours = wk.chi2(x, y)
    ref = ss.chi2_contingency(table)
    assert ours.statistic == pytest.approx(ref.statistic, abs=1e-9, rel=1e-9)
    assert ours.p_value == pytest.approx(ref.pvalue, abs=1e-9, rel=1e-9)
    g = wk.g_test(x, y)
    ref_g = ss.chi2_contingency(table, lambda_="log-likelihood", correction=False)
    assert g.statistic == pytest.approx(ref_g.statistic, abs=1e-9, rel=1e-9)
    assert g.p_value == pytest.approx(ref_g.pvalue, abs=1e-9, rel=1e-9)


def test_chi2_counts_unseen_categories() -> None:
    x = np.array(["a"] * 50 + ["b"] * 50, dtype=object)
    y = np.array(["a"] * 40 + ["b"] * 40 + ["z"] * 20, dtype=object)
    r = wk.chi2(x, y)
    ref = ss.chi2_contingency([[50, 50, 0], [40, 40, 20]])
    assert r.p_value == pytest.approx(ref.pvalue, abs=1e-9)
    assert r.details["unseen_categories"] == ["z"]
    assert r.details["unseen_share"] == pytest.approx(0.2)


def test_fisher_matches_scipy() -> None:
    x = np.array([True] * 3 + [False] * 7)
    y = np.array([True] * 8 + [False] * 2)
    r = wk.fisher(x, y)
    ref = ss.fisher_exact([[7, 3], [2, 8]])
    assert r.p_value == pytest.approx(ref.pvalue, abs=1e-12)


def test_binned_distances_match_scipy_formulas() -> None:
    from scipy.spatial.distance import jensenshannon

    x, y = _categories(500, 800, 6, 5)
    levels = list(dict.fromkeys(np.concatenate([x, y]).tolist()))
    p = np.array([np.mean(x == c) for c in levels])
    q = np.array([np.mean(y == c) for c in levels])
    assert wk.jensen_shannon(x, y).statistic == pytest.approx(jensenshannon(p, q, base=2),
                                                              abs=1e-9)
    assert wk.hellinger(x, y).statistic == pytest.approx(
        np.sqrt(0.5 * ((np.sqrt(p) - np.sqrt(q)) ** 2).sum()), abs=1e-12)
    assert wk.linf(x, y).statistic == pytest.approx(np.abs(p - q).max(), abs=1e-12)
    cp = np.array([np.sum(x == c) for c in levels]) + 0.5
    cq = np.array([np.sum(y == c) for c in levels]) + 0.5
    ps, qs = cp / cp.sum(), cq / cq.sum()
    assert wk.psi(x, y).statistic == pytest.approx(((qs - ps) * np.log(qs / ps)).sum(),
                                                   abs=1e-12)
    assert wk.kl_divergence(x, y).statistic == pytest.approx(ss.entropy(ps, qs), abs=1e-12)


def test_adjust_p_values_matches_known_values() -> None:
    p = np.array([0.01, 0.02, 0.03, 0.04, 0.2])
    # Reference values computed by hand from the definitions.
    assert wk.adjust_p_values(p, "bonferroni").tolist() == pytest.approx(
        [0.05, 0.1, 0.15, 0.2, 1.0])
    assert wk.adjust_p_values(p, "holm").tolist() == pytest.approx([0.05, 0.08, 0.09, 0.09, 0.2])
    assert wk.adjust_p_values(p, "bh").tolist() == pytest.approx([0.05, 0.05, 0.05, 0.05, 0.2])
    bh = ss.false_discovery_control(p, method="bh")
    assert wk.adjust_p_values(p, "bh") == pytest.approx(bh, abs=1e-12)


def test_kolmogorov_sf_matches_scipy_special() -> None:
    from scipy.special import kolmogorov

    from watchkeeper.stats._numeric import kolmogorov_sf

    xs = np.r_[np.linspace(0.01, 3.0, 300), np.linspace(3.0, 8.0, 30)]
    ours = np.array([kolmogorov_sf(x) for x in xs])
    assert ours == pytest.approx(kolmogorov(xs), rel=1e-12, abs=1e-15)


@pytest.mark.parametrize(
    ("dofs", "rel"),
    [((1, 2, 3, 4, 5, 7, 10, 31, 100), 2e-13), ((255, 999, 1000), 1e-12), ((20_000,), 2e-10)],
)
def test_chi2_sf_matches_scipy_special_tails_included(dofs: tuple[int, ...], rel: float) -> None:
    # The numpy-free chi-squared survival function (no scipy.special on a first call) within
    # its documented relative error, from the bulk to p-values of 1e-300.
    from scipy.special import chdtrc

    from watchkeeper.stats._categorical import chi2_sf

    for dof in dofs:
        stats = np.r_[np.linspace(1e-3, 2.0 * dof, 200),
                      np.linspace(2.0 * dof, 6.0 * dof + 1500, 200)]
        ref = chdtrc(dof, stats)
        ours = np.array([chi2_sf(float(s), dof) for s in stats])
        keep = ref > 1e-300
        assert ours[keep] == pytest.approx(ref[keep], rel=rel, abs=0.0), dof
        assert (ours[~keep] < 1e-290).all(), dof
    assert chi2_sf(0.0, 3) == 1.0
    with pytest.raises(ValueError, match="dof"):
        chi2_sf(1.0, 0)


@pytest.mark.parametrize("compiled", [True, False])
def test_ks_statistic_both_paths_match_scipy_with_ties(
    compiled: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The compiled merge (when built) and the numpy form give scipy's statistic, ties included.
    from watchkeeper.stats import _numeric

    if compiled and _numeric._cstats is None:
        pytest.skip("the compiled KS merge is not built here")
    if not compiled:
        monkeypatch.setattr(_numeric, "_cstats", None)
    for seed in range(150):
        r = np.random.default_rng(seed)
        a = np.sort(r.integers(0, r.integers(2, 30), r.integers(1, 60)).astype(np.float64))
        b = np.sort(r.integers(0, 20, r.integers(1, 60)).astype(np.float64))
        expected = ss.ks_2samp(a, b).statistic
        assert _numeric._ks_statistic_sorted(a, b) == pytest.approx(expected, abs=1e-12), seed
    x, y = _samples(3000, 2000, 5)
    got = _numeric._ks_statistic_sorted(np.sort(x), np.sort(y))
    assert got == pytest.approx(ss.ks_2samp(x, y).statistic, abs=1e-12)
