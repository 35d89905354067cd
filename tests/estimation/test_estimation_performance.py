"""Calibration, label-free performance (plain and prior-corrected), ATC, realised performance."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

from watchkeeper.estimation import (
    ATCEstimator,
    Calibrator,
    PerformanceEstimator,
    compare_performance,
    realised_performance,
)


def _task(rng: np.random.Generator, n: int, prev: float) -> tuple[np.ndarray, np.ndarray]:
    y = rng.random(n) < prev
    s = 1 / (1 + np.exp(-rng.normal(np.where(y, 1.2, -1.2), 1.0)))
    return s, y


def test_calibrator_picks_by_held_out_log_loss(rng: np.random.Generator) -> None:
    s, y = _task(rng, 6000, 0.5)
    cal = Calibrator().fit(s, y)
    assert set(cal.log_loss_) == {"isotonic", "platt"}
    assert cal.method_ == min(cal.log_loss_, key=cal.log_loss_.get)
    # scores whose link to the label is a step: only isotonic can follow it
    x = rng.random(6000)
    yy = rng.random(6000) < np.where(x > 0.7, 0.9, 0.1)
    assert Calibrator().fit(x, yy).method_ == "isotonic"
    assert Calibrator("platt").fit(s, y).method_ == "platt"
    with pytest.raises(ValueError, match="method"):
        Calibrator("beta").fit(s, y)
    with pytest.raises(ValueError, match="both classes"):
        Calibrator().fit(s, np.zeros(len(s)))


def test_realised_matches_sklearn(rng: np.random.Generator) -> None:
    s, y = _task(rng, 3000, 0.3)
    s = np.round(s, 2)  # ties
    r = realised_performance(s, y, threshold=0.5)
    pred = s >= 0.5
    assert r["accuracy"].value == pytest.approx(accuracy_score(y, pred))
    assert r["f1"].value == pytest.approx(f1_score(y, pred))
    assert r["roc_auc"].value == pytest.approx(roc_auc_score(y, s))
    for m in r.metrics.values():
        assert m.low <= m.value <= m.high


def test_realised_with_partial_labels(rng: np.random.Generator) -> None:
    s, y = _task(rng, 4000, 0.3)
    labels = y.astype(object)
    labels[rng.random(4000) < 0.75] = None
    part = realised_performance(s, labels, 0.5)
    full = realised_performance(s, y, 0.5)
    known = np.array([v is not None for v in labels])
    assert part.n == known.sum() and part.details["label_share"] == pytest.approx(known.mean())
    assert part["accuracy"].value == pytest.approx(np.mean((s[known] >= 0.5) == y[known]))
    width = part["accuracy"].high - part["accuracy"].low
    assert width > 1.5 * (full["accuracy"].high - full["accuracy"].low)
    nan_labels = np.where(known, y, np.nan)
    assert realised_performance(s, nan_labels, 0.5)["f1"].value == pytest.approx(part["f1"].value)
    none = realised_performance(s, [None] * 4000, 0.5)
    assert none.n == 0 and np.isnan(none["accuracy"].value)


def test_plain_estimate_right_without_shift(rng: np.random.Generator) -> None:
    s, y = _task(rng, 20_000, 0.4)
    est = PerformanceEstimator(threshold=0.5, prior_correction=False).fit(s[:10_000], y[:10_000])
    e = est.estimate(s[10_000:])
    r = realised_performance(s[10_000:], y[10_000:], 0.5)
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        assert e[name].value == pytest.approx(r[name].value, abs=0.015), name
    assert e.method == "cbpe"
    c = compare_performance(e, r).to_dict()["metrics"]
    assert set(c) == {"accuracy", "precision", "recall", "f1", "roc_auc"}


def test_prior_correction_wins_under_label_shift(rng: np.random.Generator) -> None:
    s_ref, y_ref = _task(rng, 20_000, 0.5)
    s, y = _task(rng, 10_000, 0.1)
    r = realised_performance(s, y, 0.5)
    plain = PerformanceEstimator(0.5, prior_correction=False).fit(s_ref, y_ref).estimate(s)
    fixed = PerformanceEstimator(0.5, prior_correction=True).fit(s_ref, y_ref).estimate(s)
    for name in ("accuracy", "precision", "f1"):
        err_plain = abs(plain[name].value - r[name].value)
        err_fixed = abs(fixed[name].value - r[name].value)
        assert err_fixed < err_plain, name
    assert abs(fixed["f1"].value - r["f1"].value) < 0.02
    assert fixed.details["estimated_prevalence"] == pytest.approx(0.1, abs=0.01)


def test_prior_correction_only_where_a_class_mix_fits(rng: np.random.Generator) -> None:
    """A window whose scores no class mix explains is estimated without the correction."""
    s_ref, y_ref = _task(rng, 20_000, 0.5)
    est = PerformanceEstimator(0.5, prior_correction=True).fit(s_ref, y_ref)
    s_mix, _ = _task(rng, 5_000, 0.2)
    mixed = est.estimate(s_mix)
    assert mixed.details["shift"] == "prior" and mixed.method == "cbpe_prior_corrected"
    assert mixed.details["prior_fit_p_value"] > 0.001
    # The model changed: every score pulled towards 0.5, a shape no mix of the classes has.
    s_new, _ = _task(rng, 5_000, 0.5)
    squeezed = 0.5 + 0.4 * (s_new - 0.5)
    changed = est.estimate(squeezed)
    assert changed.details["shift"] == "unexplained" and changed.method == "cbpe"
    assert changed.details["prior_fit_p_value"] < 0.001
    plain = PerformanceEstimator(0.5, prior_correction=False).fit(s_ref, y_ref)
    assert changed["accuracy"].value == plain.estimate(squeezed)["accuracy"].value
    off = PerformanceEstimator(0.5, prior_correction=True, prior_fit_alpha=0).fit(s_ref, y_ref)
    # the fit test switched off: corrected wherever the prior moved beyond its interval
    s_low, _ = _task(rng, 5_000, 0.2)
    assert off.estimate(0.5 + 0.4 * (s_low - 0.5)).details["shift"] == "prior"
    with pytest.raises(ValueError, match="prior_fit_alpha"):
        PerformanceEstimator(prior_fit_alpha=1.0).fit(s_ref, y_ref)


def test_correction_waits_for_the_prior_to_move(rng: np.random.Generator) -> None:
    """A window with the reference's class mix is estimated as plain CBPE: a correction by a
    prior within its interval would only add the estimated prior's noise."""
    s_ref, y_ref = _task(rng, 20_000, 0.5)
    kw = {"prior_correction": True, "n_simulations": 20, "metrics": ("f1",)}
    forced = PerformanceEstimator(0.5, **kw).fit(s_ref, y_ref)
    plain = PerformanceEstimator(0.5, **{**kw, "prior_correction": False}).fit(s_ref, y_ref)
    corrected = 0
    for _ in range(60):
        same, _ = _task(rng, 2_000, 0.5)
        e = forced.estimate(same)
        if e.details["shift"] == "none":
            assert e.method == "cbpe" and abs(e.details["prior_shift_z"]) <= 1.96
            assert e["f1"].value == plain.estimate(same)["f1"].value
        corrected += e.details["shift"] == "prior"
    # a 95% interval: about 5% of unchanged windows corrected (binomial sd 2.8 points)
    assert corrected / 60 < 0.15
    moved = forced.estimate(_task(rng, 2_000, 0.35)[0])
    assert moved.details["shift"] == "prior" and moved.details["prior_shift_z"] < -1.96


def test_scores_alone_cannot_tell_a_covariate_shift_from_a_new_class_mix(
    rng: np.random.Generator,
) -> None:
    """Why the default does not correct from scores alone: an input the model leans on but
    that says nothing about the class moves every score along the model's own direction, and
    the scores then fit a mix of the reference classes with a new prior, while the true class
    mix has not moved at all."""

    def task(n: int, tilt: float) -> tuple[np.ndarray, np.ndarray]:
        y = rng.random(n) < 0.5
        x = rng.normal(np.where(y, 1.0, -1.0), 1.0)
        spurious = rng.normal(0, 1, n)  # independent of the class
        s = 1 / (1 + np.exp(-(1.5 * x + spurious)))
        keep = rng.random(n) < np.exp(tilt * spurious) / np.exp(tilt * spurious).max()
        return s[keep][:5_000], y[keep][:5_000]

    rng = np.random.default_rng(5)  # one documented example, not a rate
    s_ref, y_ref = task(20_000, 0.0)
    s, y = task(40_000, -0.4)
    forced = PerformanceEstimator(0.5, prior_correction=True).fit(s_ref, y_ref).estimate(s)
    assert forced.details["prior_fit_p_value"] > 0.001  # a mix fits ...
    assert forced.details["shift"] == "prior"
    assert abs(float(y.mean()) - 0.5) < 0.03  # ... but the class mix did not move
    assert forced.details["estimated_prevalence"] < 0.47
    default = PerformanceEstimator(0.5).fit(s_ref, y_ref).estimate(s)
    assert default.method == "cbpe"


@pytest.mark.slow
def test_estimate_interval_covers_realised_by_simulation() -> None:
    rng = np.random.default_rng(5)
    s_ref, y_ref = _task(rng, 20_000, 0.3)
    est = PerformanceEstimator(0.5, n_simulations=200).fit(s_ref, y_ref)
    hits: dict[str, list[bool]] = {}
    for _ in range(150):
        s, y = _task(rng, 1000, 0.3)
        c = compare_performance(est.estimate(s), realised_performance(s, y, 0.5, n_bootstrap=20))
        for name, row in c.metrics.items():
            hits.setdefault(name, []).append(row["within"])
    for name, h in hits.items():
        assert 0.89 <= np.mean(h) <= 0.99, (name, np.mean(h))


def test_atc_tracks_accuracy_under_shift(rng: np.random.Generator) -> None:
    def probs(n: int, strength: float) -> tuple[np.ndarray, np.ndarray]:
        y = rng.integers(0, 4, n)
        logits = rng.normal(0, 1, (n, 4))
        logits[np.arange(n), y] += strength
        p = np.exp(logits)
        return p / p.sum(1, keepdims=True), y

    p_ref, y_ref = probs(5000, 2.0)
    atc = ATCEstimator().fit(p_ref, y_ref)
    for strength in (2.0, 1.5):  # the same model and a harder input distribution
        p, y = probs(5000, strength)
        real = float((p.argmax(1) == y).mean())
        e = atc.estimate(p)["accuracy"]
        assert abs(e.value - real) < 0.05
        if strength < 2.0:  # far better than assuming the reference accuracy still holds
            assert abs(e.value - real) < 0.5 * abs(atc.reference_accuracy_ - real)
        assert e.low < e.value < e.high
    ent = ATCEstimator(score="negative_entropy").fit(p_ref, y_ref)
    assert abs(ent.estimate(p_ref)["accuracy"].value - atc.reference_accuracy_) < 0.01
    with pytest.raises(ValueError, match="score"):
        ATCEstimator(score="margin").fit(p_ref, y_ref)


def test_estimator_bad_input(rng: np.random.Generator) -> None:
    s, y = _task(rng, 500, 0.5)
    with pytest.raises(ValueError, match="metrics"):
        PerformanceEstimator(metrics=("auprc",)).fit(s, y)
    with pytest.raises(ValueError, match="coverage"):
        PerformanceEstimator(coverage=1.5).fit(s, y)
    with pytest.raises(ValueError, match="labels"):
        PerformanceEstimator().fit(s, y[:10])
    with pytest.raises(RuntimeError, match="fit"):
        PerformanceEstimator().estimate(s)
    est = PerformanceEstimator().fit(s, y)
    with pytest.raises(ValueError, match="scores"):
        est.estimate(np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match="chunk_size"):
        est.estimate_chunks(s, 0)
    with pytest.raises(ValueError, match="labels"):
        realised_performance(s, np.full(500, 3), 0.5)


def _covariate_task(rng: np.random.Generator, n: int, tilt: float, prev: float = 0.5):
    """Two informative inputs, the model sees only a noisy score of the first; selection on
    the second moves P(y | score) while P(y | x) holds."""
    y = rng.random(n) < prev
    x = np.column_stack([rng.normal(np.where(y, 1.0, -1.0), 1.0), rng.normal(0, 1, n)])
    x[:, 1] += np.where(y, 0.8, -0.8)
    score = 1 / (1 + np.exp(-(1.5 * x[:, 0])))
    if tilt:
        keep = rng.random(n) < np.exp(tilt * x[:, 1]) / np.exp(tilt * x[:, 1]).max()
        return score[keep], y[keep], x[keep]
    return score, y, x


def test_features_detect_covariate_shift_and_reweight(rng: np.random.Generator) -> None:
    s_ref, y_ref, x_ref = _covariate_task(rng, 20_000, 0.0)
    s, y, x = _covariate_task(rng, 60_000, 1.5)
    r = realised_performance(s, y, 0.5)
    est = PerformanceEstimator(0.5).fit(s_ref, y_ref, features=x_ref)
    with_f = est.estimate(s, features=x)
    assert with_f.details["shift"] == "covariate"
    assert with_f.method == "cbpe_importance_weighted"
    corrected = PerformanceEstimator(0.5, prior_correction=True).fit(s_ref, y_ref).estimate(s)
    plain = est.estimate(s)  # the default from scores alone: plain CBPE
    assert plain.method == "cbpe"
    for name in ("accuracy", "f1"):
        err = abs(with_f[name].value - r[name].value)
        assert err < abs(corrected[name].value - r[name].value), name
        assert err < abs(plain[name].value - r[name].value) + 0.005, name
    # a pure prior shift is not mistaken for covariate shift
    s2, _, x2 = _covariate_task(rng, 10_000, 0.0, prev=0.2)
    prior = est.estimate(s2, features={"a": x2[:, 0], "b": x2[:, 1]})
    assert prior.details["shift"] == "prior"
    assert prior.details["covariate_p_value"] > 1e-6


def test_auto_corrects_only_when_justified(rng: np.random.Generator) -> None:
    """The default: plain CBPE from scores alone (a covariate shift can look like a new class
    mix); with features, corrected only when the class-reweighted reference explains them."""
    s_ref, y_ref, x_ref = _covariate_task(rng, 20_000, 0.0)
    est = PerformanceEstimator(0.5).fit(s_ref, y_ref, features=x_ref)
    assert est.prior_correction == "auto"
    s, y, x = _covariate_task(rng, 5_000, 0.0, prev=0.2)
    scores_only = est.estimate(s)
    assert scores_only.method == "cbpe" and "off" in scores_only.details["prior_correction"]
    plain = PerformanceEstimator(0.5, prior_correction=False).fit(s_ref, y_ref).estimate(s)
    assert scores_only["f1"].value == plain["f1"].value
    with_f = est.estimate(s, features=x)
    assert with_f.details["shift"] == "prior" and with_f.details["label_shift_p_value"] > 0.01
    r = realised_performance(s, y, 0.5)
    assert abs(with_f["f1"].value - r["f1"].value) < abs(plain["f1"].value - r["f1"].value)
    # inputs that moved within a class: no class mix explains them
    pool_s, pool_y, pool_x = _covariate_task(rng, 40_000, 0.0)
    keep = rng.random(len(pool_s)) < np.exp(0.7 * pool_x[:, 0]) / np.exp(0.7 * pool_x[:, 0]).max()
    kept_x, kept_y = pool_x[keep][:5000], pool_y[keep][:5000]
    p_cov = est._label_shift_p(kept_x, len(kept_x), float(kept_y.mean()))
    p_prior = est._label_shift_p(x, len(s), 0.2)
    assert p_cov < 0.01 < p_prior
    with pytest.raises(ValueError, match="prior_correction"):
        PerformanceEstimator(prior_correction="sometimes").fit(s_ref, y_ref)
    with pytest.raises(ValueError, match="label_shift_alpha"):
        PerformanceEstimator(label_shift_alpha=2).fit(s_ref, y_ref)


def test_features_bad_input(rng: np.random.Generator) -> None:
    s, y, x = _covariate_task(rng, 2000, 0.0)
    with pytest.raises(ValueError, match="features"):
        PerformanceEstimator().fit(s, y).estimate(s, features=x)
    est = PerformanceEstimator().fit(s, y, features=x)
    with pytest.raises(ValueError, match="features"):
        est.estimate(s, features=x[:, :1])
    with pytest.raises(ValueError, match=r"features\.a"):
        est.estimate(s, features={"a": ["x"] * len(s), "b": x[:, 1]})


def test_calibrator_sample_weight(rng: np.random.Generator) -> None:
    s, y = _task(rng, 4000, 0.5)
    w = np.where(y, 3.0, 1.0)  # up-weighting positives is a prior shift to 0.75
    for method in ("platt", "isotonic"):
        cal = Calibrator(method).fit(s, y, sample_weight=w)
        assert np.average(cal.predict(s), weights=w) == pytest.approx(0.75, abs=0.01)
    with pytest.raises(ValueError, match="sample_weight"):
        Calibrator().fit(s, y, sample_weight=-w)


def test_estimate_uses_the_labels_that_arrived(rng: np.random.Generator) -> None:
    s_ref, y_ref = _task(rng, 10_000, 0.5)
    s, y = _task(rng, 3000, 0.2)
    est = PerformanceEstimator(0.5).fit(s_ref, y_ref)
    none = est.estimate(s)
    half_labels = np.where(rng.random(3000) < 0.5, y, np.nan)
    half = est.estimate(s, labels=half_labels)
    full = est.estimate(s, labels=y)
    real = realised_performance(s, y, 0.5)
    for name in ("accuracy", "f1", "roc_auc"):
        assert full[name].value == pytest.approx(real[name].value)
        assert full[name].high - full[name].low == pytest.approx(0.0, abs=1e-12)
        width = half[name].high - half[name].low
        assert width < none[name].high - none[name].low
    assert half.details["n_labelled"] == int(np.isfinite(half_labels).sum())
