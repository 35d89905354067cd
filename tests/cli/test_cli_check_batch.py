"""``watchkeeper check-batch``: per-day findings of a Parquet table, stored; bad input."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from watchkeeper.cli import create_app
from watchkeeper.profiles import profile
from watchkeeper.store import Store
from watchkeeper.window import Window


def _days(tmp_path: Path, rng: np.random.Generator) -> Path:
    """Three days; on the third, x shifts by 1 sd and `c` gains a new category."""
    frames = []
    for i, day in enumerate(["2026-11-01", "2026-11-02", "2026-11-03"]):
        n = 3000
        x = rng.normal(1.0 if i == 2 else 0.0, 1.0, n)
        c = rng.choice(["a", "b", "z"] if i == 2 else ["a", "b"], n)
        frames.append(pd.DataFrame({"x": x, "c": c, "day": day}))
    path = tmp_path / "table"
    pd.concat(frames).to_parquet(path, partition_cols=["day"])
    return path


def _store(tmp_path: Path, rng: np.random.Generator) -> str:
    db = str(tmp_path / "wk.db")
    ref = Window.from_columns(features={"x": rng.normal(size=5000),
                                        "c": rng.choice(["a", "b"], 5000)})
    with Store(db) as store:
        store.register_model("default", "fraud")
        store.put_reference("default", "fraud", None, ref, profile(ref).to_dict())
    return db


@pytest.mark.parametrize("engine", ["pandas", "dask", "spark"])
def test_check_batch_per_day(tmp_path: Path, rng: np.random.Generator, engine: str,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    if engine == "dask":
        pytest.importorskip("dask.dataframe")
    if engine == "spark":
        pytest.importorskip("pyspark")
        if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
            pytest.skip("Java is not installed (pyspark needs it)")
        # Spark's Python workers must import this checkout's watchkeeper.
        src = str(Path(__file__).resolve().parents[2] / "src")
        monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
            [src, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]]))
        monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    db = _store(tmp_path, rng)
    path = _days(tmp_path, rng)
    out = CliRunner().invoke(create_app(), [
        "check-batch", "fraud", str(path), "--engine", engine, "--partition-by", "day",
        "--db", db, "--format", "json", "--spark-master", "local[2]"])
    assert out.exit_code == 1, out.output  # drift on the third day
    report = {r["partition"]: r for r in json.loads(out.output)}
    assert sorted(report) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert report["2026-11-01"]["rows"] == 3000

    def flagged(day: str) -> set[tuple[str, str]]:
        return {(f["check"], f["subject"]) for f in report[day]["findings"] if f["drift"]}

    assert flagged("2026-11-01") == flagged("2026-11-02") == set()
    assert {("feature_drift", "x"), ("data_quality.new_category", "c")} <= flagged("2026-11-03")
    with Store(db) as store:
        stored = store.list_findings("default", "fraud")
    third = [f for f in stored if f["drift"] and f["subject"] == "x"]
    assert third and third[0]["window_start"] == pd.Timestamp("2026-11-03", tz="UTC").timestamp()
    assert len(stored) == sum(len(r["findings"]) for r in report.values())


def test_check_batch_bad_input(tmp_path: Path, rng: np.random.Generator) -> None:
    db = _store(tmp_path, rng)
    path = _days(tmp_path, rng)
    app, runner = create_app(), CliRunner()
    out = runner.invoke(app, ["check-batch", "fraud", str(path), "--engine", "flink", "--db", db])
    assert out.exit_code == 2 and "--engine" in out.output
    out = runner.invoke(app, ["check-batch", "fraud", str(tmp_path / "nope"), "--db", db])
    assert out.exit_code == 2 and "PATH" in out.output
    out = runner.invoke(app, ["check-batch", "fraud", str(path), "--columns", "y", "--db", db])
    assert out.exit_code == 2 and "--columns" in out.output
    out = runner.invoke(app, ["check-batch", "fraud", str(path), "--partition-by", "week",
                              "--db", db])
    assert out.exit_code == 2 and "week" in out.output
    out = runner.invoke(app, ["check-batch", "other", str(path), "--db", db])
    assert out.exit_code == 2 and "not registered" in out.output
    with Store(db) as store:
        assert store.list_findings("default", "fraud") == []  # nothing stored on error
