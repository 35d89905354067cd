"""Data quality, pipeline health, skew, calibration checks and the monitor configuration."""

from __future__ import annotations

import numpy as np
import pytest

from watchkeeper.checks import (
    Finding,
    MonitorConfig,
    calibration_drift,
    check_freshness,
    check_volume,
    data_quality,
    default_config,
    environment_skew,
    training_serving_skew,
)
from watchkeeper.profiles import profile
from watchkeeper.window import Window


def _ref(rng: np.random.Generator, n: int = 2000) -> Window:
    s = rng.uniform(size=n)
    return Window.from_columns(
        ids=[f"r{i}" for i in range(n)],
        ts=np.arange(n, dtype=float),
        features={
            "x": rng.normal(size=n),
            "c": rng.choice(np.array(["a", "b", "c"], dtype=object), n),
        },
        scores=s,
        labels=(rng.uniform(size=n) < s).astype(int),
    )


def _by(findings: list[Finding], check: str, subject: str) -> Finding:
    (f,) = [f for f in findings if f.check == check and f.subject == subject]
    return f


def test_clean_window_has_no_quality_drift(rng: np.random.Generator) -> None:
    ref = _ref(rng)
    cur = _ref(rng, 1000)
    found = data_quality(ref, cur)
    assert found and not any(f.drift for f in found), [f for f in found if f.drift]
    assert {f.check for f in found} >= {
        "data_quality.type",
        "data_quality.range",
        "data_quality.new_category",
        "data_quality.missing_rate",
        "data_quality.duplicate_ids",
        "data_quality.constant",
    }


def test_each_violation_is_found(rng: np.random.Generator) -> None:
    ref = _ref(rng)
    n = 500
    x = rng.normal(size=n).astype(object)
    x[:50] = "n/a"  # wrong type
    c = rng.choice(np.array(["a", "b", "zz"], dtype=object), n)
    ids = [f"w{i}" for i in range(n)]
    ids[1] = ids[0]
    cur = Window.from_columns(ids=ids, features={"x": x, "c": c})
    found = data_quality(profile(ref), cur)
    assert _by(found, "data_quality.type", "x").drift
    assert _by(found, "data_quality.new_category", "c").details["new"].keys() == {"zz"}
    assert _by(found, "data_quality.duplicate_ids", "id").drift
    out = Window.from_columns(features={"x": rng.normal(10, 1, n), "c": ["a"] * n})
    found = data_quality(ref, out)
    assert _by(found, "data_quality.range", "x").statistic > 0.9
    assert _by(found, "data_quality.constant", "c").drift
    missing = Window.from_columns(
        features={"x": np.where(rng.uniform(size=n) < 0.4, np.nan, 0.1), "c": c}
    )
    assert _by(data_quality(ref, missing), "data_quality.missing_rate", "x").drift
    gone = Window.from_columns(features={"c": c})
    assert _by(data_quality(ref, gone), "data_quality.type", "x").details["reason"] == (
        "missing column"
    )


def test_pipeline_checks() -> None:
    assert check_freshness(100.0, 50.0, {"max_silence_seconds": 10})[0].drift
    assert check_freshness(100.0, None, {"max_silence_seconds": 10}) == []  # not serving yet
    assert not check_freshness(100.0, 95.0, {"max_silence_seconds": 10})[0].drift
    assert check_freshness(100.0, 0.0, {}) == []
    # Small expected volumes are judged by the Poisson band, not the relative error alone.
    assert not check_volume(2, {"expected_volume": 5})[0].drift
    assert check_volume(0, {"expected_volume": 100})[0].drift
    with pytest.raises(ValueError, match="expected_volume"):
        check_volume(1, {"expected_volume": -1})


def test_training_serving_skew_finds_mismatched_features(rng: np.random.Generator) -> None:
    ref = _ref(rng)
    x = ref.features["x"].copy()
    x[:100] += 1.0
    serving = Window.from_columns(ids=ref.ids, features={"x": x, "c": ref.features["c"]})
    found = training_serving_skew(ref, serving)
    assert _by(found, "training_serving_skew", "x").drift
    assert not _by(found, "training_serving_skew", "c").drift
    other = Window.from_columns(ids=["nope"], features={"x": [1.0]})
    assert training_serving_skew(ref, other) == []


def test_environment_skew_levels() -> None:
    train = {"python": "3.11.4", "packages": {"numpy": "2.1.0"}}
    serve = [{"python": "3.11.9", "packages": {"numpy": "2.1.3"}}]
    assert not _by(environment_skew(train, serve), "environment", "*").drift
    assert _by(environment_skew(train, serve, {"level": "patch"}), "environment", "*").drift
    with pytest.raises(ValueError, match=r"environment\.level"):
        environment_skew(train, serve, {"level": "nano"})


def test_calibration_drift_on_miscalibrated_window(rng: np.random.Generator) -> None:
    ref = _ref(rng, 5000)
    s = rng.uniform(size=3000)
    bad = Window.from_columns(scores=s, labels=(rng.uniform(size=3000) < s**2).astype(int))
    (f,) = calibration_drift(profile(ref), bad)
    assert f.drift and f.p_value is not None and f.p_value < 1e-6
    assert f.details["ece_reference"] < 0.05 < f.statistic
    assert calibration_drift(ref, bad.take(np.arange(10))) == []  # too few labels


@pytest.mark.slow
def test_calibration_false_alarm_rate_near_alpha(rng: np.random.Generator) -> None:
    ref = _ref(rng, 5000)
    alarms = 0
    trials = 300
    for _ in range(trials):
        s = rng.uniform(size=1000)
        w = Window.from_columns(scores=s, labels=(rng.uniform(size=1000) < s).astype(int))
        alarms += calibration_drift(ref, w, {"alpha": 0.05})[0].drift
    # The reference rates are estimates too, so the test is slightly liberal; bound it.
    assert alarms / trials < 0.1


def test_config_round_trip_and_errors(rng: np.random.Generator) -> None:
    cfg = default_config(_ref(rng), {"threshold": 0.5, "tpr": 0.9, "fpr": 0.1}, window="15m")
    cfg.validate()
    back = MonitorConfig.from_yaml(cfg.to_yaml())
    assert back.to_dict() == cfg.to_dict()
    assert back.window_seconds() == 900.0
    assert back.option("pipeline_health", "max_silence_seconds") == 2700.0
    with pytest.raises(ValueError, match=r"checks\.nope"):
        MonitorConfig(checks={"nope": {}}).validate()
    with pytest.raises(ValueError, match=r"checks\.calibration\.colour"):
        MonitorConfig(checks={"calibration": {"colour": 1}}).validate()
    with pytest.raises(ValueError, match=r"checks\.calibration\.alpha"):
        MonitorConfig(checks={"calibration": {"alpha": 5}}).validate()
    with pytest.raises(ValueError, match=r"window\.size"):
        MonitorConfig(window={"kind": "time", "size": "soon"}).validate()
    with pytest.raises(ValueError, match="unknown configuration key"):
        MonitorConfig.from_dict({"colour": 1})


def test_finding_round_trip() -> None:
    f = Finding("x", "y", "m", float("nan"), None, False, details={"a": np.int64(1)})
    d = f.to_dict()
    assert d["statistic"] is None and d["details"] == {"a": 1}
    assert Finding.from_dict(d).check == "x"
    with pytest.raises(ValueError, match="severity"):
        Finding("x", "y", "m", 1.0, None, True, severity="loud")
