"""Dataset builder, training jobs (states, timeout, cancel, kill -9) and every trigger kind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from loop_fixtures import DAY, T0, make_store

from watchkeeper.loop import build_dataset
from watchkeeper.loop._jobs import recover_jobs, run_job
from watchkeeper.loop._plan import MaintenancePlan, put_plan
from watchkeeper.loop._triggers import due_triggers, maybe_retrain


def test_dataset_split_by_time_no_shared_id_manifest(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    now = T0 + 4 * DAY

    def faded(train: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
        return pd.DataFrame({"label": np.arange(n) % 2, "feature.x": np.zeros(n)})

    m = build_dataset(
        store, "p", "m", tmp_path / "ds", {"since": "10d", "eval_fraction": 0.25,
                                             "generated": 30},
        generator=faded, now=now,
    )  # fmt: skip
    train, ev = pd.read_parquet(m.train), pd.read_parquet(m.eval)
    assert not set(train["id"]) & set(ev["id"])
    prod_train = train[train["source"] == "production"]
    prod_eval = ev[ev["source"] == "production"]
    assert prod_train["ts"].max() < prod_eval["ts"].min()
    assert len(prod_train) + len(prod_eval) == 400  # labelled events only
    assert (train["source"] == "generated").sum() == 30
    assert (ev["source"] == "reference").sum() == 300
    manifest = json.loads((tmp_path / "ds" / "manifest.json").read_text())
    assert manifest["fingerprint"] == m.fingerprint and len(m.fingerprint) == 64
    import hashlib

    assert manifest["files"]["train"]["sha256"] == hashlib.sha256(
        Path(m.train).read_bytes()
    ).hexdigest()
    # curated: only the new scanner's days
    c = build_dataset(store, "p", "m", tmp_path / "c", {"curated": {"tags": {"scanner": "new"}},
                                                         "reference": "none"}, now=now)  # fmt: skip
    both = pd.concat([pd.read_parquet(c.train), pd.read_parquet(c.eval)])
    assert set(both["tag.scanner"]) == {"new"} and len(both) == 200
    with pytest.raises(ValueError, match="min_labelled"):
        build_dataset(store, "p", "m", tmp_path / "x", {"min_labelled": 10_000}, now=now)
    store.close()


def _plan(store: Any, trainer: dict[str, Any], **retraining: Any) -> None:
    doc = {"retraining": {"trainer": trainer, "dataset": {"since": "10d"}, **retraining}}
    put_plan(store, "p", "m", MaintenancePlan.from_dict(doc).validate())


def test_job_runs_a_command_and_a_callable(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    script = "import sys, pathlib; pathlib.Path(sys.argv[2], 'model.txt').write_text(sys.argv[1])"
    _plan(store, {"command": [sys.executable, "-c", script, "{train}", "{output}"]})
    job = maybe_retrain(store, "p", "m", now=T0 + 4 * DAY, force=True)
    assert job is not None and job["state"] == "queued"
    assert maybe_retrain(store, "p", "m", now=T0 + 4 * DAY, force=True) is None  # one at a time
    done = run_job(store, "p", job["id"], workdir=tmp_path / "jobs")
    assert done["state"] == "succeeded", done
    out = Path(done["outputs"]["artifact"])
    assert (out / "model.txt").read_text().endswith("train.parquet")
    assert done["outputs"]["dataset"]["fingerprint"]
    # a callable: json.dumps(data) is a callable that returns a string
    _plan(store, {"callable": "json:dumps"})
    job = maybe_retrain(store, "p", "m", now=T0 + 4 * DAY, force=True)
    assert job is not None
    done = run_job(store, "p", job["id"], workdir=tmp_path / "jobs")
    assert done["state"] == "succeeded"
    assert json.loads(done["outputs"]["artifact"])["eval"].endswith("eval.parquet")
    store.close()


def test_job_failure_timeout_and_cancel(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    _plan(store, {"command": [sys.executable, "-c", "raise SystemExit(3)"]})
    job = maybe_retrain(store, "p", "m", now=T0 + 4 * DAY, force=True)
    assert job is not None
    done = run_job(store, "p", job["id"], workdir=tmp_path / "jobs", )
    assert done["state"] == "failed" and "code 3" in done["error"]
    _plan(store, {"command": ["sleep", "30"], "timeout": 1})
    job = maybe_retrain(store, "p", "m", now=T0 + 4 * DAY, force=True)
    assert job is not None
    t0 = time.monotonic()
    done = run_job(store, "p", job["id"], workdir=tmp_path / "jobs")
    assert done["state"] == "failed" and "timeout" in done["error"]
    assert time.monotonic() - t0 < 15
    job = maybe_retrain(store, "p", "m", now=T0 + 4 * DAY, force=True)
    assert job is not None
    assert store.cancel_job("p", job["id"])["state"] == "cancelled"
    assert run_job(store, "p", job["id"], workdir=tmp_path / "jobs")["state"] == "cancelled"
    store.close()


_RUNNER = """
import sys
from watchkeeper.store import Store
from watchkeeper.loop._jobs import run_job
store = Store(sys.argv[1])
run_job(store, "p", int(sys.argv[2]), workdir=sys.argv[3], holder="doomed")
"""


def test_job_survives_a_kill_9_of_its_runner(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    flag = tmp_path / "first-attempt"
    script = (
        f"if [ -f {flag} ]; then echo trained > {{output}}/model.txt; "
        f"else touch {flag}; echo $$ > {tmp_path}/trainer.pid; exec sleep 60; fi"
    )
    _plan(store, {"command": ["sh", "-c", script]})
    job = maybe_retrain(store, "p", "m", now=T0 + 4 * DAY, force=True)
    assert job is not None
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    runner = subprocess.Popen(
        [sys.executable, "-c", _RUNNER, str(tmp_path / "wk.db"), str(job["id"]),
         str(tmp_path / "jobs")], env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while store.get_job("p", job["id"])["state"] != "running" or not flag.exists():
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.2)
    os.kill(runner.pid, signal.SIGKILL)  # the server dies mid-training
    runner.wait()
    trainer_pid = int((tmp_path / "trainer.pid").read_text())
    os.kill(trainer_pid, signal.SIGKILL)
    assert store.get_job("p", job["id"])["state"] == "running"  # not silently lost...
    recovered = recover_jobs(store, "p", stale_after=0.0)
    assert [j["state"] for j in recovered] == ["queued"]  # ...requeued
    assert "no heartbeat" in recovered[0]["log"]
    store.release_lease("p", "retrain:m", "doomed")  # the dead holder's lease would lapse too
    done = run_job(store, "p", job["id"], workdir=tmp_path / "jobs")
    assert done["state"] == "succeeded" and done["attempts"] == 2
    store.close()


def test_each_trigger_kind(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    now = T0 + 4 * DAY
    base = MaintenancePlan.from_dict({"retraining": {}}).validate().retraining
    assert base is not None
    assert due_triggers(store, "p", "m", base, now=now, since=now - DAY) == []
    # a model_change verdict
    store.add_findings("p", "m", [
        {"check": "operating_point", "subject": "flags", "method": "binomial", "statistic": 3.0,
         "p_value": 1e-6, "drift": True, "window_start": now - 3600, "window_end": now - 1,
         "details": {"verdict": "prior_shift"}},
    ])  # fmt: skip
    assert due_triggers(store, "p", "m", base, now=now, since=now - DAY) == []  # not prior shift
    store.add_findings("p", "m", [
        {"check": "operating_point", "subject": "flags", "method": "binomial", "statistic": 5.0,
         "p_value": 1e-9, "drift": True, "window_start": now - 3600, "window_end": now,
         "details": {"verdict": "model_change"}},
        {"check": "realised_performance", "subject": "f1", "method": "bootstrap",
         "statistic": 0.55, "p_value": None, "drift": True, "window_start": now - 3600,
         "window_end": now, "details": {"value": 0.55}},
    ])  # fmt: skip
    kinds = [f["kind"] for f in due_triggers(store, "p", "m", base, now=now, since=now - DAY)]
    assert kinds == ["verdict"]
    r = MaintenancePlan.from_dict({"retraining": {"triggers": {
        "verdicts": [], "realised_performance": {"metric": "f1", "below": 0.7},
        "schedule": "0 * * * *", "new_labels": 150, "alerts": ["operating_point"]}}}
    ).validate().retraining  # fmt: skip
    assert r is not None
    store.upsert_alert("p", {"key": "k1", "rule": "operating_point", "model": "m",
                             "status": "firing", "severity": "critical", "summary": "s"})
    fired = due_triggers(store, "p", "m", r, now=now + 1, since=now - 2 * DAY)
    assert sorted(f["kind"] for f in fired) == [
        "alert", "new_labels", "realised_performance", "schedule"]  # fmt: skip
    # cooldown: a second trigger within it queues nothing
    _plan(store, {"command": ["true"]}, cooldown="1d")
    job = maybe_retrain(store, "p", "m", now=now)
    assert job is not None and job["trigger"]["fired"][0]["kind"] == "verdict"
    store.cancel_job("p", job["id"])
    assert maybe_retrain(store, "p", "m", now=now + 3600) is None
    store.close()
