"""Every estimation result is frozen and turns into plain JSON (NaN becomes null)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from watchkeeper.estimation import (
    ATCEstimator,
    OperatingPoint,
    PerformanceEstimator,
    bbse,
    check_flags,
    compare_performance,
    diagnose_shift,
    expect_class_counts,
    expect_flags,
    implied_prevalence,
    realised_performance,
)


def _results(rng: np.random.Generator) -> list[object]:
    y = rng.random(3000) < 0.3
    s = 1 / (1 + np.exp(-rng.normal(np.where(y, 1.5, -1.5), 1.0)))
    op = OperatingPoint.from_scores(s, y, target_tpr=0.9)
    est = PerformanceEstimator(op.threshold).fit(s, y).estimate(s)
    real = realised_performance(s, [None] * len(s), op.threshold)  # no labels yet: NaN
    probs = np.column_stack([1 - s, s])
    conf = [[900, 40], [100, 460]]
    return [
        expect_flags(op, 0.3, 1000),
        check_flags(op, 0.3, 1000, 400),
        implied_prevalence(op, 400, 1000),
        diagnose_shift(s, y, s[:500]),
        est,
        real,
        compare_performance(est, realised_performance(s, y, op.threshold)),
        ATCEstimator().fit(probs, y.astype(int)).estimate(probs),
        expect_class_counts(conf, [0.7, 0.3], 1000),
        bbse(conf, np.array([700.0, 300.0])),
    ]


def test_results_are_frozen_and_json(rng: np.random.Generator) -> None:
    for result in _results(rng):
        text = json.dumps(result.to_dict(), allow_nan=False)  # type: ignore[attr-defined]
        assert json.loads(text)
        field = dataclasses.fields(result)[0].name  # type: ignore[arg-type]
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(result, field, None)
