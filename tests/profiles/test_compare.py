"""Drift from two profiles: exact counts, honest p-values at 1M and 10M rows, W1 found.

The false-alarm simulations draw each side's sketch as multinomial counts over the sketch's
buckets with the bucket probabilities of the distribution: that is exactly the distribution of
the sketch of n independent draws (bucketing is a fixed function of each value; the counts of
n draws over fixed cells are multinomial), so 10M rows cost as little as 1k. That the sketch
of real draws is these counts is tested apart (``test_profile_equals_in_memory`` and the
engines' tests), and ``test_false_alarms_real_draws_1m`` checks on real draws too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import ndtr

from watchkeeper.profiles import (
    NumericSummary,
    Profile,
    QuantileSketch,
    bridge_sf,
    compare_profiles,
    profile,
)
from watchkeeper.stats import detect_drift


def _bucket_probs(mu: float, sd: float, accuracy: float = 0.01) -> tuple[dict, dict]:
    """Probabilities of the sketch's buckets for N(mu, sd) (magnitudes 1e-8 .. 1e4)."""
    g = (1 + accuracy) / (1 - accuracy)
    lo, hi = math.ceil(math.log(1e-8) / math.log(g)), math.ceil(math.log(1e4) / math.log(g))
    k = np.arange(lo, hi + 1)
    upper, lower = g ** k.astype(float), g ** (k - 1).astype(float)
    pos = ndtr((upper - mu) / sd) - ndtr((lower - mu) / sd)
    neg = ndtr((-lower - mu) / sd) - ndtr((-upper - mu) / sd)
    return dict(zip(k.tolist(), pos, strict=True)), dict(zip(k.tolist(), neg, strict=True))


def _simulated(rng: np.random.Generator, n: int, pos: dict, neg: dict) -> NumericSummary:
    keys = list(pos) + list(neg)
    p = np.array(list(pos.values()) + list(neg.values()))
    counts = rng.multinomial(n, p / p.sum())
    k = len(pos)
    sk = QuantileSketch(
        0.01,
        {key: int(c) for key, c in zip(keys[:k], counts[:k], strict=True) if c},
        {key: int(c) for key, c in zip(keys[k:], counts[k:], strict=True) if c},
    )
    return NumericSummary(count=n, sketch=sk, min=-1.0, max=1.0)


def _false_alarm_rate(n: int, reps: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, (mu, sd) in {"normal": (0.0, 1.0), "offset": (-5.0, 0.5)}.items():
        pos, neg = _bucket_probs(mu, sd)
        ps = []
        for _ in range(reps):
            ref = Profile(n=n, features={"x": _simulated(rng, n, pos, neg)})
            cur = Profile(n=n, features={"x": _simulated(rng, n, pos, neg)})
            r = compare_profiles(ref, cur, methods={"x": "ks"})
            ps.append(r.columns["x"].p_value)
        out[name] = float((np.array(ps) < 0.05).mean())
    return out


def test_false_alarms_at_alpha_1m_rows() -> None:
    rates = _false_alarm_rate(1_000_000, 400, seed=1)
    # 400 repetitions: a standard error of 1.1 points at 5%, so +-3.3 points is 3 of them.
    assert all(abs(r - 0.05) < 0.033 for r in rates.values()), rates


@pytest.mark.slow
@pytest.mark.parametrize("n", [1_000_000, 10_000_000])
def test_false_alarms_within_2_points_of_alpha(n: int) -> None:
    rates = _false_alarm_rate(n, 2000, seed=n)
    # 2000 repetitions: a standard error of 0.5 points, so +-2 points is 4 of them.
    assert all(abs(r - 0.05) < 0.02 for r in rates.values()), rates


@pytest.mark.slow
def test_false_alarms_real_draws_1m() -> None:
    """Real draws, profiled in 50k-row chunks and merged into 1M-row sides."""
    rng = np.random.default_rng(5)
    pool = [NumericSummary.of(rng.gamma(2.0, 1.0, 50_000)) for _ in range(200)]
    ps = []
    for _ in range(600):
        pick = rng.choice(len(pool), 40, replace=False)
        a, b = pool[pick[0]], pool[pick[20]]
        for i in pick[1:20]:
            a = a.merge(pool[i])
        for i in pick[21:]:
            b = b.merge(pool[i])
        r = compare_profiles(Profile(features={"x": a}), Profile(features={"x": b}),
                             methods={"x": "ks"})
        ps.append(r.columns["x"].p_value)
    rate = float((np.array(ps) < 0.05).mean())
    assert abs(rate - 0.05) < 0.03, rate


def test_whylogs_style_full_n_p_value_would_flag() -> None:
    """The point of folding the sketch into the p-value: a 1% quantile error read as the raw
    KS distance at 1M rows is a p-value of nothing; the bucketed test does not flag."""
    from scipy.special import kolmogorov

    rng = np.random.default_rng(2)
    pos, neg = _bucket_probs(0.0, 1.0)
    n = 1_000_000
    a, b = _simulated(rng, n, pos, neg), _simulated(rng, n, pos, neg)
    naive_d = 0.01  # a KLL sketch with k=200 has about this rank error
    assert kolmogorov(math.sqrt(n / 2) * naive_d) < 1e-10
    r = compare_profiles(Profile(features={"x": a}), Profile(features={"x": b}),
                         methods={"x": "ks"})
    assert r.columns["x"].statistic < 0.003


def test_bucketed_ks_is_within_resolution_of_raw_ks(rng: np.random.Generator) -> None:
    from scipy.stats import ks_2samp

    x, y = rng.normal(size=20_000), rng.normal(0.05, 1.0, 20_000)
    r = compare_profiles(profile({"x": x}), profile({"x": y}), methods={"x": "ks"})
    raw = ks_2samp(x, y).statistic
    res = r.columns["x"]
    assert res.statistic <= raw + 1e-12
    assert raw - res.statistic <= res.details["resolution"]
    # and the p-value is close to the raw test's (same data, fine buckets)
    assert abs(res.details["p_value_raw"] - ks_2samp(x, y).pvalue) < 0.05


def test_bridge_sf_exact_cases() -> None:
    assert bridge_sf(0.0, np.array([0.5])) == 1.0
    one = bridge_sf(1.0, np.array([0.5]))
    assert one == pytest.approx(2 * ndtr(-2.0))
    # Two points: bounded by the union bound, at least the larger single-point probability.
    two = bridge_sf(1.0, np.array([0.3, 0.7]), paths=20_000)
    single = 2 * ndtr(-1.0 / math.sqrt(0.21))
    assert single <= two <= 2 * single
    # A fine grid approaches Kolmogorov's law of the continuous supremum (from below).
    from scipy.special import kolmogorov

    fine = bridge_sf(1.0, np.linspace(1e-4, 1 - 1e-4, 9999), paths=20_000, hits_to_stop=2000)
    assert fine <= kolmogorov(1.0) + 0.01
    assert fine > kolmogorov(1.0) - 0.03


N_NUM, N_CAT, N_LEVELS = 20, 5, 10
LEVELS = np.array([f"L{i}" for i in range(N_LEVELS)], dtype=object)


def _w1_chunk(side: str, chunk: int, n: int, seed: int = 0) -> dict[str, np.ndarray]:
    """``n`` rows of one side of W1 (benchmarks/w1_tabular.py), drawn chunk by chunk.

    The same design as ``make_w1``: 20 numeric columns (normal, log-normal, uniform, gamma), 5
    shifted by +0.2 sd and 2 scaled by 1.3 about their mean in ``cur``; 5 categorical columns
    of 10 levels, ``cat_0`` with 10 points of share moved from its commonest to its rarest
    level. The sd and mean of a column are its distribution's, so chunks are independent.
    """
    rng_params = np.random.default_rng(seed)
    params = rng_params.uniform(size=(N_NUM, 2))
    probs = np.sort(rng_params.dirichlet(np.full(N_LEVELS, 3.0), size=N_CAT), axis=1)[:, ::-1]
    offset = 1 if side == "ref" else 2
    cols: dict[str, np.ndarray] = {}
    for j in range(N_NUM):
        rng = np.random.default_rng([seed, j, offset, chunk])
        kind = j % 4
        if kind == 0:
            mean, sd = params[j, 0] * 10 - 5, params[j, 1] * 2.5 + 0.5
            x = rng.normal(mean, sd, n)
        elif kind == 1:
            mean, sd = math.exp(0.125), math.sqrt((math.exp(0.25) - 1) * math.exp(0.25))
            x = rng.lognormal(0.0, 0.5, n)
        elif kind == 2:
            mean, sd = 5.0, 10 / math.sqrt(12)
            x = rng.uniform(0.0, 10.0, n)
        else:
            mean, sd = 2.0, math.sqrt(2.0)
            x = rng.gamma(2.0, 1.0, n)
        if side == "cur" and j < 5:
            x = x + 0.2 * sd
        if side == "cur" and j in (5, 6):
            x = mean + 1.3 * (x - mean)
        cols[f"num_{j:02d}"] = x
    rng = np.random.default_rng([seed, 100, offset, chunk])
    for j in range(N_CAT):
        p = probs[j].copy()
        if side == "cur" and j == 0:
            p[0] -= 0.10
            p[-1] += 0.10
        cols[f"cat_{j}"] = LEVELS[rng.choice(N_LEVELS, size=n, p=p)]
    return cols


def _w1_profile(side: str, n: int, chunks: int) -> Profile:
    out = Profile.zero()
    for c in range(chunks):
        out = out.merge(profile(_w1_chunk(side, c, n // chunks)))
    return out


PLANTED = {f"num_{j:02d}" for j in range(7)} | {"cat_0"}


def test_w1_verdicts_match_in_memory_200k() -> None:
    ref = {k: np.concatenate([_w1_chunk("ref", c, 50_000)[k] for c in range(4)])
           for k in _w1_chunk("ref", 0, 1)}
    cur = {k: np.concatenate([_w1_chunk("cur", c, 100_000)[k] for c in range(2)])
           for k in _w1_chunk("cur", 0, 1)}
    in_memory = detect_drift(ref, cur)
    halves = [profile({k: v[i::2] for k, v in ref.items()}) for i in range(2)]
    from_profiles = compare_profiles(halves[0].merge(halves[1]), profile(cur))
    assert set(from_profiles.drifted) == set(in_memory.drifted) == PLANTED
    for name, r in from_profiles.columns.items():
        assert r.method == in_memory.columns[name].method
        # effect sizes agree within the sketch's resolution
        assert abs(r.statistic - in_memory.columns[name].statistic) < 0.01, name


@pytest.mark.slow
def test_w1_planted_drifts_found_at_10m_rows() -> None:
    pr, pc = _w1_profile("ref", 10_000_000, 20), _w1_profile("cur", 10_000_000, 20)
    assert pr.n == pc.n == 10_000_000
    report = compare_profiles(pr, pc)
    assert set(report.drifted) == PLANTED
    ks = compare_profiles(pr, pc, large_n=10**12)  # p-value tests at 10M rows, Holm-corrected
    assert set(ks.drifted) >= PLANTED
    assert len(set(ks.drifted) - PLANTED) <= 1  # 17 undrifted columns at family-wise 5%


def test_categories_exact_chi2_and_pooled_other(rng: np.random.Generator) -> None:
    from watchkeeper.stats import chi2

    a = rng.choice(["a", "b", "c"], 5000, p=[0.5, 0.3, 0.2]).astype(object)
    b = rng.choice(["a", "b", "c"], 5000, p=[0.45, 0.35, 0.2]).astype(object)
    r = compare_profiles(profile({"c": a}), profile({"c": b}), large_n=10_000)
    assert r.columns["c"].method == "chi2"
    assert r.columns["c"].details["p_value_raw"] == pytest.approx(chi2(a, b).p_value)
    from watchkeeper.profiles import CategoricalSummary

    many = CategoricalSummary.of_counts({f"k{i}": 10 + i for i in range(30)}, max_categories=5)
    few = CategoricalSummary.of_counts({f"k{i}": 10 + i for i in range(30)})
    out = compare_profiles(Profile(features={"c": few}), Profile(features={"c": many}),
                           methods={"c": "chi2"})
    assert out.columns["c"].details["pooled_other"] is True
    assert out.columns["c"].drift is False  # same data: pooling on both sides keeps it exact


def test_bad_input_names_the_field(rng: np.random.Generator) -> None:
    p = profile({"x": rng.normal(size=100), "c": rng.choice(["a", "b"], 100)})
    with pytest.raises(ValueError, match="columns"):
        compare_profiles(p, p, columns=["nope"])
    with pytest.raises(ValueError, match=r"methods\['x'\]"):
        compare_profiles(p, p, methods={"x": "anderson_darling"})
    with pytest.raises(ValueError, match="alpha"):
        compare_profiles(p, p, alpha=2.0)
    q = profile({"x": rng.choice(["a", "b"], 100)})
    r = compare_profiles(p, q)
    assert r.columns["x"].details["skipped"].endswith("text on the other")
    assert "not in the current" in r.columns["c"].details["skipped"]
