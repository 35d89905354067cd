"""The CLI: reference register from Parquet, check, alerts export-rules."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from watchkeeper.cli import create_app
from watchkeeper.window import Window

HOUR = 3600.0


def _parquet(path: Path, rng: np.random.Generator, n: int = 1500) -> Path:
    import pandas as pd

    s = rng.uniform(size=n)
    df = pd.DataFrame(
        {
            "id": [f"r{i}" for i in range(n)],
            "x": rng.normal(size=n),
            "kind": rng.choice(["a", "b"], n),
            "score": s,
            "label": (rng.uniform(size=n) < s).astype(int),
            **{f"emb{i}": rng.normal(size=n) for i in range(4)},
        }
    )
    df.to_parquet(path)
    return path


def test_register_then_check(tmp_path: Path, rng: np.random.Generator) -> None:
    db = str(tmp_path / "wk.db")
    ref = _parquet(tmp_path / "ref.parquet", rng)
    runner = CliRunner()
    app = create_app()
    out = runner.invoke(
        app,
        [
            "reference",
            "register",
            "fraud",
            "v1",
            str(ref),
            "--score-column",
            "score",
            "--label-column",
            "label",
            "--id-column",
            "id",
            "--embedding-prefix",
            "emb",
            "--target-tpr",
            "0.8",
            "--environment",
            "current",
            "--db",
            db,
        ],
    )
    assert out.exit_code == 0, out.output
    assert "1500 rows, 2 feature(s), embeddings of dimension 4" in out.output

    from watchkeeper.store import Store

    store = Store(db)
    version = store.get_model_version("default", "fraud", "v1")
    assert version["operating_point"]["tpr"] >= 0.8
    assert "numpy" in version["environment"]["packages"]
    assert store.get_reference_profile("default", "fraud", "v1")["schema"] == {
        "kind": "string",
        "x": "float",
    }
    t0 = 1_700_000_000.0 - (1_700_000_000.0 % HOUR)
    n = 300
    store.log_events(
        "default",
        "fraud",
        Window.from_columns(
            ids=[f"e{i}" for i in range(n)],
            ts=t0 + np.linspace(0, HOUR - 1, n),
            features={"x": rng.normal(4, 1, n), "kind": rng.choice(["a", "b"], n)},
            scores=rng.uniform(size=n),
            embeddings=rng.normal(size=(n, 4)),
        ),
    )
    store.close()
    out = runner.invoke(app, ["check", "fraud", "--db", db, "--now", str(t0 + HOUR + 1)])
    assert out.exit_code == 1, out.output  # drift found
    assert "feature_drift" in out.output and "data_quality" in out.output
    out = runner.invoke(
        app, ["check", "fraud", "--db", db, "--now", str(t0 + HOUR + 2), "--format", "json"]
    )
    body = json.loads(out.output)
    assert body["adhoc"] is True and n - 5 <= body["windows"][0]["events"] <= n
    out = runner.invoke(app, ["check", "ghost", "--db", db])
    assert out.exit_code == 2 and "not registered" in out.output


def test_register_errors_name_the_option(tmp_path: Path, rng: np.random.Generator) -> None:
    ref = _parquet(tmp_path / "ref.parquet", rng, 50)
    out = CliRunner().invoke(
        create_app(),
        [
            "reference",
            "register",
            "m",
            "v1",
            str(ref),
            "--score-column",
            "nope",
            "--db",
            str(tmp_path / "wk.db"),
        ],
    )
    assert out.exit_code == 2 and "--score-column: no column 'nope'" in out.output
    out = CliRunner().invoke(
        create_app(),
        [
            "reference",
            "register",
            "m",
            "v1",
            str(tmp_path / "missing.csv"),
            "--db",
            str(tmp_path / "wk.db"),
        ],
    )
    assert out.exit_code == 2 and "no such file" in out.output
    out = CliRunner().invoke(
        create_app(),
        [
            "reference",
            "register",
            "m",
            "v1",
            str(ref),
            "--environment",
            str(tmp_path / "nope.json"),
            "--db",
            str(tmp_path / "wk.db"),
        ],
    )
    assert out.exit_code == 2 and "--environment" in out.output


def test_export_rules(tmp_path: Path) -> None:
    out = CliRunner().invoke(create_app(), ["alerts", "export-rules", str(tmp_path / "deploy")])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "deploy/prometheus/watchkeeper-rules.yml").exists()
    assert (tmp_path / "deploy/grafana/watchkeeper-dashboard.json").exists()


@pytest.mark.parametrize("fmt", ["xml"])
def test_check_rejects_unknown_format(tmp_path: Path, fmt: str) -> None:
    out = CliRunner().invoke(
        create_app(), ["check", "m", "--format", fmt, "--db", str(tmp_path / "x.db")]
    )
    assert out.exit_code == 2 and "--format" in out.output


def test_register_reference_from_a_dataframe(tmp_path: Path, rng: np.random.Generator) -> None:
    import pandas as pd

    from watchkeeper.runner import register_reference, run_monitors
    from watchkeeper.store import Store

    n = 800
    s = rng.uniform(size=n)
    df = pd.DataFrame({"x": rng.normal(size=n), "score": s, "y": (rng.uniform(size=n) < s)})
    store = Store(str(tmp_path / "wk.db"))
    done = register_reference(
        store, "team", "m", "v1", df, score_column="score", label_column="y", threshold=0.6
    )
    assert done.rows == n and done.features == ["x"] and done.operating_point is not None
    assert done.operating_point["threshold"] == 0.6
    assert store.get_reference_profile("team", "m", "v1")["calibration"]["bins"] == 10
    # A model with a reference and no configuration is already monitored.
    first = run_monitors(store, "team", "m", now=1_700_000_000.0)
    assert first.windows and not first.events  # no traffic yet: nothing to alert on
    assert run_monitors(store, "team", "m", now=1_700_000_000.0, adhoc=True).adhoc
    with pytest.raises(ValueError, match="label_column: no column 'z'"):
        register_reference(store, "team", "m", "v2", df, label_column="z")
    store.close()
