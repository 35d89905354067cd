"""Profiles: exact merges, round trips, quantile accuracy, schema inference, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from watchkeeper.profiles import (
    OTHER,
    CalibrationSketch,
    CategoricalSummary,
    NumericSummary,
    Profile,
    QuantileSketch,
    binary_labels,
    profile,
)
from watchkeeper.window import Window


def _window(rng: np.random.Generator, n: int, offset: float = 0.0) -> Window:
    scores = rng.uniform(size=n)
    return Window.from_columns(
        ts=np.arange(n, dtype=float) + offset,
        features={
            "x": np.where(rng.uniform(size=n) < 0.1, np.nan, rng.normal(size=n)),
            "k": rng.integers(0, 5, n).astype(float),
            "c": rng.choice(np.array(["a", "b", "c", None], dtype=object), n),
        },
        scores=scores,
        labels=(rng.uniform(size=n) < scores).astype(int),
        embeddings=rng.normal(size=(n, 4)),
        latency_ms=rng.exponential(10, n),
    )


def _rounded(x: object) -> object:
    """Floats to 9 significant digits: merges add sums in different orders."""
    if isinstance(x, dict):
        return {k: _rounded(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_rounded(v) for v in x]
    if isinstance(x, float):
        return float(f"{x:.9g}")
    return x


def test_merge_is_associative_and_zero_is_identity(rng: np.random.Generator) -> None:
    a, b, c = (profile(_window(rng, 300, 1000.0 * i)) for i in range(3))
    left = _rounded(a.merge(b).merge(c).to_dict())
    right = _rounded(a.merge(b.merge(c)).to_dict())
    assert json.dumps(left, sort_keys=True) == json.dumps(right, sort_keys=True)
    assert a.merge(Profile.zero()).to_dict() == a.to_dict()
    assert Profile.zero().merge(a).to_dict() == a.to_dict()


def test_merge_of_parts_equals_profile_of_whole(rng: np.random.Generator) -> None:
    w = _window(rng, 1000)
    whole = profile(w)
    parts = profile(w.take(np.arange(400))).merge(profile(w.take(np.arange(400, 1000))))
    assert parts.n == whole.n == 1000
    for name in ("x", "k", "c"):
        assert (
            parts.features[name].to_dict()["missing"] == whole.features[name].to_dict()["missing"]
        )
    assert parts.features["c"].counts == whole.features["c"].counts  # type: ignore[union-attr]
    assert parts.calibration is not None and whole.calibration is not None
    assert parts.calibration.count == whole.calibration.count
    assert np.allclose(parts.calibration.score_sum, whole.calibration.score_sum)
    assert parts.features["x"].sketch == whole.features["x"].sketch  # type: ignore[union-attr]


def test_round_trip_through_json(rng: np.random.Generator) -> None:
    p = profile(_window(rng, 500))
    d = json.loads(json.dumps(p.to_dict()))
    assert Profile.from_dict(d).to_dict() == p.to_dict()


def test_schema_ranges_missing_rates(rng: np.random.Generator) -> None:
    p = profile(_window(rng, 2000))
    assert p.schema() == {"c": "string", "k": "integer", "x": "float"}
    x = p.features["x"]
    assert isinstance(x, NumericSummary)
    assert 0.07 < x.missing_rate < 0.13
    assert x.min < -2 < 2 < x.max
    c = p.features["c"]
    assert isinstance(c, CategoricalSummary)
    assert set(c.counts) == {"a", "b", "c"} and 0.2 < c.missing_rate < 0.3
    assert p.embeddings is not None and p.embeddings.dim == 4
    assert p.ts_min == 0.0 and p.ts_max == 1999.0


@pytest.mark.parametrize("dist", ["normal", "lognormal", "mixed_sign"])
def test_quantiles_within_relative_accuracy(rng: np.random.Generator, dist: str) -> None:
    x = {
        "normal": rng.normal(50, 5, 20_000),
        "lognormal": rng.lognormal(0, 2, 20_000),
        "mixed_sign": rng.normal(0, 10, 20_000),
    }[dist]
    sketch = QuantileSketch.of(x, accuracy=0.01)
    qs = np.array([0.05, 0.25, 0.5, 0.75, 0.95])
    got = sketch.quantiles(qs)
    # Within 1% of some value whose rank is within one of the exact rank.
    exact = np.quantile(x, qs, method="lower")
    exact_hi = np.quantile(x, qs, method="higher")
    lo = np.minimum(exact, exact_hi)
    hi = np.maximum(exact, exact_hi)
    tol = 0.0101 * np.maximum(np.abs(lo), np.abs(hi)) + 1e-9
    assert np.all((got >= lo - tol) & (got <= hi + tol)), (got, exact)


def test_categorical_cap_pools_the_rest() -> None:
    values = np.array([f"v{i % 50}" for i in range(1000)], dtype=object)
    s = CategoricalSummary.of(values, max_categories=10)
    assert len(s.counts) == 10 and OTHER in s.counts and s.count == 1000


def test_calibration_ece_of_calibrated_scores_is_small(rng: np.random.Generator) -> None:
    s = rng.uniform(size=50_000)
    y = (rng.uniform(size=s.size) < s).astype(float)
    assert CalibrationSketch.of(s, y).ece() < 0.02
    assert CalibrationSketch.of(s, (s > 0.5).astype(float)).ece() > 0.2


def test_binary_labels_forms() -> None:
    assert binary_labels(np.array(["yes", "no", "yes"], dtype=object)).tolist() == [1, 0, 1]
    assert binary_labels(np.array([False, True], dtype=object)).tolist() == [0.0, 1.0]
    with pytest.raises(ValueError, match="labels: 3 distinct"):
        binary_labels(np.array(["a", "b", "c"], dtype=object))


def test_bad_input_names_the_field() -> None:
    with pytest.raises(ValueError, match="accuracy"):
        QuantileSketch.of(np.ones(3), accuracy=2.0)
    with pytest.raises(ValueError, match="accuracy"):
        QuantileSketch.of(np.ones(3), 0.01).merge(QuantileSketch.of(np.ones(3), 0.02))
    with pytest.raises(ValueError, match="bins"):
        CalibrationSketch.of(np.ones(3), np.ones(3), 5).merge(
            CalibrationSketch.of(np.ones(3), np.ones(3))
        )


def test_profile_of_dataframe_and_dict() -> None:
    import pandas as pd

    df = pd.DataFrame({"a": [1.0, 2.0], "b": ["x", "y"]})
    assert profile(df).schema() == {"a": "integer", "b": "string"}
    assert profile({"a": [0.5, 1.5]}).schema() == {"a": "float"}
