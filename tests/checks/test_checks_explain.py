"""Explanations by segment: the planted feature and segment are named first; with no drift no
feature passes the null threshold more often than its level (simulation)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from watchkeeper.checks.explain import (
    MAX_SEGMENT_ROWS,
    error_shares,
    explain_shift,
    feature_importance,
    segment_shares,
)
from watchkeeper.window import Window


def _batch(
    rng: np.random.Generator, n: int, shift: float = 0.0, segment: str = "eu", feature: str = "x2"
) -> Window:
    region = rng.choice(["eu", "us", "apac", "latam"], n, p=[0.25, 0.35, 0.25, 0.15])
    device = rng.choice(["ios", "android", "web"], n)
    features: dict[str, Any] = {f"x{j}": rng.normal(size=n) for j in range(6)}
    features["plan"] = rng.choice(["free", "pro"], n).astype(object)
    features[feature] = features[feature] + shift * (region == segment)
    return Window.from_columns(features=features, tags={"region": region, "device": device})


@pytest.mark.parametrize(("feature", "segment"), [("x2", "eu"), ("x5", "latam")])
def test_a_planted_drift_is_named_first(feature: str, segment: str) -> None:
    rng = np.random.default_rng(7)
    ref = _batch(rng, 4000)
    win = _batch(rng, 4000, shift=1.5, segment=segment, feature=feature)
    e = explain_shift(ref, win, subject=feature, seed=3)
    assert e.features[0]["name"] == feature and e.features[0]["above_null"]
    assert [f["name"] for f in e.features[1:] if f["above_null"]] == []
    assert e.auc is not None and e.auc > 0.5 and e.auc_p_value is not None
    assert e.auc_p_value < 0.01
    top = e.segments[0]
    assert (top["tag"], top["value"]) == ("region", segment)
    assert top["share"] > 0.8 and top["p_value"] < 0.01
    assert top["n_window"] > 0 and top["n_reference"] > 0
    # the shares of one tag's values add up to the whole change
    for tag in ("region", "device"):
        total = sum(s["share"] for s in segment_shares(
            ref.features[feature], win.features[feature],
            {tag: ref.tags[tag]}, {tag: win.tags[tag]}))  # fmt: skip
        assert total == pytest.approx(1.0)
    # a model-level finding is split on the feature the classifier ranks first
    whole = explain_shift(ref, win, subject="*", seed=3)
    assert whole.details["measured"] == feature
    assert (whole.segments[0]["tag"], whole.segments[0]["value"]) == ("region", segment)


def test_a_mix_change_is_told_from_a_shape_change() -> None:
    rng = np.random.default_rng(1)
    n = 6000
    seg_r = rng.choice(["a", "b"], n, p=[0.8, 0.2])
    seg_w = rng.choice(["a", "b"], n, p=[0.4, 0.6])  # more traffic from b, same values
    x_r = rng.normal(size=n) + 3.0 * (seg_r == "b")
    x_w = rng.normal(size=n) + 3.0 * (seg_w == "b")
    rows = {r["value"]: r for r in segment_shares(x_r, x_w, {"s": seg_r}, {"s": seg_w})}
    assert rows["b"]["share"] > 0.4
    assert rows["b"]["mix_share"] == pytest.approx(rows["b"]["share"], abs=0.1)
    assert rows["b"]["p_value"] > 0.01  # its own values did not move


def test_no_drift_no_feature_above_the_null_at_its_rate() -> None:
    """Family-wise rate of 'some feature above the null threshold' under no drift, at alpha
    0.1, over 40 seeded draws: at most 9 (P(Binomial(40, 0.1) >= 10) = 0.04)."""
    rng = np.random.default_rng(11)
    above = 0
    auc_flags = 0
    for r in range(40):
        ref = {f"x{j}": rng.normal(size=300) for j in range(4)}
        cur = {f"x{j}": rng.normal(size=300) for j in range(4)}
        ref["c"] = rng.choice(list("abc"), 300).astype(object)
        cur["c"] = rng.choice(list("abc"), 300).astype(object)
        fi = feature_importance(ref, cur, alpha=0.1, n_permutations=100, seed=r)
        above += any(f["above_null"] for f in fi["features"])
        auc_flags += fi["auc_p_value"] <= 0.1
    assert above <= 9
    assert auc_flags <= 9


@pytest.mark.slow
def test_no_drift_rate_holds_over_many_draws() -> None:
    rng = np.random.default_rng(12)
    above = 0
    runs = 150
    for r in range(runs):
        ref = {f"x{j}": rng.standard_t(3, size=500) for j in range(5)}
        cur = {f"x{j}": rng.standard_t(3, size=500) for j in range(5)}
        fi = feature_importance(ref, cur, alpha=0.05, n_permutations=200, seed=r)
        above += any(f["above_null"] for f in fi["features"])
    # 0.05 +- 3 standard errors
    assert above / runs <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / runs)


def test_performance_finding_splits_the_error_change() -> None:
    rng = np.random.default_rng(3)
    n = 4000

    def batch(worse: bool) -> Window:
        region = rng.choice(["eu", "us"], n)
        y = rng.random(n) < 0.3
        noise = np.where(worse & (region == "us"), 0.45, 0.15)
        flip = rng.random(n) < noise
        scores = np.where(y ^ flip, 0.8, 0.2)
        return Window.from_columns(
            features={"x": rng.normal(size=n)},
            scores=scores,
            labels=y.astype(int),
            tags={"region": region},
        )

    e = explain_shift(batch(False), batch(True), subject="*", performance=True, positive_label=1)
    assert e.kind == "performance"
    assert e.details["error_window"] > e.details["error_reference"] + 0.1
    top = e.segments[0]
    assert top["value"] == "us" and top["share"] > 0.8
    assert top["error_window"] > top["error_reference"]
    # without labels the distribution is explained, and the reason is said
    plain = explain_shift(
        Window.from_columns(features={"x": rng.normal(size=500)}),
        Window.from_columns(features={"x": rng.normal(size=500)}),
        performance=True,
    )
    assert plain.kind == "drift" and "labelled" in plain.details["performance"]


def test_error_shares_direct() -> None:
    rng = np.random.default_rng(0)
    seg = rng.choice(["a", "b", "c"], 3000)
    ref = (rng.random(3000) < 0.1).astype(float)
    win = (rng.random(3000) < np.where(seg == "c", 0.5, 0.1)).astype(float)
    win[:100] = np.nan  # unlabelled rows are left out
    rows = error_shares(ref, win, {"s": seg}, {"s": seg})
    assert rows[0]["value"] == "c"
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)


def test_bounded_output_and_bad_input() -> None:
    rng = np.random.default_rng(2)
    n = 800
    many = np.array([f"v{i}" for i in rng.integers(0, 500, n)], dtype=object)
    ref = Window.from_columns(features={"x": rng.normal(size=n)}, tags={"id": many})
    win = Window.from_columns(features={"x": rng.normal(size=n) + 1}, tags={"id": many[::-1]})
    e = explain_shift(ref, win, subject="x", n_permutations=50)
    assert len(e.segments) <= MAX_SEGMENT_ROWS
    values = {s["value"] for s in segment_shares(ref.features["x"], win.features["x"],
                                                 ref.tags, win.tags)}  # fmt: skip
    assert "(other)" in values and len(values) <= 21
    d = e.to_dict()
    assert d["features"][0]["name"] == "x" and isinstance(d["segments"], list)
    with pytest.raises(ValueError, match="alpha"):
        feature_importance({"x": np.ones(100)}, {"x": np.ones(100)}, alpha=1.5)
    with pytest.raises(ValueError, match="n_permutations"):
        feature_importance({"x": np.ones(100)}, {"x": np.ones(100)}, n_permutations=5)
    with pytest.raises(ValueError, match="bins"):
        segment_shares(np.ones(10), np.ones(10), {}, {}, bins=1)
    with pytest.raises(TypeError, match="Window"):
        explain_shift({"x": 1}, win)  # type: ignore[arg-type]
    # too few rows: no classifier, said plainly
    tiny = feature_importance({"x": np.ones(10)}, {"x": np.ones(10)})
    assert tiny["auc"] is None and tiny["features"] == []
