"""``watchkeeper estimate REFERENCE CURRENT``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from watchkeeper.cli import create_app


def _write(path: Path, scores: np.ndarray, labels: list[str] | None) -> Path:
    lines = ["score,label" if labels is not None else "score"]
    for i, s in enumerate(scores):
        lines.append(f"{s:.6f},{labels[i]}" if labels is not None else f"{s:.6f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _scores(rng: np.random.Generator, n: int, prev: float, neg_shift: float = 0.0):
    y = rng.random(n) < prev
    s = 1 / (1 + np.exp(-rng.normal(np.where(y, 1.5, -1.5 + neg_shift), 1.0)))
    return s, y


def test_estimate_chunks_json(tmp_path: Path, rng: np.random.Generator) -> None:
    s, y = _scores(rng, 4000, 0.3)
    ref = _write(tmp_path / "ref.csv", s, [str(int(v)) for v in y])
    parts = [_scores(rng, 1500, 0.3), _scores(rng, 1500, 0.1), _scores(rng, 1500, 0.3, 1.2)]
    cs = np.concatenate([p[0] for p in parts])
    cy = np.concatenate([p[1] for p in parts])
    labels = [str(int(v)) if i % 3 == 0 else "" for i, v in enumerate(cy)]  # late labels
    cur = _write(tmp_path / "cur.csv", cs, labels)
    result = CliRunner().invoke(
        create_app(), ["estimate", str(ref), str(cur), "--chunk-size", "1500", "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert len(out["chunks"]) == 3
    verdicts = [c["shift"]["verdict"] for c in out["chunks"]]
    assert verdicts == ["as_expected", "prior_shift", "model_change"]
    first = out["chunks"][0]
    for name in ("accuracy", "precision", "recall", "f1", "roc_auc"):
        m = first["estimate"]["metrics"][name]
        assert m["low"] <= m["value"] <= m["high"]
    assert first["realised"]["details"]["n_labelled"] == 500
    assert abs(first["comparison"]["accuracy"]["error"]) < 0.05
    prev = out["chunks"][1]["estimate"]["details"]["estimated_prevalence"]
    assert abs(prev - 0.1) < 0.04


def test_estimate_table_and_errors(tmp_path: Path, rng: np.random.Generator) -> None:
    s, y = _scores(rng, 1000, 0.3)
    ref = _write(tmp_path / "ref.csv", s, [str(int(v)) for v in y])
    cur = _write(tmp_path / "cur.csv", _scores(rng, 500, 0.3)[0], None)
    result = CliRunner().invoke(create_app(), ["estimate", str(ref), str(cur)])
    assert result.exit_code == 0, result.output
    assert "acc" in result.output and "shift" in result.output
    bad = CliRunner().invoke(create_app(), ["estimate", str(ref), str(cur), "--score-column", "x"])
    assert bad.exit_code == 2 and "--score-column" in bad.output
    missing = CliRunner().invoke(create_app(), ["estimate", str(tmp_path / "no.csv"), str(cur)])
    assert missing.exit_code == 2 and "no such file" in missing.output
    zero = CliRunner().invoke(create_app(), ["estimate", str(ref), str(cur), "--chunk-size", "0"])
    assert zero.exit_code == 2 and "chunk-size" in zero.output


def test_estimate_with_features(tmp_path: Path, rng: np.random.Generator) -> None:
    def task(n: int, tilt: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        y = rng.random(n) < 0.5
        x = np.column_stack(
            [rng.normal(np.where(y, 1.0, -1.0)), rng.normal(np.where(y, 0.8, -0.8))]
        )
        s = 1 / (1 + np.exp(-1.5 * x[:, 0]))
        keep = rng.random(n) < np.exp(tilt * x[:, 1]) / np.exp(tilt * x[:, 1]).max()
        return s[keep], y[keep], x[keep]

    def write(path: Path, s: np.ndarray, y: np.ndarray, x: np.ndarray) -> Path:
        rows = ["score,label,a,b"] + [
            f"{s[i]:.6f},{int(y[i])},{x[i, 0]:.5f},{x[i, 1]:.5f}" for i in range(len(s))
        ]
        path.write_text("\n".join(rows) + "\n")
        return path

    ref = write(tmp_path / "ref.csv", *task(8000, 0.0))
    cur = write(tmp_path / "cur.csv", *task(40_000, 1.5))
    args = ["estimate", str(ref), str(cur), "--features", "--no-diagnose", "--format", "json"]
    result = CliRunner().invoke(create_app(), args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["features"] == ["a", "b"]
    assert out["chunks"][0]["estimate"]["details"]["shift"] == "covariate"
    only = tmp_path / "only.csv"
    only.write_text("score,label\n0.2,0\n0.8,1\n")
    bad = CliRunner().invoke(create_app(), ["estimate", str(only), str(cur), "--features"])
    assert bad.exit_code == 2 and "--features" in bad.output
