"""``watchkeeper expect``: the worked example from the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from watchkeeper.cli import create_app

BASE = ["expect", "--tpr", "0.9", "--fpr", "0.02", "--prevalence", "0.1", "--volume", "1000"]


def test_expect_text() -> None:
    result = CliRunner().invoke(create_app(), BASE)
    assert result.exit_code == 0, result.output
    assert "108.0" in result.output and "9.82" in result.output and "random mix" in result.output
    assert "89 to 128" in result.output
    assert "band with a fixed mix: 98 to 118 (sigma 5.16)" in result.output


def test_expect_json_keys() -> None:
    result = CliRunner().invoke(create_app(), [*BASE, "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["expected"] == 108.0 and round(out["sigma"], 2) == 9.82
    assert out["mix"] == "random" and out["method"] == "binomial"
    assert round(out["alternative"]["sigma"], 2) == 5.16
    assert {"expected", "sigma", "low", "high"} <= out.keys()
    assert "verdict" not in out


def test_expect_observed_json() -> None:
    result = CliRunner().invoke(create_app(), [*BASE, "--observed", "160", "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert {"p_value", "verdict", "prevalence", "prevalence_low", "prevalence_high"} <= out.keys()
    assert out["verdict"] == "prior_shift"
    assert out["prevalence_low"] < out["prevalence"] < out["prevalence_high"]


def test_expect_observed_text() -> None:
    result = CliRunner().invoke(create_app(), [*BASE, "--observed", "160"])
    assert result.exit_code == 0, result.output
    assert "prior_shift" in result.output and "0.159" in result.output


def test_expect_fixed_mix_and_history(tmp_path: pytest.TempPathFactory) -> None:
    result = CliRunner().invoke(create_app(), [*BASE, "--mix", "fixed", "--format", "json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert (out["low"], out["high"]) == (98, 118) and out["alternative"]["mix"] == "random"
    rng = np.random.default_rng(5)
    prev = np.clip(rng.normal(0.1, 0.02, 40), 0, 1)
    flags = rng.binomial(1000, prev * 0.9 + (1 - prev) * 0.02)
    path = tmp_path / "history.csv"  # type: ignore[operator]
    path.write_text("flags,volume\n" + "".join(f"{f},1000\n" for f in flags))
    result = CliRunner().invoke(create_app(), [*BASE, "--history", str(path)])
    assert result.exit_code == 0, result.output
    assert "Over-dispersion learnt from 40 past windows" in result.output
    result = CliRunner().invoke(create_app(), [*BASE, "--history", str(path), "--format", "json"])
    out = json.loads(result.output)
    assert out["method"] == "beta-binomial" and out["history"]["dispersion"] > 0
    assert out["high"] - out["low"] > 40
    bad = tmp_path / "bad.csv"  # type: ignore[operator]
    bad.write_text("day,count\n1,2\n")
    result = CliRunner().invoke(create_app(), [*BASE, "--history", str(bad)])
    assert result.exit_code == 2 and "--history" in result.output
    result = CliRunner().invoke(create_app(), [*BASE, "--mix", "weekly"])
    assert result.exit_code == 2 and "mix" in result.output


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["--tpr", "0.02", "--fpr", "0.9", "--prevalence", "0.1", "--volume", "10"], "tpr"),
        (["--tpr", "1.5", "--fpr", "0.02", "--prevalence", "0.1", "--volume", "10"], "tpr"),
        (["--tpr", "0.9", "--fpr", "0.02", "--prevalence", "-0.1", "--volume", "10"], "prevalence"),
        (["--tpr", "0.9", "--fpr", "0.02", "--prevalence", "0.1", "--volume", "-5"], "volume"),
    ],
)
def test_expect_impossible_input_fails(args: list[str], word: str) -> None:
    result = CliRunner().invoke(create_app(), ["expect", *args])
    assert result.exit_code != 0
    assert word in result.output
