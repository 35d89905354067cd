"""Promotion, the watch period and automatic rollback; CLI retrain, jobs, model promote."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from loop_fixtures import DAY, T0, make_store
from typer.testing import CliRunner

from watchkeeper.cli import create_app
from watchkeeper.loop._plan import MaintenancePlan, put_plan
from watchkeeper.loop._promote import check_watch, loop_events, promote


def _finding(now: float, verdict: str, start: float) -> dict:
    return {"check": "operating_point", "subject": "flags", "method": "binomial",
            "statistic": 5.0, "p_value": 1e-9, "drift": True, "window_start": start,
            "window_end": start + 3600, "details": {"verdict": verdict}}  # fmt: skip


def test_promotion_watch_and_automatic_rollback(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.register_model_version("p", "m", "v2")
    store.set_alias("p", "m", "champion", "v1", actor="ci", reason="first")
    put_plan(store, "p", "m", MaintenancePlan.from_dict(
        {"retraining": {"rollback": {"watch": "2d"}}}).validate())  # fmt: skip
    now = T0 + 5 * DAY
    move = promote(store, "p", "m", "v2", actor="loop", reason="gate and shadow passed", now=now)
    assert (move["from"], move["to"]) == ("v1", "v2")
    # a model_change verdict from a window before the promotion does not count
    store.add_findings("p", "m", [_finding(now, "model_change", now - 7200)])
    # a prior_shift after it does not either (the model is fine)
    store.add_findings("p", "m", [_finding(now, "prior_shift", now + 3600)])
    assert check_watch(store, "p", "m", now=now + 7200) is None
    store.add_findings("p", "m", [_finding(now, "model_change", now + 7200)])
    out = check_watch(store, "p", "m", now=now + 3 * 3600)
    assert out is not None and out["outcome"] == "rolled_back"
    assert store.get_alias("p", "m", "champion") == "v1"
    hist = store.alias_history("p", "m", "champion")
    assert [h["kind"] for h in hist] == ["set", "set", "rollback"]
    assert "automatic rollback" in hist[-1]["reason"]
    steps = [e["step"] for e in loop_events(store, "p", "m")]
    assert steps == ["promoted", "rolled_back"]
    # promoted again, a quiet watch period confirms it
    promote(store, "p", "m", "v2", now=now + DAY)
    assert check_watch(store, "p", "m", now=now + DAY + 3600) is None
    assert check_watch(store, "p", "m", now=now + 4 * DAY)["outcome"] == "confirmed"
    store.close()


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(create_app(), list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_retrain_jobs_promote(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.register_model_version("p", "m", "v2")
    store.set_alias("p", "m", "champion", "v1")
    script = "import sys, pathlib; pathlib.Path(sys.argv[1], 'w.bin').write_text('x')"
    put_plan(store, "p", "m", MaintenancePlan.from_dict({"retraining": {
        "trainer": {"command": [sys.executable, "-c", script, "{output}"]},
        "dataset": {"since": "3650d"}}}).validate())  # fmt: skip
    store.close()
    db = str(tmp_path / "wk.db")
    code, out, err = _run("retrain", "m", "--project", "p", "--db", db, "--now",
                          "--workdir", str(tmp_path / "jobs"))  # fmt: skip
    assert code == 0, out + err
    assert "succeeded" in out
    code, out, _ = _run("jobs", "m", "--project", "p", "--db", db, "--format", "json")
    rows = json.loads(out)
    assert rows[0]["state"] == "succeeded" and rows[0]["trigger"]["fired"][0]["kind"] == "manual"
    code, out, _ = _run("model", "promote", "m", "v2", "--project", "p", "--db", db)
    assert code == 0 and "v1 -> v2" in out
    code, _, err = _run("model", "promote", "m", "v9", "--project", "p", "--db", db)
    assert code == 2 and "v9" in err
    code, out, _ = _run("model", "rollback", "m", "--project", "p", "--db", db)
    assert code == 0 and "v2 -> v1" in out  # h12's command, beside ours in the same group
