"""Wrappers over stats, estimation and detectors: drift, operating point, performance, streams."""

from __future__ import annotations

import json

import numpy as np
import pytest

from watchkeeper.checks import (
    PreparedReference,
    estimated_performance,
    feature_drift,
    operating_point,
    prediction_drift,
    realised_performance,
    streaming,
)
from watchkeeper.window import Window

OP = {"threshold": 0.5, "tpr": 0.9, "fpr": 0.02}


def _scored(rng: np.random.Generator, n: int, prevalence: float, broken: bool = False) -> Window:
    """Scores whose flags at 0.5 have TPR 0.9 and FPR 0.02; ``broken`` scores at random."""
    y = rng.uniform(size=n) < prevalence
    flagged = np.where(y, rng.uniform(size=n) < 0.9, rng.uniform(size=n) < 0.02)
    s = np.where(flagged, rng.uniform(0.5, 1.0, n), rng.uniform(0.0, 0.5, n))
    if broken:
        s = rng.uniform(size=n)
    return Window.from_columns(
        ts=np.arange(n, dtype=float),
        scores=s,
        labels=y.astype(int),
        features={"x": rng.normal(size=n)},
    )


def test_feature_drift_skips_absent_columns(rng: np.random.Generator) -> None:
    ref = Window.from_columns(features={"a": rng.normal(size=400), "b": rng.normal(size=400)})
    cur = Window.from_columns(features={"a": rng.normal(2, 1, 200)})
    found = feature_drift(ref, cur)
    assert [(f.subject, f.drift) for f in found] == [("a", True), ("*", True)]
    with pytest.raises(ValueError, match=r"feature_drift\.features"):
        feature_drift(ref, cur, {"features": ["zzz"]})


def test_prediction_drift_methods(rng: np.random.Generator) -> None:
    ref = _scored(rng, 2000, 0.1)
    same = _scored(rng, 1000, 0.1)
    assert not prediction_drift(ref, same)[0].drift
    psi = prediction_drift(ref, _scored(rng, 1000, 0.5), {"method": "psi"})[0]
    assert psi.method == "psi" and psi.drift and psi.p_value is None
    with pytest.raises(ValueError, match=r"prediction_drift\.method"):
        prediction_drift(ref, same, {"method": "astrology"})


def test_operating_point_worked_example(rng: np.random.Generator) -> None:
    prep = PreparedReference(_scored(rng, 5000, 0.1), OP)
    calm = operating_point(prep, _scored(rng, 1000, 0.1), {"expected_prevalence": 0.1})
    assert not calm[0].drift and calm[0].details["verdict"] == "as_expected"
    shifted = operating_point(prep, _scored(rng, 1000, 0.16), {"expected_prevalence": 0.1})[0]
    assert shifted.drift and shifted.details["verdict"] == "prior_shift"
    assert shifted.severity == "critical"


def test_operating_point_tells_model_change_from_prior_shift_by_the_scores(
    rng: np.random.Generator,
) -> None:
    """A count of about 230 is a prior shift to 24% by the count alone; the scores say no."""
    prep = PreparedReference(_scored(rng, 5000, 0.1), OP)
    w = _scored(rng, 1000, 0.1)
    s = w.scores.copy()  # type: ignore[union-attr]
    y = np.asarray(w.labels)
    # 15% of negatives now score just above the threshold: a bump no class mix produces.
    moved = (y == 0) & (rng.uniform(size=len(s)) < 0.15)
    s[moved] = rng.uniform(0.5, 0.6, int(moved.sum()))
    broken = Window.from_columns(ts=w.ts, scores=s)
    (f,) = operating_point(prep, broken, {"expected_prevalence": 0.1})
    assert f.drift and f.details["count_verdict"] == "prior_shift"
    assert f.details["verdict"] == "model_change"
    assert f.details["diagnosis"]["verdict"] == "model_change"
    (c,) = operating_point(prep, broken, {"expected_prevalence": 0.1, "diagnose_scores": False})
    assert c.details["verdict"] == "prior_shift" and "diagnosis" not in c.details
    # A true prior shift keeps its verdict, and the scores estimate the prevalence.
    (p,) = operating_point(prep, _scored(rng, 1000, 0.2), {"expected_prevalence": 0.1})
    assert p.details["verdict"] == "prior_shift"
    assert p.details["score_prevalence_low"] < 0.2 < p.details["score_prevalence_high"]


def test_count_and_score_prevalence_are_two_fields(rng: np.random.Generator) -> None:
    """The count's implied prevalence is not overwritten by the score-based estimate."""
    from watchkeeper.estimation import OperatingPoint, check_flags

    prep = PreparedReference(_scored(rng, 5000, 0.1), OP)
    w = _scored(rng, 1000, 0.1)
    s = w.scores.copy()  # type: ignore[union-attr]
    y = np.asarray(w.labels)
    moved = (y == 0) & (rng.uniform(size=len(s)) < 0.15)
    s[moved] = rng.uniform(0.5, 0.6, int(moved.sum()))
    broken = Window.from_columns(ts=w.ts, scores=s)
    (f,) = operating_point(prep, broken, {"expected_prevalence": 0.1})
    op = OperatingPoint(0.5, 0.9, 0.02)
    count = check_flags(op, 0.1, len(s), int((s >= 0.5).sum()))
    assert f.details["verdict"] == "model_change"
    assert f.details["prevalence"] == count.prevalence  # what the count alone implies
    assert f.details["prevalence_low"] == count.prevalence_low
    assert f.details["score_prevalence"] == f.details["diagnosis"]["prevalence"]
    assert f.details["score_prevalence"] != f.details["prevalence"]


def test_performance_drop_is_found_with_and_without_labels(rng: np.random.Generator) -> None:
    prep = PreparedReference(_scored(rng, 5000, 0.3), OP)
    good = _scored(rng, 2000, 0.3)
    broken = _scored(rng, 2000, 0.3, broken=True)
    assert not realised_performance(prep, good)[0].drift
    (f,) = realised_performance(prep, broken)
    assert f.drift and f.statistic < f.details["reference"] - 0.05
    assert not estimated_performance(prep, good)[0].drift
    few = Window.from_columns(scores=good.scores[:10], labels=good.labels[:10])  # type: ignore[index]
    assert realised_performance(prep, few) == []
    with pytest.raises(ValueError, match=r"realised_performance\.metric"):
        realised_performance(prep, good, {"metric": "vibes"})


def test_streaming_state_continues_across_windows(rng: np.random.Generator) -> None:
    w = _scored(rng, 6000, 0.1)
    s = w.scores.copy()  # type: ignore[union-attr]
    s[4000:] = rng.uniform(0.25, 1.0, 2000)
    w = Window.from_columns(ts=w.ts, scores=s, labels=w.labels)
    whole, _ = streaming(w, threshold=0.5, flag_rate=0.108, error_rate=0.03)
    first, state = streaming(
        w.take(np.arange(3000)), threshold=0.5, flag_rate=0.108, error_rate=0.03
    )
    state = json.loads(json.dumps(state))  # as stored
    second, _ = streaming(
        w.take(np.arange(3000, 6000)), state=state, threshold=0.5, flag_rate=0.108, error_rate=0.03
    )
    assert not any(f.drift for f in first), [(f.subject, f.details) for f in first]
    by = {f.subject: f for f in second}
    assert by["score"].drift and by["flag"].drift and by["error"].drift
    assert {f.subject: f.statistic for f in whole} == {f.subject: f.statistic for f in second}
    with pytest.raises(ValueError, match=r"streaming\.score"):
        streaming(w, {"score": "Oracle"}, threshold=0.5)


def test_embedding_drift_subsamples_and_finds_a_shift(rng: np.random.Generator) -> None:
    from watchkeeper.checks import embedding_drift

    ref = Window.from_columns(embeddings=rng.normal(size=(3000, 16)))
    same = Window.from_columns(embeddings=rng.normal(size=(2000, 16)))
    moved = Window.from_columns(embeddings=rng.normal(0.15, 1, size=(2000, 16)))
    opts = {"max_samples": 400}
    (f,) = embedding_drift(ref, same, opts)
    assert not f.drift and f.details["n_reference"] == 400
    assert embedding_drift(ref, moved, opts)[0].drift
    assert embedding_drift(ref, moved, {"method": "linear_mmd"})[0].method
    with pytest.raises(ValueError, match=r"embedding_drift\.method"):
        embedding_drift(ref, moved, {"method": "vibes"})


def test_prediction_drift_multiclass_and_predicted_labels(rng: np.random.Generator) -> None:
    def w(n: int, alpha: list[float]) -> Window:
        p = rng.dirichlet(alpha, n)
        return Window.from_columns(
            probs=p, predicted=np.array(["a", "b", "c"], dtype=object)[p.argmax(axis=1)]
        )

    ref = w(2000, [2, 2, 2])
    calm = prediction_drift(ref, w(800, [2, 2, 2]))
    assert [f.subject for f in calm] == ["prob_0", "prob_1", "prob_2", "predicted"]
    assert not any(f.drift for f in calm)
    moved = {f.subject: f for f in prediction_drift(ref, w(800, [6, 2, 2]))}
    assert moved["prob_0"].drift and moved["predicted"].drift
    assert moved["prob_0"].details["correction"] == "holm"
