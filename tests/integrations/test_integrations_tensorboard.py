"""TensorBoard output: scalars land in event files that TensorBoard reads back."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("tensorboard")

from watchkeeper.integrations.tensorboard import TensorBoardWriter, read_scalars


class Estimate:
    def to_dict(self) -> dict[str, object]:
        return {"accuracy": {"value": 0.95, "low": 0.93, "high": 0.97}, "n": 1000}


def test_monitor_metrics_round_trip(tmp_path: Path) -> None:
    with TensorBoardWriter(tmp_path, prefix="fraud detector") as tb:
        for day, observed in enumerate([104, 111, 160]):
            tb.add_flag_check(
                {"observed": observed, "expected": 108.0, "low": 98, "high": 119,
                 "p_value": 0.4, "verdict": "as_expected", "prevalence": float("nan")},
                step=day,
            )
        tb.add_findings([{"check": "feature drift", "subject": "colourfulness",
                          "statistic": 0.4, "p_value": None, "drift": True}], step=2)
        tb.add_performance(Estimate(), step=2)
        tb.add_performance({"accuracy": 0.94}, step=2, kind="realised")
    scalars = read_scalars(tmp_path)
    assert scalars["fraud_detector/flags/observed"] == [(0, 104.0), (1, 111.0), (2, 160.0)]
    assert scalars["fraud_detector/flags/high"][0] == (0, 119.0)
    assert "fraud_detector/flags/prevalence" not in scalars  # NaN is not written
    assert scalars["fraud_detector/drift/feature_drift/colourfulness/drift"] == [(2, 1.0)]
    assert "fraud_detector/drift/feature_drift/colourfulness/p_value" not in scalars
    assert scalars["fraud_detector/performance/estimated/accuracy_low"][0][1] == pytest.approx(0.93)
    assert scalars["fraud_detector/performance/realised/accuracy"][0][1] == pytest.approx(0.94)
    assert scalars["fraud_detector/performance/estimated/n"] == [(2, 1000.0)]


def test_bad_input_names_the_field(tmp_path: Path) -> None:
    tb = TensorBoardWriter(tmp_path)
    with pytest.raises(ValueError, match="kind"):
        tb.add_performance({"accuracy": 0.9}, step=0, kind="guessed")
    with pytest.raises(ValueError, match="step"):
        tb.add_scalar("x", 1.0, step=-1)
    with pytest.raises(TypeError, match="to_dict"):
        tb.add_flag_check(42, step=0)
    assert not tb.written and not any(tmp_path.iterdir())  # nothing opened lazily
