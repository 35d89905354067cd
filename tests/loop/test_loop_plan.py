"""The maintenance plan: YAML round trip, cron, CLI and HTTP, errors that name the field."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from watchkeeper.cli import create_app
from watchkeeper.loop import Cron, MaintenancePlan, retraining_config

PLAN = """
window: {kind: time, size: 1d}
rules:
  - {name: operating_point, checks: [operating_point], severity: critical, k: 1, n: 1}
retraining:
  triggers:
    alerts: [operating_point]
    verdicts: [model_change]
    realised_performance: {metric: f1, below: 0.8}
    schedule: "0 3 * * 1"
    new_labels: 500
  cooldown: 2d
  dataset: {since: 14d, eval_fraction: 0.25, generator: "mypkg.gen:faded", generated: 200}
  trainer: {command: "python train.py --train {train} --out {output}", timeout: 30m}
  gate:
    target_tpr: 0.9
    rules: [{metric: fpr_at_tpr, test: superior, sets: [recent]}]
  shadow: {duration: 1d, max_events: 3000}
  promotion: auto
  rollback: {watch: 2d}
"""


def test_plan_round_trip_and_defaults() -> None:
    plan = MaintenancePlan.from_yaml(PLAN).validate()
    r = plan.retraining
    assert r is not None
    assert r["trainer"]["command"][:2] == ["python", "train.py"]
    assert r["gate"]["rules"][0]["sets"] == ["recent"]
    assert r["rollback"]["verdicts"] == ["model_change"]  # default filled in
    again = MaintenancePlan.from_yaml(plan.to_yaml()).validate()
    assert again.to_dict() == plan.to_dict()
    # prior_shift does not trigger by default
    assert retraining_config({})["triggers"]["verdicts"] == ["model_change"]


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("retraining: {triggers: {verdicts: [drift]}}", "retraining.triggers.verdicts"),
        ("retraining: {triggers: {schedule: '61 * * * *'}}", "retraining.triggers.schedule"),
        ("retraining: {triggers: {new_labels: -3}}", "retraining.triggers.new_labels"),
        ("retraining: {triggers: {realised_performance: {below: 2}}}",
         "retraining.triggers.realised_performance.below"),
        ("retraining: {cooldown: soon}", "retraining.cooldown"),
        ("retraining: {trainer: {callable: x, command: [y]}}", "retraining.trainer"),
        ("retraining: {trainer: {callable: nocolon}}", "retraining.trainer.callable"),
        ("retraining: {gate: {alpha: 3}}", "retraining.gate.alpha"),
        ("retraining: {dataset: {eval_fraction: 1.5}}", "retraining.dataset.eval_fraction"),
        ("retraining: {shadow: {alpha: 0.9}}", "retraining.shadow.alpha"),
        ("retraining: {rollback: {watch: -1}}", "retraining.rollback.watch"),
        ("retraining: {promotion: maybe}", "retraining.promotion"),
        ("retraining: {colour: blue}", "retraining.colour"),
        ("rules: [{name: a, checks: [operating_point]}]\nretraining: {triggers: {alerts: [b]}}",
         "retraining.triggers.alerts"),
        ("checks: {calibration: {alpha: 5}}", "checks.calibration.alpha"),
    ],
)
def test_bad_plans_name_the_field(text: str, field: str) -> None:
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        MaintenancePlan.from_yaml(text).validate()


def test_cron() -> None:
    monday = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.UTC).timestamp()
    c = Cron.parse("0 3 * * 1")
    assert c.next_after(monday) == monday + 3600
    assert c.due(monday, monday + 3600) and not c.due(monday, monday + 3599)
    every15 = Cron.parse("*/15 * * * *")
    assert every15.next_after(monday) == monday + 15 * 60
    first = Cron.parse("0 0 1 * *")
    assert dt.datetime.fromtimestamp(first.next_after(monday), dt.UTC).day == 1
    for bad in ("* * * *", "x * * * *", "0 24 * * *", "*/0 * * * *"):
        with pytest.raises(ValueError):
            Cron.parse(bad)


@pytest.fixture
def registered(tmp_path: Path) -> str:
    import pandas as pd

    rng = np.random.default_rng(0)
    n = 400
    s = rng.uniform(size=n)
    pd.DataFrame(
        {"x": rng.normal(size=n), "score": s, "label": (rng.uniform(size=n) < s).astype(int)}
    ).to_parquet(tmp_path / "ref.parquet")
    db = str(tmp_path / "wk.db")
    args = ["reference", "register", "fraud", "v1", str(tmp_path / "ref.parquet"),
            "--score-column", "score", "--label-column", "label", "--db", db]  # fmt: skip
    result = CliRunner().invoke(create_app(), args)
    assert result.exit_code == 0, result.output
    return db


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(create_app(), list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_show_validate_set(registered: str, tmp_path: Path) -> None:
    code, out, _ = _run("plan", "show", "fraud", "--db", registered)
    assert code == 0 and out.startswith("# default maintenance plan of default/fraud")
    shown = yaml.safe_load(out)
    assert shown["retraining"]["promotion"] == "approval" and shown["checks"]
    shown["retraining"]["promotion"] = "auto"
    shown["retraining"]["triggers"]["new_labels"] = 100
    f = tmp_path / "plan.yaml"
    f.write_text(yaml.safe_dump(shown))
    code, out, _ = _run("plan", "validate", "fraud", str(f))
    assert code == 0 and "100 new labels" in out
    code, out, _ = _run("plan", "set", "fraud", str(f), "--db", registered)
    assert code == 0, out
    code, out, _ = _run("plan", "show", "fraud", "--db", registered, "--format", "json")
    d = json.loads(out)
    assert d["source"] == "stored" and d["plan"]["retraining"]["promotion"] == "auto"


def test_cli_bad_plan_exits_2_and_stores_nothing(registered: str, tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text("window: {kind: count, size: 50}\nretraining: {cooldown: soon}")
    code, _, err = _run("plan", "set", "fraud", str(f), "--db", registered)
    assert code == 2 and "retraining.cooldown" in err
    code, out, _ = _run("plan", "show", "fraud", "--db", registered, "--format", "json")
    d = json.loads(out)
    assert d["source"] == "default" and d["plan"]["window"]["kind"] == "time"
    f.write_text("retraining: [unclosed")
    code, _, err = _run("plan", "validate", "fraud", str(f))
    assert code == 2 and "YAML" in err


def test_http_get_put_plan(registered: str) -> None:
    from fastapi.testclient import TestClient

    from watchkeeper.server import Settings
    from watchkeeper.server import create_app as create_server
    from watchkeeper.store import Store

    store = Store(registered)
    read = store.create_token("default", {"read"})
    admin = store.create_token("default", {"admin"})
    with TestClient(create_server(Settings(), store=store)) as client:
        url = "/v1/models/fraud/plan"
        r = client.get(url, headers={"Authorization": f"Bearer {read}"})
        assert r.status_code == 200 and r.json()["source"] == "default"
        plan = r.json()["plan"]
        plan["retraining"]["cooldown"] = "nope"
        r = client.put(url, json=plan, headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 422 and "retraining.cooldown" in r.text
        assert client.get(url, headers={"Authorization": f"Bearer {read}"}).json()["source"] == (
            "default"
        )
        plan["retraining"]["cooldown"] = "3d"
        r = client.put(url, json=plan, headers={"Authorization": f"Bearer {read}"})
        assert r.status_code == 403
        r = client.put(url, json=plan, headers={"Authorization": f"Bearer {admin}"})
        assert r.status_code == 200
        got = client.get(url, headers={"Authorization": f"Bearer {read}"}).json()
        assert got["source"] == "stored" and got["plan"]["retraining"]["cooldown"] == "3d"
        assert client.get("/v1/models/nope/plan", headers={"Authorization": f"Bearer {read}"}
                          ).status_code == 404  # fmt: skip
    store.close()
