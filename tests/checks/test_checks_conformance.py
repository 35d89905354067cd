"""One suite over every check: empty windows, JSON-ready findings, determinism, NaN input."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from watchkeeper.checks import (
    PreparedReference,
    calibration_drift,
    data_quality,
    embedding_drift,
    estimated_performance,
    feature_drift,
    operating_point,
    prediction_drift,
    realised_performance,
    training_serving_skew,
)
from watchkeeper.window import Window

OP = {"threshold": 0.5, "tpr": 0.8, "fpr": 0.1}


def _window(seed: int, n: int, nan: bool = False) -> Window:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    if nan:
        x[::7] = np.nan
    s = rng.uniform(size=n)
    return Window.from_columns(
        ids=[f"i{i}" for i in range(n)],
        ts=np.arange(n, dtype=float),
        features={"x": x, "c": rng.choice(np.array(["a", "b"], dtype=object), n)},
        scores=s,
        labels=(rng.uniform(size=n) < s).astype(int),
        embeddings=rng.normal(size=(n, 8)),
    )


REF = _window(0, 2000)
CHECKS: dict[str, Callable[[Window], list[Any]]] = {
    "feature_drift": lambda w: feature_drift(PreparedReference(REF, OP), w),
    "prediction_drift": lambda w: prediction_drift(REF, w),
    "embedding_drift": lambda w: embedding_drift(REF, w, {"max_samples": 200}),
    "operating_point": lambda w: operating_point(PreparedReference(REF, OP), w),
    "estimated_performance": lambda w: estimated_performance(PreparedReference(REF, OP), w),
    "realised_performance": lambda w: realised_performance(PreparedReference(REF, OP), w),
    "calibration": lambda w: calibration_drift(REF, w),
    "data_quality": lambda w: data_quality(REF, w),
    "training_serving_skew": lambda w: training_serving_skew(REF, w),
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_empty_window_gives_no_finding_and_no_error(name: str) -> None:
    assert CHECKS[name](_window(1, 0)) == []


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_findings_are_json_ready_and_deterministic(name: str) -> None:
    w = _window(2, 600, nan=True)
    first = [f.to_dict() for f in CHECKS[name](w)]
    second = [f.to_dict() for f in CHECKS[name](w)]
    assert first, f"{name} found nothing to report on a normal window"
    assert json.loads(json.dumps(first)) == first
    assert first == second
    for f in first:
        assert f["check"].split(".")[0] == name
        assert f["severity"] in ("info", "warning", "critical")
        assert f["drift"] or f["severity"] == "info"
