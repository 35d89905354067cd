"""``watchkeeper detect``: a detector over one column of a file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from watchkeeper.cli import create_app
from watchkeeper.detectors import ADWIN, HDDM_A, PageHinkley


@pytest.fixture
def table(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    score = np.r_[rng.normal(0, 1, 3000), rng.normal(1.5, 1, 3000)]
    error = (rng.random(6000) < np.r_[np.full(3000, 0.1), np.full(3000, 0.4)]).astype(int)
    path = tmp_path / "stream.csv"
    lines = ["score,error,kind"] + [
        f"{s!r},{e},x" for s, e in zip(score.tolist(), error.tolist(), strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(create_app(), list(args))
    return result.exit_code, result.output


def test_detect_prints_the_detector_s_indices(table: Path) -> None:
    code, out = _run("detect", "ADWIN", str(table), "--column", "score", "--format", "json")
    assert code == 0, out
    report = json.loads(out)
    values = np.loadtxt(table, delimiter=",", skiprows=1, usecols=0)
    assert report["detections"] == ADWIN().update_many(values).tolist()
    assert report["n"] == 6000 and report["detections"]
    code, out = _run("detect", "HDDM_A", str(table), "-c", "error")
    errors = np.loadtxt(table, delimiter=",", skiprows=1, usecols=1)
    first = HDDM_A().update_many(errors)[0]
    assert code == 0 and "HDDM_A: drift at" in out and str(first) in out


def test_detect_params_and_state_files(table: Path, tmp_path: Path) -> None:
    state = tmp_path / "ph.json"
    args = ["detect", "PageHinkley", str(table), "-c", "score", "--format", "json"]
    code, out = _run(*args, "-p", "threshold=20", "-p", "mode=up", "--state-out", str(state))
    assert code == 0, out
    values = np.loadtxt(table, delimiter=",", skiprows=1, usecols=0)
    expected = PageHinkley(threshold=20, mode="up").update_many(values).tolist()
    assert json.loads(out)["detections"] == expected
    saved = json.loads(state.read_text())
    assert saved["method"] == "PageHinkley" and saved["params"]["threshold"] == 20
    code, out = _run(*args, "--state-in", str(state))
    assert code == 0, out
    det = PageHinkley(threshold=20, mode="up")
    det.update_many(values)
    assert json.loads(out)["detections"] == det.update_many(values).tolist()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["Nope", "{f}", "-c", "score"], "unknown method 'Nope'"),
        (["ADWIN", "{f}", "-c", "missing"], "no column 'missing'"),
        (["ADWIN", "{f}", "-c", "kind"], "not numeric"),
        (["DDM", "{f}", "-c", "score"], "must be 0 or 1"),
        (["ADWIN", "{f}", "-c", "score", "-p", "delta=2"], "delta must be"),
        (["ADWIN", "{f}", "-c", "score", "-p", "colour=2"], "colour"),
        (["ADWIN", "nofile.csv", "-c", "score"], "no such file"),
    ],
)
def test_detect_errors_are_clear(table: Path, args: list[str], message: str) -> None:
    code, out = _run("detect", *[a.replace("{f}", str(table)) for a in args])
    assert code == 2
    assert message in out


def test_kswin_default_seed_is_fixed_and_a_short_stream_is_reported(tmp_path: Path) -> None:
    from watchkeeper.detectors import KSWIN

    rng = np.random.default_rng(4)
    stream = np.r_[rng.normal(0, 1, 1500), rng.normal(0.8, 1, 1500)]
    first, second = KSWIN().update_many(stream), KSWIN().update_many(stream)
    assert first.tolist() == second.tolist() and KSWIN().seed == 0
    short = KSWIN()
    short.update_many(stream[:300])
    assert not short.tested()
    short.update_many(stream[300:600])
    assert short.tested()
    path = tmp_path / "short.csv"
    path.write_text("x\n" + "\n".join(str(v) for v in stream[:300]) + "\n")
    result = CliRunner().invoke(create_app(), ["detect", "KSWIN", str(path), "-c", "x"])
    assert result.exit_code == 0, result.output
    assert "exceeds the 300 values" in result.output
    result = CliRunner().invoke(
        create_app(), ["detect", "KSWIN", str(path), "-c", "x", "--format", "json"]
    )
    assert "no test ran" in json.loads(result.output)["note"]
