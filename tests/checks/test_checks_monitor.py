"""watchkeeper.monitor on plain arrays, the combined drift verdict, and the class-mix check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import watchkeeper
from watchkeeper.checks import MonitorConfig, class_mix, finding, model_drift
from watchkeeper.window import Window


def _binary(rng: np.random.Generator, n: int, shift: float = 0.0) -> dict:
    y = rng.integers(0, 2, n)
    e = rng.normal(0, 1, (n, 6))
    e[:, 0] += 2 * y + shift
    return {
        "features": {"a": e[:, 1], "b": e[:, 2] + shift},
        "embeddings": e,
        "scores": 1 / (1 + np.exp(-(1.5 * e[:, 0] - 1.5))),
        "labels": y,
    }


def _softmax(rng: np.random.Generator, y: np.ndarray, k: int = 10) -> np.ndarray:
    z = rng.normal(0, 1, (len(y), k))
    z[np.arange(len(y)), y] += 4.0
    return np.exp(z) / np.exp(z).sum(1, keepdims=True)


def test_monitor_on_plain_arrays() -> None:
    rng = np.random.default_rng(0)
    ref = _binary(rng, 800)
    same = watchkeeper.monitor(ref, _binary(rng, 300))
    assert not same.drift and same.p_value is not None and same.p_value > 0.05
    assert {f.check for f in same.findings} >= {"feature_drift", "embedding_drift", "model_drift"}
    moved = watchkeeper.monitor(ref, _binary(rng, 300, shift=0.5))
    assert moved.drift and moved.p_value is not None and moved.p_value < 1e-3
    assert moved.of("model_drift")[0].details["strongest"]
    assert moved.to_dict()["drift"] is True
    # features alone, as a DataFrame, a mapping or a 2-D array
    a, b = rng.normal(size=(500, 3)), rng.normal(0.6, 1, size=(200, 3))
    for ref_x, cur_x in (
        (pd.DataFrame(a, columns=list("xyz")), pd.DataFrame(b, columns=list("xyz"))),
        ({"x": a[:, 0], "y": a[:, 1]}, {"x": b[:, 0], "y": b[:, 1]}),
        (a, b),
    ):
        assert watchkeeper.monitor(ref_x, cur_x).drift


def test_monitor_bad_input_names_the_argument() -> None:
    with pytest.raises(ValueError, match="current"):
        watchkeeper.monitor({"x": [1.0, 2.0]}, "not a window")
    with pytest.raises(ValueError, match="reference: empty"):
        watchkeeper.monitor(Window.from_columns(scores=[]), {"scores": [0.1]})
    with pytest.raises(ValueError, match=r"checks\.nope"):
        watchkeeper.monitor({"x": [1.0, 2.0]}, {"x": [1.0]}, config={"checks": {"nope": {}}})


def test_model_drift_level_by_simulation() -> None:
    """The combined verdict of correlated tests (the score and a feature carry the same
    signal) keeps its level: 120 windows of 60 events with nothing changed."""
    rng = np.random.default_rng(1)
    ref = Window.from_columns(**_binary(rng, 600))
    alarms = []
    for _ in range(120):
        cur = _binary(rng, 60)
        cur.pop("embeddings")
        w = Window.from_columns(**cur)
        report = watchkeeper.monitor(ref, w, config={"checks": {"calibration": {"enabled": False}}})
        alarms.append(report.of("model_drift")[0].drift)
    assert np.mean(alarms) <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / 120)


def test_model_drift_one_clear_test_suffices() -> None:
    """A vote (two of three tests) misses a change only one test sees; the combined p-value
    does not, and it stays a valid p-value (never below the smallest one)."""
    w = Window.from_columns(scores=[0.1, 0.2])
    found = [
        finding("embedding_drift", "embedding", "mmd", 0.0, True, p_value=0.01, alpha=0.05),
        finding("prediction_drift", "score", "ks", 0.0, False, p_value=0.3, alpha=0.05),
        finding("feature_drift", "a", "ks", 0.0, False, p_value=1.0, alpha=0.05,
                details={"p_value_raw": 0.6}),
        finding("feature_drift", "*", "ks", 0.0, False, p_value=1.0, alpha=0.05),
    ]  # fmt: skip
    f = model_drift(found, w)[0]
    assert f.drift and f.p_value is not None and 0.01 <= f.p_value < 0.05
    assert set(f.details["tests"]) == {
        "embedding_drift.embedding",
        "prediction_drift.score",
        "feature_drift",
    }
    assert f.details["strongest"] == "embedding_drift.embedding"
    assert model_drift([], w) == []
    with pytest.raises(ValueError, match="method"):
        model_drift(found, w, {"method": "vote"})


def test_class_mix_check_for_a_ten_class_model() -> None:
    rng = np.random.default_rng(2)
    y = rng.integers(0, 10, 5000)
    ref = Window.from_columns(probs=_softmax(rng, y), labels=y)
    same = class_mix(ref, Window.from_columns(probs=_softmax(rng, rng.integers(0, 10, 500))))[0]
    assert not same.drift and same.details["verdict"] == "as_expected"
    assert np.all(np.asarray(same.details["low"]) <= np.asarray(same.details["observed"]))
    pri = np.full(10, 0.1)
    pri[3] = 0.01
    pri /= pri.sum()
    gone = class_mix(ref, Window.from_columns(probs=_softmax(rng, rng.choice(10, 500, p=pri))))[0]
    assert gone.drift and gone.details["most_changed"] == "3"
    assert gone.details["verdict"] == "prior_shift"
    # the same story from predicted labels (strings) without probabilities
    names = np.array(list("abcdefghij"))
    ref_l = Window.from_columns(predicted=names[_softmax(rng, y).argmax(1)], labels=names[y])
    moved = rng.choice(10, 500, p=pri)
    cur_l = Window.from_columns(predicted=names[_softmax(rng, moved).argmax(1)])
    f = class_mix(ref_l, cur_l)[0]
    assert f.drift and f.details["most_changed"] == "d"
    # the one-sided option: a class that rose is no evidence of one that fell
    boosted = np.full(10, 0.1)
    boosted[3] = 0.2
    up = Window.from_columns(probs=_softmax(rng, rng.choice(10, 500, p=boosted / boosted.sum())))
    assert class_mix(ref, up)[0].drift
    assert class_mix(ref, up, {"alternative": "increase"})[0].drift
    # the other nine fell 10% each: "decrease" sees far less of that than "increase" sees
    one_sided = class_mix(ref, up, {"alternative": "decrease"})[0]
    assert one_sided.p_value > class_mix(ref, up, {"alternative": "increase"})[0].p_value
    with pytest.raises(ValueError, match=r"checks\.class_mix\.alternative"):
        MonitorConfig(checks={"class_mix": {"alternative": "less"}}).validate()
    # binary models have the operating point instead
    assert class_mix(Window.from_columns(scores=[0.1, 0.9], labels=[0, 1]), ref) == []
    knocked = Window.from_columns(probs=_softmax(rng, rng.choice(10, 500, p=pri)))
    report = watchkeeper.monitor(ref, knocked)
    assert report.drift and report.of("class_mix")[0].drift


def test_model_drift_weighs_the_class_count_tests_as_much_as_the_others() -> None:
    """A pure label shift is seen by the tests of the predicted-class counts alone; they weigh
    half of the combination, so their p = 0.02 gives drift next to two quiet input tests (with a
    third each, the Cauchy combination would give about 0.06)."""
    w = Window.from_columns(scores=[0.1, 0.2])
    found = [
        finding("embedding_drift", "embedding", "mmd", 0.0, False, p_value=0.5, alpha=0.05),
        finding("prediction_drift", "prob_0", "ks", 0.0, False, p_value=1.0, alpha=0.05,
                details={"p_value_raw": 0.5}),
        finding("prediction_drift", "predicted", "chi2", 0.0, True, p_value=0.02, alpha=0.05),
        finding("class_mix", "*", "class_mix", 0.0, True, p_value=0.02, alpha=0.05),
    ]  # fmt: skip
    f = model_drift(found, w)[0]
    assert f.drift and f.p_value is not None and 0.02 <= f.p_value < 0.05
    assert {"prediction_drift.predicted", "class_mix.*"} <= set(f.details["tests"])
    quiet = [found[0], found[1]]
    g = model_drift(quiet, w)[0]
    assert not g.drift and g.p_value is not None and g.p_value > 0.3
