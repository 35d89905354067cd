"""The loop over HTTP (jobs, reports, promotion, approval; scopes and bad input), the CLI's
report and loop commands, and the server's scheduler closing the loop by itself."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from loop_fixtures import DAY, T0, make_store, write_trainer
from typer.testing import CliRunner

from watchkeeper.loop._cycle import LoopDriver, loop_step


def _plan(tmp_path: Path, **retraining: Any) -> dict[str, Any]:
    script = write_trainer(tmp_path)
    return {"retraining": {
        "trainer": {"command": [sys.executable, str(script), "{eval}", "{output}", "good"]},
        "dataset": {"since": "3650d"}, "cooldown": "30d",
        "gate": {"min_events": 50, "n_bootstrap": 200},
        "triggers": {"verdicts": []}, **retraining,
    }}  # fmt: skip


def test_http_jobs_reports_promotion_and_approval(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from watchkeeper.server import Settings, create_app

    store = make_store(tmp_path)
    store.set_alias("p", "m", "champion", "v1")
    read = {"Authorization": f"Bearer {store.create_token('p', {'read'})}"}
    admin = {"Authorization": f"Bearer {store.create_token('p', {'admin'})}"}
    store.create_project("q")
    other = {"Authorization": f"Bearer {store.create_token('q', {'admin'})}"}
    base = "/v1/models/m"
    with TestClient(create_app(Settings(), store=store)) as c:
        # no trainer in the plan yet: 422 naming the field
        r = c.post(f"{base}/jobs", headers=admin)
        assert r.status_code == 422 and "retraining.trainer" in r.json()["detail"]
        plan = _plan(tmp_path, shadow={"enabled": False}, promotion="approval")
        assert c.put(f"{base}/plan", json=plan, headers=admin).status_code == 200
        assert c.get(f"{base}/jobs", headers=read).json() == {"jobs": []}
        # authentication before the body; scopes; another project's token sees no model m
        assert c.post(f"{base}/jobs", content=b"{not json").status_code == 401
        assert c.post(f"{base}/jobs", json={}, headers=read).status_code == 403
        assert c.post(f"{base}/jobs", json={}, headers=other).status_code == 404
        assert c.get(f"{base}/jobs", headers=other).status_code == 404
        # bad bodies: 422 naming the field, nothing queued
        r = c.post(f"{base}/jobs", json={"reason": 5}, headers=admin)
        assert r.status_code == 422 and "reason" in r.json()["detail"]
        r = c.post(f"{base}/jobs", json={"reason": "x" * 2001}, headers=admin)
        assert r.status_code == 422 and "reason" in r.json()["detail"]
        r = c.post(f"{base}/jobs", json={"priority": 1}, headers=admin)
        assert r.status_code == 422 and "priority" in r.json()["detail"]
        assert c.get(f"{base}/jobs?state=bogus", headers=read).status_code == 422
        assert c.get(f"{base}/jobs?limit=0", headers=read).status_code == 422
        assert store.list_jobs("p", "m") == []
        # queue, refuse a second, cancel
        r = c.post(f"{base}/jobs", json={"reason": "new scanner"}, headers=admin)
        assert r.status_code == 201, r.text
        job = r.json()
        assert job["state"] == "queued" and job["trigger"]["fired"] == [{"kind": "manual"}]
        assert c.post(f"{base}/jobs", json={}, headers=admin).status_code == 409
        assert c.post(f"{base}/jobs/{job['id']}:cancel", headers=read).status_code == 403
        r = c.post(f"{base}/jobs/{job['id']}:cancel", headers=admin)
        assert r.status_code == 200 and r.json()["state"] == "cancelled"
        assert c.post(f"{base}/jobs/{job['id']}:cancel", headers=admin).status_code == 409
        assert c.post(f"{base}/jobs/999:cancel", headers=admin).status_code == 404
        assert c.get(f"{base}/jobs/0", headers=read).status_code == 422
        # a job the loop runs: its state and log tail over HTTP, the gate's report
        job = c.post(f"{base}/jobs", json={}, headers=admin).json()
        steps = loop_step(store, "p", "m", now=T0 + 4 * DAY, workdir=tmp_path / "jobs")
        assert [s["step"] for s in steps][-1] == "promotion_pending", steps
        got = c.get(f"{base}/jobs/{job['id']}?tail=200", headers=read).json()
        assert got["state"] == "succeeded" and len(got["log_tail"]) <= 200
        assert got["outputs"]["gate"]["passed"] and got["outputs"]["version"] == "retrain-2"
        listed = c.get(f"{base}/jobs?state=succeeded", headers=read).json()["jobs"]
        assert [j["id"] for j in listed] == [job["id"]]
        r = c.get(f"{base}/versions/retrain-2/gate", headers=read)
        assert r.status_code == 200 and r.json()["passed"] and r.json()["job"] == job["id"]
        assert c.get(f"{base}/versions/v1/gate", headers=read).status_code == 404
        assert c.get(f"{base}/versions/nope/gate", headers=read).status_code == 404
        assert c.get(f"{base}/versions/retrain-2/gate", headers=other).status_code == 404
        assert c.get(f"{base}/versions/retrain-2/shadow", headers=read).status_code == 404
        lineage = c.get(f"{base}/versions/retrain-2/lineage", headers=read)
        if lineage.status_code == 200:  # the registry's route
            assert "dataset" in json.dumps(lineage.json())
        loop = c.get(f"{base}/loop", headers=read).json()
        assert loop["cycle"]["stage"] == "pending" and loop["cycle"]["version"] == "retrain-2"
        # approval: wrong version, wrong scope, then the right one; twice is a conflict
        r = c.post(f"{base}/promotion:approve", json={"version": "v1"}, headers=admin)
        assert r.status_code == 409 and "retrain-2" in r.json()["detail"]
        assert c.post(f"{base}/promotion:approve", json={}, headers=read).status_code == 403
        assert c.post(f"{base}/promotion:approve", json={}, headers=other).status_code == 404
        r = c.post(f"{base}/promotion:approve", json={"reason": "looked fine"}, headers=admin)
        assert r.status_code == 200 and (r.json()["from"], r.json()["to"]) == ("v1", "retrain-2")
        assert c.post(f"{base}/promotion:approve", headers=admin).status_code == 409
        # a promotion by hand: unknown version 422, a known one moves the champion
        r = c.post(f"{base}/promotion", json={"version": "nope"}, headers=admin)
        assert r.status_code == 422 and "nope" in r.json()["detail"]
        r = c.post(f"{base}/promotion", json={"version": "v1", "extra": 1}, headers=admin)
        assert r.status_code == 422 and "extra" in r.json()["detail"]
        assert c.post(f"{base}/promotion", json={"version": "v1"}, headers=read).status_code == 403
        r = c.post(f"{base}/promotion", json={"version": "v1"}, headers=admin)
        assert r.status_code == 200 and r.json()["to"] == "v1"
        actions = [a["action"] for a in c.get("/v1/audit?limit=100", headers=admin).json()["audit"]]
        for wanted in ("job.queue", "job.cancel", "loop.job_queued", "loop.gate_passed",
                       "loop.promotion_pending", "loop.promoted", "alias.move"):  # fmt: skip
            assert wanted in actions, (wanted, actions)
        spec = c.get("/openapi.json").json()["paths"]
        assert "409" in spec["/v1/models/{model}/jobs/{job_id}:cancel"]["post"]["responses"]
        assert "404" in spec["/v1/models/{model}/versions/{version}/gate"]["get"]["responses"]
    store.close()


def _run(*args: str) -> tuple[int, str, str]:
    from watchkeeper.cli import create_app

    result = CliRunner().invoke(create_app(), list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_loop_step_reports_and_approve(tmp_path: Path) -> None:
    from watchkeeper.loop._plan import MaintenancePlan, put_plan

    store = make_store(tmp_path)
    doc = _plan(tmp_path, shadow={"enabled": False}, promotion="approval")
    doc["retraining"]["triggers"]["new_labels"] = 100
    put_plan(store, "p", "m", MaintenancePlan.from_dict(doc).validate())
    store.close()
    db = str(tmp_path / "wk.db")
    code, out, err = _run("loop", "step", "m", "--project", "p", "--db", db,
                          "--at", str(T0 + 4 * DAY))  # fmt: skip
    assert code == 0, out + err
    assert "job_queued" in out and "gate_passed" in out and "promotion_pending" in out
    assert (tmp_path / "jobs" / "job-1" / "data" / "manifest.json").is_file()
    code, out, _ = _run("model", "gate", "m", "retrain-1", "--project", "p", "--db", db)
    assert code == 0 and "gate: PASSED" in out and "AUC" in out and "pass " in out
    code, out, _ = _run("model", "gate", "m", "retrain-1", "--project", "p", "--db", db, "--json")
    assert json.loads(out)["passed"] is True
    code, _, err = _run("model", "gate", "m", "v1", "--project", "p", "--db", db)
    assert code == 2 and "no stored gate report" in err
    code, _, err = _run("model", "gate", "m", "v9", "--project", "p", "--db", db)
    assert code == 2 and "v9" in err
    code, out, _ = _run("loop", "status", "m", "--project", "p", "--db", db)
    assert code == 0 and "retrain-1: pending" in out and "promotion_pending" in out
    code, out, _ = _run("loop", "job", "1", "--project", "p", "--db", db)
    assert code == 0 and "succeeded" in out and "dataset" in out
    code, _, err = _run("loop", "cancel", "1", "--project", "p", "--db", db)
    assert code == 2 and "succeeded" in err
    code, _, err = _run("model", "approve", "m", "v1", "--project", "p", "--db", db)
    assert code == 2 and "retrain-1" in err
    code, out, _ = _run("model", "approve", "m", "--project", "p", "--db", db, "--actor", "bob")
    assert code == 0 and "v1 -> retrain-1" in out


def test_the_server_scheduler_closes_the_loop(tmp_path: Path) -> None:
    from watchkeeper.loop._plan import MaintenancePlan, put_plan
    from watchkeeper.runner import Scheduler

    store = make_store(tmp_path)
    doc = _plan(tmp_path, shadow={"enabled": False}, promotion="auto")
    doc["retraining"]["triggers"]["new_labels"] = 100
    put_plan(store, "p", "m", MaintenancePlan.from_dict(doc).validate())
    driver = LoopDriver(store, workdir=tmp_path / "jobs")
    steps: list[Any] = []

    def after_run(project: str, model: str, now: float | None) -> None:
        steps.extend(driver.step(project, model, now))

    scheduler = Scheduler(store, interval=3600, after_run=after_run)
    now = T0 + 4 * DAY
    scheduler.run_once(now=now)
    assert [s["step"] for s in steps] == ["job_queued", "job_launched"], steps
    driver.join(timeout=120)  # the job ran on its own thread, off the monitors' tick
    assert store.get_job("p", 1)["state"] == "succeeded"
    scheduler.run_once(now=now + 60)
    assert [s["step"] for s in steps][2:] == ["job_started", "job_succeeded", "gate_passed",
                                              "promoted"], steps  # fmt: skip
    assert store.get_alias("p", "m", "champion") == "retrain-1"
    scheduler.run_once(now=now + 120)  # nothing more to do
    assert len(steps) == 6
    store.close()


@pytest.mark.slow
def test_a_server_with_its_scheduler_runs_a_queued_job_and_promotes(tmp_path: Path) -> None:
    """`watchkeeper serve --scheduler` closes the loop by itself: a job queued over HTTP is run
    by the scheduler, gated, and promoted (promotion: auto, no shadow) with no other call."""
    import time

    from fastapi.testclient import TestClient

    from watchkeeper.loop._plan import MaintenancePlan, put_plan
    from watchkeeper.server import Settings, create_app

    store = make_store(tmp_path)
    put_plan(store, "p", "m", MaintenancePlan.from_dict(
        _plan(tmp_path, shadow={"enabled": False}, promotion="auto")).validate())  # fmt: skip
    admin = {"Authorization": f"Bearer {store.create_token('p', {'admin'})}"}
    settings = Settings(run_scheduler=True, scheduler_interval=0.5,
                        jobs_dir=str(tmp_path / "server-jobs"))  # fmt: skip
    with TestClient(create_app(settings, store=store)) as c:
        assert c.post("/v1/models/m/jobs", json={}, headers=admin).status_code == 201
        deadline = time.monotonic() + 180
        while store.get_alias("p", "m", "champion") != "retrain-1":
            assert time.monotonic() < deadline, c.get("/v1/models/m/loop", headers=admin).json()
            time.sleep(0.3)
        steps = [e["step"] for e in c.get("/v1/models/m/loop", headers=admin).json()["events"]]
    assert steps == ["job_queued", "job_started", "job_succeeded", "gate_passed", "promoted"]
    assert (tmp_path / "server-jobs" / "job-1" / "data" / "manifest.json").is_file()
    store.close()
