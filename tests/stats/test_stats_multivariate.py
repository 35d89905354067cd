"""MMD (quadratic, linear, random features), classifier test, projections and BBSD."""

from __future__ import annotations

import json

import numpy as np
import pytest

from watchkeeper import stats as wk
from watchkeeper.stats._mmd import median_bandwidth, mmd_permutation_stats


def make_w3(n: int = 2000, d: int = 128, seed: int = 0) -> dict[str, np.ndarray]:
    """The recipe of benchmarks/w3_embeddings.py (unit-length embeddings, +0.1 in 10 dims)."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(16, d)) / 4.0

    def sample(k: int) -> np.ndarray:
        z = rng.normal(size=(k, 16)) @ mixing + rng.normal(scale=0.5, size=(k, d))
        return (z / np.linalg.norm(z, axis=1, keepdims=True)).astype(np.float32)

    ref, cur, control = sample(n), sample(n), sample(n)
    cur[:, :10] += np.float32(0.1)
    return {"ref": ref, "drift": cur, "control": control}


def _brute_mmd2(x: np.ndarray, y: np.ndarray, sigma: float) -> float:
    def k(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.exp(-((a[:, None, :] - b[None, :, :]) ** 2).sum(-1) / (2 * sigma**2))

    n, m = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1))
                 + (kyy.sum() - np.trace(kyy)) / (m * (m - 1)) - 2 * k(x, y).mean())


def test_mmd_statistic_matches_brute_force_and_blocks(rng: np.random.Generator) -> None:
    x, y = rng.normal(size=(60, 4)), rng.normal(0.3, size=(45, 4))
    z = np.vstack([x, y])
    whole = mmd_permutation_stats(z, 60, 1.7, 30, seed=1)
    blocked = mmd_permutation_stats(z, 60, 1.7, 30, seed=1, block_rows=7)
    assert whole[0] == pytest.approx(_brute_mmd2(x, y, 1.7), abs=1e-6)
    assert blocked == pytest.approx(whole, abs=1e-6)
    # every permuted statistic is the MMD of that relabelling
    perm = np.random.default_rng(1).permuted(np.tile(np.arange(105), (30, 1)), axis=1)[0]
    xs, ys = z[perm[:60]], z[perm[60:]]
    assert whole[1] == pytest.approx(_brute_mmd2(xs, ys, 1.7), abs=1e-6)



@pytest.mark.parametrize(
    ("offset", "sigma", "path"),
    [
        (0.0, 1.7, "float32"),  # the usual reach: a few bandwidths
        (1e6, 1.7, "float32"),  # far from the origin: centred first, so float32 still does
        (0.0, 0.01, "float64"),  # hundreds of bandwidths
        (0.0, 1e-9, "exact"),  # a width tiny against the spread: pairs of equal rows only
    ],
)
def test_mmd_is_exact_whatever_the_bandwidth_and_offset(
    rng: np.random.Generator, offset: float, sigma: float, path: str
) -> None:
    from watchkeeper.stats._mmd import _GaussianKernelRows

    x, y = rng.normal(size=(30, 3)), rng.normal(0.3, size=(25, 3))
    x[:5] = x[5:10]  # repeated rows: their kernel is 1 at any width
    y[:4] = x[:4]
    x, y = x + offset, y + offset
    z = np.vstack([x, y])
    rows = _GaussianKernelRows(z, sigma)
    assert rows.exact == (path == "exact")
    assert rows.exact or (rows._z.dtype == np.float32) == (path == "float32")
    got = mmd_permutation_stats(z, 30, sigma, 5, seed=1)[0]
    assert np.isfinite(got)
    assert got == pytest.approx(_brute_mmd2(x - offset, y - offset, sigma), abs=1e-5)


def test_mmd_identical_samples_with_a_vanishing_bandwidth_do_not_drift() -> None:
    # Found by the property test: the median heuristic gave a width of 7e-147 and the scaled
    # data overflowed float32, so the statistic was NaN and the p-value 1 / (1 + B).
    m = np.array([[0.0, 4.74707714e-147], [1.0, 1.0], [4.74707714e-147, 0.0]])
    r = wk.MMDDrift(n_permutations=40).fit(m).test(m.copy())
    assert np.isfinite(r.statistic) and not r.drift


def test_mmd_p_value_and_details(rng: np.random.Generator) -> None:
    det = wk.MMDDrift(n_permutations=50).fit(rng.normal(size=(200, 3)))
    r = det.test(rng.normal(1.0, size=(150, 3)))
    assert r.drift and r.p_value == pytest.approx(1 / 51)
    assert r.details["n_current"] == 150 and r.details["bandwidth"] > 0
    json.dumps(r.to_dict())


def test_median_bandwidth_is_median_distance() -> None:
    z = np.array([[0.0], [1.0], [2.0], [5.0]])  # cross-half distances 2, 5, 1, 4
    assert median_bandwidth(z) == pytest.approx(3.0)


def test_rff_summaries_merge_associatively(rng: np.random.Generator) -> None:
    det = wk.RFFMMDDrift(n_features=32, seed=3).fit(rng.normal(size=(500, 6)))
    a, b, c = (det.summarize(rng.normal(size=(k, 6))) for k in (10, 20, 30))
    left, right = a.merge(b).merge(c), a.merge(b.merge(c))
    assert left.count == right.count == 60
    assert left.total == pytest.approx(right.total)
    assert left.outer == pytest.approx(right.outer)
    zero = wk.RFFSummary.zero(32)
    assert zero.merge(a).total == pytest.approx(a.total)
    rows = rng.normal(size=(60, 6))
    whole = det.summarize(rows)
    parts = det.summarize(rows[:25]).merge(det.summarize(rows[25:]))
    assert parts.outer == pytest.approx(whole.outer)
    back = wk.RFFSummary.from_dict(json.loads(json.dumps(whole.to_dict())))
    assert back.outer == pytest.approx(whole.outer) and back.count == 60
    assert det.test_summary(parts).p_value == pytest.approx(det.test(rows).p_value)
    with pytest.raises(ValueError, match="cannot merge"):
        a.merge(wk.RFFSummary.zero(3))


def test_w3_shift_found_and_control_clean() -> None:
    d = make_w3()
    for det in (wk.MMDDrift(), wk.RFFMMDDrift(), wk.LinearMMDDrift()):
        det.fit(d["ref"])
        assert det.test(d["drift"]).drift, type(det).__name__
        assert not det.test(d["control"]).drift, type(det).__name__
    assert wk.ProjectionDrift().fit(d["ref"]).test(d["drift"]).drift
    classifier = wk.ClassifierDrift().fit(d["ref"])
    assert not classifier.test(d["control"]).drift
    r = classifier.test(d["drift"])
    assert r.drift
    top = {f["feature"] for f in r.details["top_features"][:10]}
    assert len(top & {f"x{j}" for j in range(10)}) >= 7  # the shifted dimensions drive it


def test_classifier_with_frames_names_features(rng: np.random.Generator) -> None:
    import pandas as pd

    ref = pd.DataFrame({"age": rng.normal(size=400), "income": rng.normal(size=400)})
    cur = pd.DataFrame({"age": rng.normal(size=400), "income": rng.normal(0.6, size=400)})
    r = wk.ClassifierDrift(n_folds=3).fit(ref).test(cur)
    assert r.drift and r.details["top_features"][0]["feature"] == "income"
    assert 0.5 < r.statistic < 1.0
    with pytest.raises(TypeError, match="column 'c' of reference is not numeric"):
        wk.ClassifierDrift().fit(pd.DataFrame({"c": ["a", "b"]}))


def test_bbsd_on_binary_scores(rng: np.random.Generator) -> None:
    r = wk.bbsd(rng.beta(2, 5, size=500), rng.beta(2, 3, size=500))
    assert r.drift and r.method == "bbsd_ks"
    assert len(r.details["components"]) == 1


def test_multivariate_bad_input_is_named(rng: np.random.Generator) -> None:
    det = wk.MMDDrift().fit(rng.normal(size=(20, 3)))
    with pytest.raises(ValueError, match="current has 2 features, the reference has 3"):
        det.test(rng.normal(size=(20, 2)))
    with pytest.raises(ValueError, match="n_permutations must be a positive integer"):
        wk.MMDDrift(n_permutations=0).fit(rng.normal(size=(20, 3))).test(rng.normal(size=(5, 3)))
    with pytest.raises(ValueError, match="reference must be 2-D"):
        wk.MMDDrift().fit(np.zeros((2, 2, 2)))
    with pytest.raises(TypeError, match="current must be numeric"):
        det.test(np.array([["a"] * 3] * 4))
    with pytest.raises(ValueError, match="n_folds must be at least 2"):
        wk.ClassifierDrift(n_folds=1).fit(rng.normal(size=(20, 3))).test(rng.normal(size=(20, 3)))
    with pytest.raises(ValueError, match="fit_fraction"):
        wk.ProjectionDrift(fit_fraction=1.0).fit(rng.normal(size=(20, 3)))
    nan_rows = rng.normal(size=(30, 3))
    nan_rows[:5, 0] = np.nan
    assert det.test(nan_rows).details["dropped_current"] == 5


def test_mmd_memory_is_bounded_by_the_block(rng: np.random.Generator) -> None:
    import tracemalloc

    x, y = rng.normal(size=(3000, 8)), rng.normal(size=(3000, 8))
    det = wk.MMDDrift(n_permutations=50, block_rows=200).fit(x)
    tracemalloc.start()
    det.test(y)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    full_kernel = 6000 * 6000 * 4
    assert peak < full_kernel / 4, peak  # ~ one 200-row block, labels and products


def test_importing_stats_loads_no_heavy_library() -> None:
    import subprocess
    import sys

    code = (
        "import sys, watchkeeper.stats, watchkeeper.frames; "
        "print(','.join(m for m in ('scipy', 'sklearn', 'pandas', 'pyarrow', 'torch') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""
