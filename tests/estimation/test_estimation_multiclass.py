"""Multi-class operating point: expected predicted-class counts and BBSE."""

from __future__ import annotations

import numpy as np
import pytest

from watchkeeper.estimation import (
    OperatingPoint,
    bbse,
    class_mix_test,
    diagnose_shift_multiclass,
    expect_class_counts,
    expect_flags,
)


def test_binary_confusion_matches_operating_point() -> None:
    conf = np.array([[882, 10], [18, 90]])  # true negatives 900 (FPR 0.02), positives 100 (TPR 0.9)
    for mix in ("random", "fixed"):
        e = expect_class_counts(conf, [0.9, 0.1], 1000, mix=mix)
        flags = expect_flags(OperatingPoint(None, 0.9, 0.02, 100, 900), 0.1, 1000, mix=mix)
        if mix == "fixed":
            flags = expect_flags(OperatingPoint(None, 0.9, 0.02), 0.1, 1000, mix=mix)
        assert e.expected[1] == pytest.approx(flags.expected)
        assert e.sigma[1] == pytest.approx(flags.sigma)
        assert (e.low[1], e.high[1]) == (flags.low, flags.high)
        assert e.mix == mix


def test_class_count_band_random_mix_covers() -> None:
    """The class mix of a window is random and the confusion matrix is an estimate: the band
    must cover both (the fixed-mix band is a point for a diagonal matrix)."""
    rng = np.random.default_rng(4)
    m_true = np.array([[0.9, 0.05, 0.05], [0.06, 0.9, 0.05], [0.04, 0.05, 0.9]])
    pri = np.array([0.5, 0.3, 0.2])
    hits = []
    for _ in range(100):
        conf = np.stack([rng.multinomial(300, m_true[:, j]) for j in range(3)], axis=1)
        e = expect_class_counts(conf, pri, 500)
        labels = rng.multinomial(500, pri, size=200)
        counts = sum(
            np.stack([rng.binomial(labels[:, j], m_true[i, j]) for i in range(3)], 1)
            for j in range(3)
        )  # approximately: the multinomial split of each true class
        hits.append(((counts >= e.low) & (counts <= e.high)).mean(0))
    assert np.all(np.mean(hits, axis=0) >= 0.93)
    assert expect_class_counts(np.eye(3) * 100, pri, 500).high[0] > 250
    assert expect_class_counts(np.eye(3) * 100, pri, 500, mix="fixed").high[0] == 250


@pytest.mark.slow
def test_class_count_band_coverage() -> None:
    rng = np.random.default_rng(3)
    conf = np.array([[80, 10, 5], [15, 85, 5], [5, 5, 90]])
    m = conf / conf.sum(0)
    pri = np.array([0.5, 0.3, 0.2])
    e = expect_class_counts(conf, pri, 2000, mix="fixed")
    counts = (2000 * pri).astype(int)
    sims = sum(
        np.stack([rng.multinomial(counts[j], m[:, j], size=20_000)[:, i] for i in range(3)], 1)
        for j in range(3)
    )
    inside = (sims >= e.low) & (sims <= e.high)
    assert np.all((inside.mean(0) >= 0.945) & (inside.mean(0) <= 0.975))


def test_bbse_recovers_class_mix(rng: np.random.Generator) -> None:
    conf = np.array([[400, 50, 20], [80, 420, 30], [20, 30, 450]])
    m = conf / conf.sum(0)
    truth = np.array([0.1, 0.3, 0.6])
    labels = rng.choice(3, 20_000, p=truth)
    u = rng.random(20_000)  # predicted class drawn from column M[:, label] of each event
    cum = np.cumsum(m, axis=0)[:, labels]
    predicted = (u[None, :] > cum).sum(0)
    est = bbse(conf, predicted)
    assert est.priors == pytest.approx(truth, abs=0.03)
    assert np.all(est.low <= truth) and np.all(truth <= est.high)
    assert est.priors.sum() == pytest.approx(1)


def test_multiclass_bad_input() -> None:
    with pytest.raises(ValueError, match="confusion"):
        expect_class_counts([[1, 2, 3]], [1.0], 10)
    with pytest.raises(ValueError, match="priors"):
        expect_class_counts([[5, 1], [1, 5]], [0.7, 0.7], 10)
    with pytest.raises(ValueError, match="predicted"):
        bbse([[5, 1], [1, 5]], np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="confusion"):
        bbse([[5, 0], [1, 0]], np.array([0, 1]))


def _softmax(rng: np.random.Generator, labels: np.ndarray, strength: float = 2.0) -> np.ndarray:
    z = rng.normal(0, 1, (len(labels), 3))
    z[np.arange(len(labels)), labels] += strength
    return np.exp(z) / np.exp(z).sum(1, keepdims=True)


@pytest.mark.slow
def test_multiclass_diagnosis_tells_them_apart() -> None:
    from watchkeeper.estimation import diagnose_shift_multiclass

    rng = np.random.default_rng(21)
    mix = [0.6, 0.3, 0.1]
    cases = {
        "as_expected": lambda: _softmax(rng, rng.choice(3, 2000, p=mix)),
        "prior_shift": lambda: _softmax(rng, rng.choice(3, 2000, p=[0.45, 0.35, 0.2])),
        "model_change": lambda: _softmax(rng, rng.choice(3, 2000, p=mix), strength=1.5),
    }
    for truth, window in cases.items():
        verdicts = []
        for r in range(40):
            y = rng.choice(3, 6000, p=mix)
            d = diagnose_shift_multiclass(_softmax(rng, y), y, window(), random_state=r)
            verdicts.append(d.verdict)
        assert verdicts.count(truth) / len(verdicts) >= 0.88, (truth, verdicts)


def test_multiclass_diagnosis_bad_input(rng: np.random.Generator) -> None:
    from watchkeeper.estimation import diagnose_shift_multiclass

    y = rng.choice(3, 300)
    p = _softmax(rng, y)
    with pytest.raises(ValueError, match="current_probs"):
        diagnose_shift_multiclass(p, y, p[:, :2])
    with pytest.raises(ValueError, match="reference_labels"):
        diagnose_shift_multiclass(p, np.full(300, 5), p)
    with pytest.raises(ValueError, match="expected_priors"):
        diagnose_shift_multiclass(p, y, p, expected_priors=[0.5, 0.6, 0.1])
    d = diagnose_shift_multiclass(p, y, p).to_dict()
    assert len(d["priors"]) == 3 and d["verdict"] == "as_expected"


def _realised_macro(pred: np.ndarray, y: np.ndarray, k: int = 3) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    return {
        "accuracy": accuracy_score(y, pred),
        "macro_precision": precision_score(y, pred, average="macro", labels=range(k)),
        "macro_recall": recall_score(y, pred, average="macro", labels=range(k)),
        "macro_f1": f1_score(y, pred, average="macro", labels=range(k)),
    }


def test_multiclass_estimator_under_prior_shift(rng: np.random.Generator) -> None:
    from watchkeeper.estimation import MulticlassPerformanceEstimator

    y_ref = rng.choice(3, 9000)
    p_ref = _softmax(rng, y_ref, 1.5)
    y = rng.choice(3, 6000, p=[0.75, 0.2, 0.05])
    p = _softmax(rng, y, 1.5)
    real = _realised_macro(p.argmax(1), y)
    fixed = MulticlassPerformanceEstimator(prior_correction=True).fit(p_ref, y_ref).estimate(p)
    default = MulticlassPerformanceEstimator().fit(p_ref, y_ref).estimate(p)
    assert default.method == "cbpe_multiclass"  # the correction is an option, not the default
    plain = MulticlassPerformanceEstimator(prior_correction=False).fit(p_ref, y_ref).estimate(p)
    for name in ("accuracy", "macro_precision", "macro_f1"):
        assert abs(fixed[name].value - real[name]) < abs(plain[name].value - real[name]), name
        assert fixed[name].low <= real[name] <= fixed[name].high, name
    same = _softmax(rng, y_ref[:3000], 1.5)
    est = MulticlassPerformanceEstimator(prior_correction=False).fit(p_ref, y_ref).estimate(same)
    real_same = _realised_macro(same.argmax(1), y_ref[:3000])
    for name, value in real_same.items():
        assert est[name].value == pytest.approx(value, abs=0.02), name
    with pytest.raises(ValueError, match="labels"):
        MulticlassPerformanceEstimator().fit(p_ref, np.zeros(9000))
    with pytest.raises(ValueError, match="probs"):
        MulticlassPerformanceEstimator().fit(p_ref, y_ref).estimate(p[:, :2])


def _ten_class_world(rng: np.random.Generator, acc: float, n_ref: int) -> tuple:
    k = 10
    m = np.full((k, k), (1 - acc) / (k - 1)) + np.eye(k) * (acc - (1 - acc) / (k - 1))

    def draw(pri: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        y = rng.choice(k, n, p=pri)
        cum = np.cumsum(m, axis=0)[:, y]
        return (rng.random(n)[None, :] > cum).sum(0), y

    pred, y = draw(np.full(k, 0.1), n_ref)
    conf = np.zeros((k, k))
    np.add.at(conf, (pred, y), 1)
    return conf, draw


@pytest.mark.parametrize("n", [10, 20, 500])
def test_class_mix_test_level_at_small_and_large_windows(n: int) -> None:
    """The p-value is simulated, not asymptotic: its level holds at ten events too. The
    validation mix it compares with is itself an estimate, which the simulation includes."""
    rng = np.random.default_rng(n)
    p_values = []
    for i in range(80):
        conf, draw = _ten_class_world(rng, 0.9, 2000)
        r = class_mix_test(conf, draw(np.full(10, 0.1), n)[0], random_state=i, n_simulations=400)
        assert (r.p_value < r.alpha) == r.drift
        p_values.append(r.p_value)
    # 80 draws: 0.05 + 3 standard errors
    assert np.mean(np.array(p_values) < 0.05) <= 0.125
    assert np.mean(np.array(p_values) < 0.5) > 0.3  # not conservative to uselessness


def test_class_mix_test_catches_a_knockout() -> None:
    rng = np.random.default_rng(3)
    ko = np.full(10, 0.1)
    ko[3] *= 0.5
    ko /= ko.sum()
    hits = []
    for i in range(30):
        conf, draw = _ten_class_world(rng, 0.98, 20_000)
        r = class_mix_test(conf, draw(ko, 500)[0], random_state=i, n_simulations=400)
        hits.append(r.drift and r.details["most_changed"] == 3)
    assert np.mean(hits) >= 0.6  # 0.8 by the long simulation in benchmarks


def test_class_mix_test_one_sided_option() -> None:
    """Knowing the direction buys power: a 50% knockout at 92% accuracy is caught more often
    by the "decrease" test than by the two-sided one, and not beyond the level by the
    "increase" test, which looks the other way; each keeps its level with no shift."""
    rng = np.random.default_rng(4)
    ko = np.full(10, 0.1)
    ko[3] *= 0.5
    ko /= ko.sum()
    hits: dict[str, list[bool]] = {}
    alarms: dict[str, list[bool]] = {}
    for i in range(60):
        conf, draw = _ten_class_world(rng, 0.92, 5000)
        shifted, same = draw(ko, 500)[0], draw(np.full(10, 0.1), 500)[0]
        for alt in ("two-sided", "decrease", "increase"):
            kw = {"random_state": i, "n_simulations": 400, "alternative": alt}
            hits.setdefault(alt, []).append(class_mix_test(conf, shifted, **kw).drift)
            alarms.setdefault(alt, []).append(class_mix_test(conf, same, **kw).drift)
    power = {alt: float(np.mean(v)) for alt, v in hits.items()}
    assert power["decrease"] > power["two-sided"] >= 0.5
    assert power["increase"] <= 0.25  # the nine other classes rise by 5%: a little power
    for alt, v in alarms.items():
        assert np.mean(v) <= 0.14, alt  # 60 draws: 0.05 + 3 standard errors
    r = class_mix_test(conf, shifted, alternative="decrease")
    assert r.details["alternative"] == "decrease"


def test_class_mix_test_bad_input() -> None:
    conf = np.eye(3) * 50 + 5
    with pytest.raises(ValueError, match="predicted"):
        class_mix_test(conf, [0, 1, 7])
    with pytest.raises(ValueError, match="predicted"):
        class_mix_test(conf, np.array([], dtype=int))
    with pytest.raises(ValueError, match="expected_priors"):
        class_mix_test(conf, [0, 1], expected_priors=[0.5, 0.5])
    with pytest.raises(ValueError, match="n_simulations"):
        class_mix_test(conf, [0, 1], n_simulations=10)
    with pytest.raises(ValueError, match="alpha"):
        class_mix_test(conf, [0, 1], alpha=1.5)
    with pytest.raises(ValueError, match="alternative"):
        class_mix_test(conf, [0, 1], alternative="less")


def test_bbse_interval_does_not_collapse_at_ten_events() -> None:
    """A class absent from a window of ten: the interval must still have width, and 95%
    intervals must cover the truth about 95% of the time with no shift."""
    rng = np.random.default_rng(2)
    m = np.array([[0.8, 0.1, 0.05], [0.15, 0.85, 0.05], [0.05, 0.05, 0.9]])
    pri = np.array([0.6, 0.3, 0.1])
    hits = []
    for i in range(60):
        conf = np.stack([rng.multinomial(int(1000 * pri[j]), m[:, j]) for j in range(3)], 1)
        y = rng.choice(3, 10, p=pri)
        pred = (rng.random(10)[None, :] > np.cumsum(m, axis=0)[:, y]).sum(0)
        e = bbse(conf, pred, random_state=i, n_bootstrap=200)
        assert np.all(e.high - e.low > 0.05)
        hits.append((e.low <= pri) & (pri <= e.high))
    assert np.all(np.mean(hits, axis=0) >= 0.85)  # 0.94-0.99 in 150 draws per class


def test_multiclass_diagnosis_p_value_is_its_verdict() -> None:
    rng = np.random.default_rng(1)

    def probs(labels: np.ndarray) -> np.ndarray:
        z = rng.normal(0, 1, (len(labels), 3))
        z[np.arange(len(labels)), labels] += 2.0
        return np.exp(z) / np.exp(z).sum(1, keepdims=True)

    y = rng.choice(3, 3000, p=[0.5, 0.3, 0.2])
    ref = probs(y)
    for pri in ([0.5, 0.3, 0.2], [0.2, 0.3, 0.5]):
        d = diagnose_shift_multiclass(ref, y, probs(rng.choice(3, 800, p=pri)), alpha=0.05)
        fit_p, prior_p = d.details["fit_p_value"], d.details["prior_p_value"]
        assert d.p_value == min(1.0, 2 * min(fit_p, prior_p))
        assert (d.p_value < d.alpha) == (d.verdict != "as_expected")
