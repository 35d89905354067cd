"""Prior estimation (EM, mixture) and the prior-shift-versus-model-change diagnosis."""

from __future__ import annotations

import numpy as np
import pytest

from watchkeeper.estimation import (
    adjust_posteriors,
    diagnose_shift,
    em_prior,
    mixture_prior,
)


def _reference(rng: np.random.Generator, n: int = 4000, prev: float = 0.1) -> tuple:
    y = rng.random(n) < prev
    return rng.normal(np.where(y, 2.5, 0.0), 1.0), y


def _window(rng: np.random.Generator, m: int, prev: float, pos: float = 2.5, neg: float = 0.0):
    return rng.normal(np.where(rng.random(m) < prev, pos, neg), 1.0)


def test_em_prior_recovers_binary_and_multiclass(rng: np.random.Generator) -> None:
    y = rng.random(50_000) < 0.3
    x = rng.normal(np.where(y, 1.0, -1.0), 1.0)
    post = 1 / (1 + np.exp(-2 * x))  # exact posterior under a 50/50 prior
    assert float(em_prior(post, 0.5)) == pytest.approx(0.3, abs=0.01)
    means = np.array([-2.0, 0.0, 2.0])
    labels = rng.choice(3, 60_000, p=[0.6, 0.3, 0.1])
    z = rng.normal(means[labels], 1.0)
    lik = np.exp(-0.5 * (z[:, None] - means[None, :]) ** 2)
    post3 = lik / lik.sum(1, keepdims=True)  # posterior under a uniform prior
    est = em_prior(post3, np.full(3, 1 / 3))
    assert est == pytest.approx([0.6, 0.3, 0.1], abs=0.015)


def test_adjust_posteriors_is_bayes() -> None:
    p = np.array([0.2, 0.5, 0.9])
    q = adjust_posteriors(p, 0.5, 0.1)
    odds = p / (1 - p) * (0.1 / 0.9)
    assert q == pytest.approx(odds / (1 + odds))
    assert adjust_posteriors(p, 0.3, 0.3) == pytest.approx(p)


def test_mixture_prior(rng: np.random.Generator) -> None:
    ref, y = _reference(rng, 20_000, 0.5)
    assert mixture_prior(ref, y, _window(rng, 20_000, 0.2)) == pytest.approx(0.2, abs=0.02)


def test_diagnose_shift_verdicts(rng: np.random.Generator) -> None:
    ref, y = _reference(rng)
    same = diagnose_shift(ref, y, _window(rng, 2000, 0.1))
    assert same.verdict == "as_expected"
    more = diagnose_shift(ref, y, _window(rng, 2000, 0.2))
    assert more.verdict == "prior_shift"
    assert more.prevalence_low < more.prevalence < more.prevalence_high
    assert abs(more.prevalence - 0.2) < 0.06  # coverage itself is checked by simulation
    broken = diagnose_shift(ref, y, _window(rng, 2000, 0.1, neg=0.8))
    assert broken.verdict == "model_change"
    d = broken.to_dict()
    assert set(d) >= {"verdict", "prevalence", "prevalence_low", "prevalence_high", "p_value"}
    # one p-value, whose comparison with alpha is the verdict (Bonferroni of the two tests)
    details = d["details"]
    assert d["p_value"] == min(1.0, 2 * min(details["fit_p_value"], details["prior_p_value"]))
    for diag in (same, more, broken):
        assert (diag.p_value < diag.alpha) == (diag.verdict != "as_expected")


@pytest.mark.slow
def test_diagnose_shift_tells_them_apart_by_simulation() -> None:
    rng = np.random.default_rng(11)
    scenarios = {
        "as_expected": {"prev": 0.1},
        "prior_shift": {"prev": 0.2},
        "model_change": {"prev": 0.1, "neg": 0.6},  # negatives drift towards the threshold
    }
    rates: dict[str, dict[str, float]] = {}
    covered = []
    for name, kw in scenarios.items():
        verdicts = []
        for r in range(80):
            ref, y = _reference(rng)
            d = diagnose_shift(ref, y, _window(rng, 2000, **kw), random_state=r, n_bootstrap=200)
            verdicts.append(d.verdict)
            if name == "prior_shift":
                covered.append(d.prevalence_low <= 0.2 <= d.prevalence_high)
        rates[name] = {v: verdicts.count(v) / len(verdicts) for v in scenarios}
    # nothing changed: a false alarm (of either kind) at most about alpha = 5%
    assert rates["as_expected"]["as_expected"] >= 0.9
    assert rates["prior_shift"]["prior_shift"] >= 0.9
    assert rates["prior_shift"]["model_change"] <= 0.06
    assert rates["model_change"]["model_change"] >= 0.9
    assert np.mean(covered) >= 0.88


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"alpha": 0.0}, "alpha"),
        ({"expected_prevalence": 1.5}, "expected_prevalence"),
        ({"n_bootstrap": 5}, "n_bootstrap"),
        ({"coverage": 2.0}, "coverage"),
    ],
)
def test_diagnose_bad_input(rng: np.random.Generator, kwargs: dict, field: str) -> None:
    ref, y = _reference(rng, 500)
    with pytest.raises(ValueError, match=field):
        diagnose_shift(ref, y, _window(rng, 100, 0.1), **kwargs)


def test_diagnose_bad_arrays(rng: np.random.Generator) -> None:
    ref, y = _reference(rng, 500)
    with pytest.raises(ValueError, match="current_scores"):
        diagnose_shift(ref, y, np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match="reference_labels"):
        diagnose_shift(ref, y[:10], ref)
    with pytest.raises(ValueError, match="both classes"):
        diagnose_shift(ref, np.zeros(500), ref)


def test_diagnose_degenerate_scores_and_small_alpha(rng: np.random.Generator) -> None:
    y = rng.random(1000) < 0.3
    flat = diagnose_shift(np.full(1000, 0.5), y, np.full(200, 0.5))
    assert flat.verdict in {"as_expected", "prior_shift", "model_change"}
    ref, y = _reference(rng, 4000)
    strict = diagnose_shift(ref, y, _window(rng, 2000, 0.1, neg=1.0), alpha=0.001)
    assert strict.verdict == "model_change"  # reachable: replicates raised to 10 / alpha
    assert strict.details["n_bootstrap"] >= 10_000
