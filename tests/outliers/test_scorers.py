"""Outlier scorers: exactness against oracles, conformal p-values uniform under no shift, power."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import cdist

from watchkeeper.outliers import (
    IsolationForestScorer,
    IVFIndex,
    KNNScorer,
    MahalanobisScorer,
    OutlierResult,
    exact_kth_distance,
)

SCORERS = {
    "knn_exact": lambda: KNNScorer(k=5, index="exact"),
    "knn_ivf": lambda: KNNScorer(k=5, index="ivf", n_probe=2, n_components=8),
    "mahalanobis": lambda: MahalanobisScorer(),
    "isolation_forest": lambda: IsolationForestScorer(n_estimators=50),
}


MIX = np.random.default_rng(11).normal(size=(12, 12)) / np.sqrt(12)


def _data(rng: np.random.Generator, n: int) -> np.ndarray:
    # Correlated, skewed features: what a real embedding looks like more than N(0, I).
    return np.exp(0.3 * rng.normal(size=(n, 12))) @ MIX


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_p_values_uniform_under_no_shift(name: str, rng: np.random.Generator) -> None:
    scorer = SCORERS[name]().fit(_data(rng, 8000))
    fresh = _data(rng, 1500)
    p = scorer.p_values(fresh)
    n_cal = scorer.calibration_scores_.size
    # Given one calibration set the p-values are uniform up to the calibration sample's own
    # error, so the KS distance to U(0, 1) is a two-sample distance (calibration vs fresh).
    n_eff = round(n_cal * 1500 / (n_cal + 1500))
    assert stats.kstest(p, "uniform").statistic < stats.kstwo.isf(0.001, n_eff)
    result = scorer.score(fresh, alpha=0.05)
    # Per-event false-positive rate at alpha, within its band (test draws + calibration draw).
    band = 4 * np.sqrt(0.05 * 0.95 * (1 / 1500 + 1 / n_cal))
    assert abs(result.n_outliers / 1500 - 0.05) < band


@pytest.mark.parametrize("name", sorted(SCORERS))
def test_planted_outliers_are_found(name: str, rng: np.random.Generator) -> None:
    reference = _data(rng, 4000)
    scorer = SCORERS[name]().fit(reference)
    normal = _data(rng, 150)
    planted = _data(rng, 50) + 3.0 * reference.std(axis=0) * np.sign(rng.normal(size=(50, 12)))
    result = scorer.score(np.r_[normal, planted], alpha=0.01)
    assert result.outlier[150:].mean() >= 0.9
    assert result.outlier[:150].mean() <= 0.05


def test_exact_knn_agrees_with_scipy(rng: np.random.Generator) -> None:
    ref = rng.normal(size=(700, 9)).astype(np.float32)
    q = rng.normal(size=(600, 9)).astype(np.float32)
    oracle = np.sort(cdist(q.astype(np.float64), ref.astype(np.float64)), axis=1)[:, 6]
    # Tiles of 256 queries x 50 rows: several of each, and a short last one of both.
    got = exact_kth_distance(q, ref, 7, block_bytes=4 * 256 * 50, n_jobs=1)
    np.testing.assert_allclose(got, oracle, rtol=1e-4, atol=1e-4)
    # Worker threads take shares of the queries: the same distances.
    np.testing.assert_allclose(exact_kth_distance(q, ref, 7, n_jobs=3), got, rtol=1e-5)
    # Fewer rows than k: no k-th neighbour.
    assert np.all(np.isinf(exact_kth_distance(q[:3], ref[:5], 7)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k": 0}, "k: must be a positive integer"),
        ({"k": 2.0}, "k: must be a positive integer"),
        ({"block_bytes": 0}, "block_bytes: must be a positive integer"),
        ({"n_jobs": 0}, "n_jobs: must be a positive integer"),
        ({"n_jobs": True}, "n_jobs: must be a positive integer"),
        ({"queries": np.zeros((2, 3))}, r"queries: expected shape \(n, 4\)"),
        ({"reference": np.ones(9)}, "reference: expected a 2-D array"),
    ],
)
def test_exact_knn_bad_input_names_the_field(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"queries": np.zeros((2, 4)), "reference": np.ones((9, 4)), "k": 2}
    with pytest.raises(ValueError, match=message):
        exact_kth_distance(**{**args, **kwargs})  # type: ignore[arg-type]


def test_ivf_recall(rng: np.random.Generator) -> None:
    centres = rng.normal(scale=4, size=(40, 24))
    ref = (centres[rng.integers(0, 40, 20000)] + rng.normal(size=(20000, 24))).astype(np.float32)
    q = (centres[rng.integers(0, 40, 500)] + rng.normal(size=(500, 24))).astype(np.float32)
    exact = exact_kth_distance(q, ref, 10)
    index = IVFIndex(n_probe=8, n_components=None).fit(ref)
    approx = index.kth_distance(q, 10)
    assert np.all(approx >= exact - 1e-3)  # a subset of the neighbours: never closer
    assert np.median(approx / exact) < 1.02
    # With one list the index is exact.
    one = IVFIndex(n_lists=1, n_components=None).fit(ref)
    np.testing.assert_allclose(one.kth_distance(q, 10), exact, rtol=1e-4)


def test_ivf_with_empty_lists_and_no_queries(rng: np.random.Generator) -> None:
    # Three distinct rows repeated: k-means starts from duplicated rows, so lists end empty.
    ref = np.repeat(rng.normal(size=(3, 5)), 200, axis=0).astype(np.float32)
    index = IVFIndex(n_lists=12, n_probe=12, n_components=None).fit(ref)
    assert np.any(np.diff(index.offsets_) == 0)
    q = rng.normal(size=(40, 5)).astype(np.float32)
    np.testing.assert_allclose(index.kth_distance(q, 4), exact_kth_distance(q, ref, 4), rtol=1e-4)
    dist, ids = index.search(q[:0], 4)
    assert dist.shape == (0, 4) and ids.shape == (0, 4)
    assert exact_kth_distance(q[:0], ref, 4).shape == (0,)


def test_ivf_search_returns_true_neighbours_and_threads_agree(rng: np.random.Generator) -> None:
    centres = rng.normal(scale=3, size=(30, 20))
    ref = (centres[rng.integers(0, 30, 6000)] + rng.normal(size=(6000, 20))).astype(np.float32)
    q = (centres[rng.integers(0, 30, 900)] + rng.normal(size=(900, 20))).astype(np.float32)
    index = IVFIndex(n_probe=3, n_components=8, n_jobs=1).fit(ref)
    dist, ids = index.search(q, 7)
    # Every returned neighbour is a real row at the distance reported, nearest first.
    np.testing.assert_allclose(
        dist, np.linalg.norm(ref[ids] - q[:, None, :], axis=2), rtol=1e-4, atol=1e-4
    )
    assert np.all(np.diff(dist, axis=1) >= 0)
    assert np.all(ids >= 0) and ids.dtype == np.int64
    assert np.all(np.diff(np.sort(ids, axis=1), axis=1) > 0)  # no row twice
    # Recall@7 against the exact neighbours (cdist): high, not perfect, and never closer.
    full = cdist(q.astype(np.float64), ref.astype(np.float64))
    true = np.argsort(full, axis=1)[:, :7]
    recall = np.mean([len(set(a) & set(b)) / 7 for a, b in zip(ids, true, strict=True)])
    assert 0.5 < recall < 1.0
    assert np.all(dist[:, -1] >= np.sort(full, axis=1)[:, 6] - 1e-4)
    # Worker threads split the queries, not the work per query: the same answer.
    index.n_jobs = 3
    index.CHUNK = 100  # several rounds of chunks per worker
    dist3, ids3 = index.search(q, 7)
    np.testing.assert_array_equal(ids3, ids)
    np.testing.assert_allclose(dist3, dist, rtol=1e-5)  # float32 products in other blocks
    with pytest.raises(ValueError, match="queries: expected shape"):
        index.search(q[:, :5], 7)
    with pytest.raises(ValueError, match="k: must be a positive integer"):
        index.search(q, 0)
    index.n_probe = 0
    with pytest.raises(ValueError, match="n_probe: must be a positive integer"):
        index.search(q, 7)


def test_mahalanobis_agrees_with_sklearn_ledoit_wolf(rng: np.random.Generator) -> None:
    from sklearn.covariance import LedoitWolf

    x = rng.normal(size=(400, 6)) * [1, 2, 3, 4, 5, 6]
    scorer = MahalanobisScorer(calibration_share=0.5, seed=3).fit(x)
    train = x[np.random.default_rng(3).permutation(400)[200:]]
    oracle = np.sqrt(LedoitWolf().fit(train).mahalanobis(x[:20]))
    np.testing.assert_allclose(scorer.score_samples(x[:20]), oracle, rtol=1e-6)


@pytest.mark.parametrize("index", ["exact", "ivf"])
def test_scores_do_not_depend_on_worker_threads(index: str, rng: np.random.Generator) -> None:
    reference, x = _data(rng, 3000), _data(rng, 700)
    one = KNNScorer(k=4, index=index, n_jobs=1).fit(reference)
    three = KNNScorer(k=4, index=index, n_jobs=3).fit(reference)
    np.testing.assert_allclose(three.score_samples(x), one.score_samples(x), rtol=1e-5)
    np.testing.assert_allclose(three.calibration_scores_, one.calibration_scores_, rtol=1e-5)


def test_nan_rows_are_not_scored_and_not_flagged(rng: np.random.Generator) -> None:
    scorer = KNNScorer(k=3).fit(rng.normal(size=(500, 4)))
    x = rng.normal(size=(5, 4))
    x[2, 1] = np.nan
    r = scorer.score(x, alpha=0.5)
    assert np.isnan(r.scores[2]) and np.isnan(r.p_values[2]) and not r.outlier[2]
    assert r.to_dict()["scored"] == 4


@pytest.mark.parametrize(
    ("make", "call", "message"),
    [
        (lambda: KNNScorer(k=0), "fit", "k: must be a positive integer"),
        (lambda: KNNScorer(index="ivf", n_probe=0), "fit", "n_probe: must be a positive"),
        (lambda: KNNScorer(index="ivf", n_probe=True), "fit", "n_probe: must be a positive"),
        (lambda: KNNScorer(index="hnsw"), "fit", "index: must be"),
        (lambda: KNNScorer(index="ivf", n_jobs=0), "fit", "n_jobs: must be a positive"),
        (lambda: KNNScorer(index="ivf", n_lists=2.5), "fit", "n_lists: must be a positive"),
        (lambda: KNNScorer(calibration_share=1.5), "fit", "calibration_share"),
        (lambda: KNNScorer(), "small", "reference: 30 complete rows"),
        (lambda: KNNScorer(), "text", "reference: expected numbers"),
        (lambda: KNNScorer(), "unfitted", "call fit(reference)"),
        (lambda: KNNScorer(), "columns", "x: 3 columns, but the scorer was fitted on 4"),
        (lambda: KNNScorer(), "alpha", "alpha: must be in (0, 1)"),
    ],
)
def test_bad_input_names_the_field(make, call, message, rng: np.random.Generator) -> None:  # type: ignore[no-untyped-def]
    scorer = make()
    good = rng.normal(size=(400, 4))
    pattern = message.replace("(", r"\(").replace(")", r"\)")
    with pytest.raises((ValueError, RuntimeError), match=pattern):
        if call == "fit":
            scorer.fit(good)
        elif call == "small":
            scorer.fit(good[:30])
        elif call == "text":
            scorer.fit(np.array([["a", "b"]] * 400))
        elif call == "unfitted":
            scorer.score(good)
        elif call == "columns":
            scorer.fit(good).score(good[:, :3])
        else:
            scorer.fit(good).score(good, alpha=1.0)


def test_result_is_frozen_and_serialises() -> None:
    r = OutlierResult("knn", np.array([1.0]), np.array([0.5]), np.array([False]), 0.1, {"k": 1})
    assert r.to_dict(events=True)["p_values"] == [0.5]
    with pytest.raises(TypeError):
        r.details["k"] = 2  # type: ignore[index]


@pytest.mark.slow
@pytest.mark.parametrize("index", ["exact", "ivf"])
def test_false_positive_rate_over_many_calibrations(index: str) -> None:
    # Marginal validity: averaged over calibration draws, P(p <= alpha) <= alpha, for the
    # approximate index as for exact search (it is calibrated through the same index).
    rates = []
    for seed in range(40):
        gen = np.random.default_rng(seed)
        scorer = KNNScorer(k=5, index=index, n_probe=1, seed=seed).fit(gen.normal(size=(1200, 6)))
        rates.append(scorer.score(gen.normal(size=(400, 6)), alpha=0.05).n_outliers / 400)
    assert abs(np.mean(rates) - 0.05) < 3 * np.sqrt(0.05 * 0.95 / 16000) + 0.005
