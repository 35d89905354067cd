"""The validation gate: paired tests against references, their levels by simulation, the rules."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from watchkeeper.loop import (
    EvalSet,
    delong,
    evaluate_gate,
    fpr_at_tpr,
    gate_config,
    mcnemar,
    roc_auc,
    threshold_at_tpr,
)


def _pair(rng: np.random.Generator, n: int, noise_a: float, noise_b: float, rho: float = 0.5):
    """Labels and two correlated scores: noise shared in part, so the pair is really paired."""
    y = rng.integers(0, 2, n)
    shared = rng.normal(0, 1, n)
    ea = np.sqrt(rho) * shared + np.sqrt(1 - rho) * rng.normal(0, 1, n)
    eb = np.sqrt(rho) * shared + np.sqrt(1 - rho) * rng.normal(0, 1, n)
    return y, y + noise_a * ea, y + noise_b * eb


def test_auc_matches_scikit_learn() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 500)
    s = np.round(y * 0.5 + rng.normal(0, 1, 500), 1)  # ties on purpose
    assert roc_auc(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def test_mcnemar_is_the_exact_binomial_test() -> None:
    rng = np.random.default_rng(4)
    a = rng.random(300) < 0.8
    b = rng.random(300) < 0.85
    r = mcnemar(a, b)
    n01, n10 = r.details["challenger_only"], r.details["champion_only"]
    ref = stats.binomtest(n01, n01 + n10, 0.5)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert r.p_better == pytest.approx(
        stats.binomtest(n01, n01 + n10, 0.5, alternative="greater").pvalue, rel=1e-9
    )
    assert r.improvement == pytest.approx(b.mean() - a.mean())


def test_delong_variance_agrees_with_the_bootstrap() -> None:
    rng = np.random.default_rng(5)
    y, a, b = _pair(rng, 800, 1.0, 0.8)
    r = delong(y, a, b)
    idx = rng.integers(0, y.size, (400, y.size))
    boot = [roc_auc(y[i], b[i]) - roc_auc(y[i], a[i]) for i in idx]
    assert r.se == pytest.approx(np.std(boot), rel=0.15)
    assert r.difference == pytest.approx(roc_auc(y, b) - roc_auc(y, a))


def test_fpr_at_tpr_refits_each_threshold() -> None:
    rng = np.random.default_rng(6)
    y, a, b = _pair(rng, 3000, 0.8, 0.5)
    r = fpr_at_tpr(y, a, b, 0.9, n_bootstrap=200)
    ta = threshold_at_tpr(y, a, 0.9)
    assert (a[y == 1] >= ta).mean() >= 0.9
    assert r.champion == pytest.approx((a[y == 0] >= ta).mean())
    assert r.details["threshold_champion"] == ta
    assert r.improvement > 0 and r.ci_low > 0 and r.p_better < 0.01


def _rejection_rates(reps: int, n: int, seed: int) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    hits = {"mcnemar": 0, "delong": 0, "fpr_superior": 0}
    for _ in range(reps):
        y, a, b = _pair(rng, n, 0.8, 0.8)  # exchangeable: neither model is better
        t = 0.5
        hits["mcnemar"] += mcnemar((a >= t) == y, (b >= t) == y).p_value < 0.05
        hits["delong"] += delong(y, a, b).p_value < 0.05
        hits["fpr_superior"] += fpr_at_tpr(y, a, b, 0.9, n_bootstrap=200, seed=None).p_better < 0.05
    return {k: v / reps for k, v in hits.items()}


def test_levels_hold_under_no_difference_fast() -> None:
    rates = _rejection_rates(reps=120, n=400, seed=7)
    # 120 runs: a rate of 0.05 stays below 0.13 with probability > 0.999
    assert all(r <= 0.13 for r in rates.values()), rates


@pytest.mark.slow
def test_levels_hold_under_no_difference() -> None:
    rates = _rejection_rates(reps=1000, n=600, seed=8)
    # exact McNemar is conservative; DeLong and the bootstrap near 0.05 (3 sigma: 0.021)
    assert rates["mcnemar"] <= 0.065, rates
    assert 0.025 <= rates["delong"] <= 0.075, rates
    assert rates["fpr_superior"] <= 0.075, rates


def test_gate_passes_a_better_challenger_and_fails_shuffled_labels() -> None:
    rng = np.random.default_rng(9)
    y, champion, better = _pair(rng, 2000, 0.8, 0.45)
    shuffled = rng.permutation(y) + 0.45 * rng.normal(0, 1, y.size)
    cfg = {
        "n_bootstrap": 300,
        "rules": [
            {"metric": "fpr_at_tpr", "test": "superior"},
            {"metric": "auc", "test": "non_inferior", "margin": 0.01},
        ],
    }
    good = evaluate_gate({"recent": EvalSet(y, champion, better)}, cfg)
    assert good.passed, good.summary()
    bad = evaluate_gate({"recent": EvalSet(y, champion, shuffled)}, cfg)
    assert not bad.passed
    assert {o.rule.split()[0] for o in bad.outcomes if not o.passed} >= {"fpr_at_tpr", "auc"}
    # the default gate ("not significantly worse") refuses it too
    assert not evaluate_gate({"recent": EvalSet(y, champion, shuffled)}).passed
    d = good.to_dict()
    assert d["sets"]["recent"]["metrics"]["challenger"]["recall"]["ci"][0] is not None
    assert d["thresholds"]["challenger"] == threshold_at_tpr(y, better, 0.9)


def test_gate_segments_catch_a_broken_segment() -> None:
    rng = np.random.default_rng(10)
    y, champion, challenger = _pair(rng, 3000, 0.6, 0.6, rho=0.9)
    scanner = np.where(np.arange(y.size) % 5 == 0, "new", "old")
    broken = challenger.copy()
    broken[scanner == "new"] = rng.permutation(broken[scanner == "new"])
    rep = evaluate_gate(
        {"recent": EvalSet(y, champion, broken, tags={"scanner": scanner})},
        {"n_bootstrap": 100, "rules": [], "segments": {"max_drop": 0.02}},
        champion_threshold=0.5,
        challenger_threshold=0.5,
    )
    assert not rep.passed
    failed = [o for o in rep.outcomes if not o.passed]
    assert [o.rule for o in failed] == ["segment scanner=new"]


def test_gate_rule_sets_and_missing_sets() -> None:
    rng = np.random.default_rng(11)
    y, a, b = _pair(rng, 500, 0.8, 0.8)
    rep = evaluate_gate(
        {"validation": EvalSet(y, a, b)},
        {"n_bootstrap": 100, "rules": [{"metric": "auc", "test": "not_worse", "sets": ["recent"]}]},
    )
    assert not rep.passed and "missing" in rep.outcomes[0].reason


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"alpha": 2}, "gate.alpha"),
        ({"target_tpr": "high"}, "gate.target_tpr"),
        ({"rules": [{"metric": "auc", "test": "better"}]}, "gate.rules[0].test"),
        ({"rules": [{"metric": "auc", "margin": -1}]}, "gate.rules[0].margin"),
        ({"rules": "auc"}, "gate.rules"),
        ({"segments": {"max_dropp": 0.1}}, "gate.segments.max_dropp"),
        ({"n_bootstrap": 10**9}, "gate.n_bootstrap"),
        ({"colour": 1}, "gate.colour"),
    ],
)
def test_gate_config_names_the_field(config: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        gate_config(config)


def test_gate_bad_input() -> None:
    y = np.array([0, 1] * 100)
    s = np.linspace(0, 1, 200)
    with pytest.raises(ValueError, match=r"sets\.x\.challenger"):
        evaluate_gate({"x": EvalSet(y, s, s[:-1])})
    with pytest.raises(ValueError, match="min_events"):
        evaluate_gate({"x": EvalSet(y[:20], s[:20], s[:20])})
    with pytest.raises(ValueError, match="finite"):
        evaluate_gate({"x": EvalSet(y, s, np.full(200, np.nan))})
