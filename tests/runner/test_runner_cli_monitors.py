"""``watchkeeper monitors show|set``: YAML out, YAML in, errors that name the field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from watchkeeper.cli import create_app


@pytest.fixture
def registered(tmp_path: Path, rng: np.random.Generator) -> str:
    """A database with model ``fraud`` and its reference (project ``default``)."""
    import pandas as pd

    n = 600
    s = rng.uniform(size=n)
    pd.DataFrame(
        {"x": rng.normal(size=n), "score": s, "label": (rng.uniform(size=n) < s).astype(int)}
    ).to_parquet(tmp_path / "ref.parquet")
    db = str(tmp_path / "wk.db")
    args = ["reference", "register", "fraud", "v1", str(tmp_path / "ref.parquet"),
            "--score-column", "score", "--label-column", "label", "--db", db]
    result = CliRunner().invoke(create_app(), args)
    assert result.exit_code == 0, result.output
    return db


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(create_app(), list(args))
    return result.exit_code, result.stdout, result.stderr


def test_show_defaults_edit_set_show_again(registered: str, tmp_path: Path) -> None:
    code, out, _ = _run("monitors", "show", "fraud", "--db", registered)
    assert code == 0 and out.startswith("# default monitor configuration of default/fraud")
    config = yaml.safe_load(out)
    assert config["checks"]["operating_point"] and config["rules"]
    config["window"] = {"kind": "count", "size": 500}
    config["checks"]["feature_drift"]["alpha"] = 0.01
    edited = tmp_path / "monitors.yaml"
    edited.write_text(yaml.safe_dump(config))
    code, out, _ = _run("monitors", "set", "fraud", str(edited), "--db", registered)
    assert code == 0 and "window count 500" in out
    code, out, _ = _run("monitors", "show", "fraud", "--db", registered, "--format", "json")
    shown = json.loads(out)
    assert shown["source"] == "stored"
    assert shown["config"]["window"] == {"kind": "count", "size": 500}
    assert shown["config"]["checks"]["feature_drift"]["alpha"] == 0.01


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("checks: {calibration: {alpha: 5}}", "checks.calibration.alpha"),
        ("window: {kind: weekly}", "window"),
        ("rules: [{name: r, checks: [feature_drift], k: 3, n: 2}]", "rules"),
        ("checks: [not, a, mapping", "not valid YAML"),
        ("- a list", "mapping"),
    ],
)
def test_set_rejects_bad_files_and_keeps_the_stored_one(
    registered: str, tmp_path: Path, text: str, message: str
) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("window: {kind: count, size: 300}\n")
    assert _run("monitors", "set", "fraud", str(good), "--db", registered)[0] == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text(text)
    code, _, err = _run("monitors", "set", "fraud", str(bad), "--db", registered)
    assert code == 2 and message in err
    shown = json.loads(_run("monitors", "show", "fraud", "--db", registered, "--format", "json")[1])
    assert shown["config"]["window"] == {"kind": "count", "size": 300}  # nothing lost


def test_unknown_model_missing_file_and_format(registered: str, tmp_path: Path) -> None:
    code, _, err = _run("monitors", "show", "nope", "--db", registered)
    assert code == 2 and "'nope' is not registered" in err
    absent = str(tmp_path / "absent.yaml")
    code, _, err = _run("monitors", "set", "fraud", absent, "--db", registered)
    assert code == 2 and "cannot read" in err
    code, _, err = _run("monitors", "show", "fraud", "--db", registered, "--format", "toml")
    assert code == 2 and "--format" in err


def test_findings_and_alerts_list(registered: str) -> None:
    import time

    from watchkeeper.store import Store

    now = time.time()
    store = Store(registered)
    common = {"method": "ks", "alpha": 0.05, "threshold": None, "severity": "warning"}
    store.add_findings("default", "fraud", [
        {**common, "check": "feature_drift", "subject": "x", "statistic": 0.3, "p_value": 1e-6,
         "drift": True, "window_start": now - 7200, "window_end": now - 3600},
        {**common, "check": "feature_drift", "subject": "y", "statistic": 0.01, "p_value": 0.6,
         "drift": False, "window_start": now - 7200, "window_end": now - 3600},
        {**common, "check": "prediction_drift", "subject": "score", "statistic": 0.2,
         "p_value": 1e-4, "drift": True, "window_start": now - 40 * 86400,
         "window_end": now - 39 * 86400},
    ])
    store.upsert_alert("default", {"key": "a1", "model": "fraud", "status": "resolved",
                                   "severity": "warning", "summary": "old drift"})
    store.upsert_alert("default", {"key": "a2", "model": "fraud", "status": "firing",
                                   "severity": "critical", "summary": "flags out of band"})
    store.close()

    code, out, _ = _run("findings", "fraud", "--db", registered, "--format", "json")
    assert code == 0 and [f["subject"] for f in json.loads(out)] == ["x"]  # drifted, last 7 days
    code, out, _ = _run("findings", "fraud", "--db", registered, "--all", "--since", "60d",
                        "--format", "json")
    assert sorted(f["subject"] for f in json.loads(out)) == ["score", "x", "y"]
    code, out, _ = _run("findings", "fraud", "--db", registered, "--check", "prediction_drift")
    assert code == 0 and "0 finding(s)" in out  # older than 7 days
    code, out, _ = _run("findings", "fraud", "--db", registered)
    assert code == 0 and "feature_drift" in out and "1e-06" in out
    code, _, err = _run("findings", "fraud", "--db", registered, "--since", "soon")
    assert code == 2 and "--since" in err

    code, out, _ = _run("alerts", "list", "--db", registered)
    assert code == 0 and out.splitlines() == ["firing    flags out of band", "resolved  old drift"]
    code, out, _ = _run("alerts", "list", "--db", registered, "--status", "firing",
                        "--format", "json")
    assert [a["key"] for a in json.loads(out)] == ["a2"]
    code, _, err = _run("alerts", "list", "--db", registered, "--status", "angry")
    assert code == 2 and "--status" in err
    code, _, err = _run("alerts", "list", "--db", registered, "--model", "nope")
    assert code == 2 and "'nope' is not registered" in err


def test_check_says_when_closed_windows_were_empty_and_trailing_shows_the_rest(
    registered: str, rng: np.random.Generator
) -> None:
    import time

    from watchkeeper.store import Store
    from watchkeeper.window import Window

    now = time.time() // 3600 * 3600 - 1800  # half way through an hour
    hour_start = now - 1800
    n = 200
    store = Store(registered)
    store.log_events("default", "fraud", Window.from_columns(
        ids=[f"e{i}" for i in range(n)],
        ts=np.linspace(hour_start, now - 1, n),  # all in the hour still open
        features={"x": rng.normal(size=n)},
        scores=rng.uniform(size=n),
    ))
    store.close()
    code, out, err = _run("check", "fraud", "--db", registered, "--now", str(now))
    # The first run backfills from the first event's window: none has closed, so the trailing
    # window is shown (not an empty closed window before any event).
    assert code in (0, 1) and "nothing closed yet" in out, (out, err)
    code, out, _ = _run("check", "fraud", "--db", registered, "--now", str(now), "--trailing",
                        "--format", "json")
    result = json.loads(out)
    assert result["adhoc"] and result["windows"][0]["events"] == n
