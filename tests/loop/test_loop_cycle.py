"""The loop driven by loop_step: trigger -> job -> gate -> shadow -> promotion (auto or
approval) -> watch, with every step notified and audited; each trigger kind end to end."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from loop_fixtures import DAY, T0, make_store, write_trainer

from watchkeeper.loop._cycle import approve, gate_report, loop_step, shadow_report_of
from watchkeeper.loop._plan import MaintenancePlan, put_plan
from watchkeeper.loop._promote import loop_events
from watchkeeper.window import Window


def _plan(store: Any, tmp_path: Path, kind: str = "good", **retraining: Any) -> None:
    script = write_trainer(tmp_path)
    doc = {"retraining": {
        "trainer": {"command": [sys.executable, str(script), "{eval}", "{output}", kind]},
        "dataset": {"since": "10d"},
        "gate": {"min_events": 50, "n_bootstrap": 200, "rules": [
            {"metric": "auc", "test": "superior"}]},
        **retraining,
    }}  # fmt: skip
    put_plan(store, "p", "m", MaintenancePlan.from_dict(doc).validate())


def _shadow_day(store: Any, version: str, start: float, n: int = 600) -> None:
    """A day of served traffic, labelled, with the challenger's mirrored events."""
    rng = np.random.default_rng(5)
    ids = [f"s{int(start)}-{i}" for i in range(n)]
    ts = start + np.linspace(1, DAY - 10, n)
    y = rng.integers(0, 2, n)
    store.log_events("p", "m", Window.from_columns(
        ids=ids, ts=ts, features={"x": rng.normal(size=n)}, scores=rng.uniform(size=n),
        versions=np.full(n, "v1", dtype=object)))  # fmt: skip
    store.log_labels("p", "m", ids, y)
    good = np.clip(0.25 + 0.5 * y + rng.normal(0, 0.15, n), 0, 1)
    store.log_events("p", "m:shadow", Window.from_columns(
        ids=ids, ts=ts, features={"x": rng.normal(size=n)}, scores=good,
        versions=np.full(n, version, dtype=object)))  # fmt: skip


def test_the_whole_loop_with_approval(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    store.set_alias("p", "m", "champion", "v1", actor="ci", reason="first")
    _plan(store, tmp_path, triggers={"verdicts": [], "new_labels": 100}, promotion="approval",
          cooldown="7d", shadow={"duration": "2d"})  # fmt: skip
    now = T0 + 4 * DAY
    steps = loop_step(store, "p", "m", now=now, workdir=tmp_path / "jobs")
    names = [s["step"] for s in steps]
    assert names == ["job_queued", "job_started", "job_succeeded", "gate_passed",
                     "shadow_started"], steps  # fmt: skip
    version = "retrain-1"
    report = gate_report(store, "p", "m", version)
    assert report is not None and report["passed"] and report["job"] == 1
    assert set(report["sets"]) == {"validation", "recent"}
    record = store.get_model_version("p", "m", version)
    job = store.get_job("p", 1)
    fingerprint = job["outputs"]["dataset"]["fingerprint"]
    assert record["data_fingerprint"] == fingerprint
    assert record["lineage"]["dataset"]["fingerprint"] == fingerprint
    assert record["lineage"]["parent"] == "v1" and record["lineage"]["gate"]["passed"]
    threshold = report["thresholds"]["challenger"]
    assert record["operating_point"]["threshold"] == pytest.approx(threshold)
    assert store.get_alias("p", "m", "challenger") == version
    assert store.get_alias("p", "m", "champion") == "v1"  # not yet
    # nothing mirrored yet: the shadow waits
    assert loop_step(store, "p", "m", now=now + 3600, workdir=tmp_path / "jobs") == []
    assert "no request id in common" in shadow_report_of(store, "p", "m", version)["error"]
    _shadow_day(store, version, now)
    steps = loop_step(store, "p", "m", now=now + DAY, workdir=tmp_path / "jobs")
    assert [s["step"] for s in steps] == ["promotion_pending"], steps
    shadow = shadow_report_of(store, "p", "m", version)
    assert shadow["decision"] == "promote" and shadow["n_paired"] == 600
    assert store.get_model_version("p", "m", version)["lineage"]["shadow"]["decision"] == "promote"
    with pytest.raises(ValueError, match="pending promotion is"):
        approve(store, "p", "m", "v9")
    move = approve(store, "p", "m", version, actor="alice", now=now + DAY + 60)
    assert (move["from"], move["to"]) == ("v1", version)
    with pytest.raises(ValueError, match="no promotion waiting"):
        approve(store, "p", "m")
    events = [e["step"] for e in loop_events(store, "p", "m")]
    assert events == ["job_queued", "job_started", "job_succeeded", "gate_passed",
                      "shadow_started", "shadow_decided", "promotion_pending", "promoted"]
    audited = [a["action"] for a in reversed(store.audit_log("p"))]
    assert [a for a in audited if a.startswith("loop.")] == [f"loop.{e}" for e in events]
    # the cycle ended: the next step is quiet (cooldown), and restarting changes nothing
    assert loop_step(store, "p", "m", now=now + DAY + 120, workdir=tmp_path / "jobs") == []
    store.close()


def test_a_shuffled_label_challenger_fails_the_gate_and_is_not_promoted(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    _plan(store, tmp_path, "shuffled", triggers={"verdicts": [], "new_labels": 100},
          promotion="auto")  # fmt: skip
    steps = loop_step(store, "p", "m", now=T0 + 4 * DAY, workdir=tmp_path / "jobs")
    assert [s["step"] for s in steps][-1] == "gate_failed"
    report = gate_report(store, "p", "m", "retrain-1")
    assert report is not None and not report["passed"]
    assert store.get_alias("p", "m", "champion") == "v1"  # pinned, never moved
    assert store.get_alias("p", "m", "challenger") is None
    store.close()


def test_auto_promotion_without_shadow_then_rollback(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    _plan(store, tmp_path, triggers={"verdicts": [], "new_labels": 100}, promotion="auto",
          shadow={"enabled": False}, rollback={"watch": "1d"})  # fmt: skip
    now = T0 + 4 * DAY
    steps = loop_step(store, "p", "m", now=now, workdir=tmp_path / "jobs")
    assert [s["step"] for s in steps][-1] == "promoted"
    assert store.get_alias("p", "m", "champion") == "retrain-1"
    store.add_findings("p", "m", [{
        "check": "operating_point", "subject": "flags", "method": "binomial", "statistic": 5.0,
        "p_value": 1e-9, "drift": True, "window_start": now + 60, "window_end": now + 3600,
        "details": {"verdict": "model_change"}}])  # fmt: skip
    steps = loop_step(store, "p", "m", now=now + 7200, workdir=tmp_path / "jobs")
    assert steps[0]["step"] == "rolled_back"
    assert store.get_alias("p", "m", "champion") == "v1"
    assert "loop.rolled_back" in [a["action"] for a in store.audit_log("p")]
    store.close()


def test_a_failed_job_is_notified_and_the_loop_goes_on(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    put_plan(store, "p", "m", MaintenancePlan.from_dict({"retraining": {
        "trainer": {"command": [sys.executable, "-c", "raise SystemExit(4)"]},
        "triggers": {"verdicts": [], "new_labels": 100}, "dataset": {"since": "10d"}}}
    ).validate())  # fmt: skip
    steps = loop_step(store, "p", "m", now=T0 + 4 * DAY, workdir=tmp_path / "jobs")
    assert [s["step"] for s in steps] == ["job_queued", "job_started", "job_failed"]
    assert "code 4" in loop_events(store, "p", "m")[-1]["summary"]
    store.close()


# -- each trigger kind, end to end through loop_step: a job is queued and says why --------------


def _finding(check: str, subject: str, end: float, **details: Any) -> dict[str, Any]:
    return {"check": check, "subject": subject, "method": "m", "statistic": 1.0,
            "p_value": 1e-6, "drift": True, "window_start": end - 3600, "window_end": end,
            "details": details}  # fmt: skip


@pytest.mark.parametrize("kind", ["alert", "verdict", "realised_performance", "schedule",
                                  "new_labels", "prior_shift"])  # fmt: skip
def test_each_trigger_kind_queues_a_job(tmp_path: Path, kind: str) -> None:
    store = make_store(tmp_path)
    now = T0 + 4 * DAY
    triggers: dict[str, Any] = {"verdicts": []}
    if kind == "alert":
        triggers["alerts"] = ["operating_point"]
        store.upsert_alert("p", {"key": "k1", "rule": "operating_point", "model": "m",
                                 "status": "firing", "severity": "critical", "summary": "s",
                                 "updated_at": now - 60})  # fmt: skip
    elif kind == "verdict":
        triggers["verdicts"] = ["model_change"]
        store.add_findings("p", "m", [_finding("operating_point", "flags", now - 60,
                                               verdict="model_change")])  # fmt: skip
    elif kind == "prior_shift":  # the default plan: a prior shift is not a reason to retrain
        triggers = {}
        store.add_findings("p", "m", [_finding("operating_point", "flags", now - 60,
                                               verdict="prior_shift")])  # fmt: skip
    elif kind == "realised_performance":
        triggers["realised_performance"] = {"metric": "f1", "below": 0.7}
        store.add_findings("p", "m", [_finding("realised_performance", "f1", now - 60,
                                               value=0.55)])  # fmt: skip
    elif kind == "schedule":
        triggers["schedule"] = "0 12 * * *"  # noon UTC
    elif kind == "new_labels":
        triggers["new_labels"] = 100  # the fixture's last day has 100 labelled events
    put_plan(store, "p", "m", MaintenancePlan.from_dict({"retraining": {
        "trainer": {"command": ["true"]}, "triggers": triggers}}).validate())  # fmt: skip
    steps = loop_step(store, "p", "m", now=now, run_jobs=False)
    if kind == "prior_shift":
        assert steps == [] and store.list_jobs("p", "m") == []
        return
    assert [s["step"] for s in steps] == ["job_queued"]
    job = store.list_jobs("p", "m")[0]
    assert job["state"] == "queued"
    assert [f["kind"] for f in job["trigger"]["fired"]] == [
        "verdict" if kind == "verdict" else kind]
    # the cooldown holds: the same evidence an hour later queues nothing more
    store.cancel_job("p", job["id"])
    assert loop_step(store, "p", "m", now=now + 3600, run_jobs=False) == [
        {"step": "job_cancelled", "job": job["id"]}]
    # while another process's step holds the model's lease, a step does nothing
    assert store.acquire_lease("p", "loop-step:m", "elsewhere", ttl=60)
    store.cancel_job("p", store.create_job("p", "m")["id"])
    assert loop_step(store, "p", "m", now=now + 7200, run_jobs=False) == []
    store.release_lease("p", "loop-step:m", "elsewhere")
    assert loop_step(store, "p", "m", now=now + 7200, run_jobs=False)[0]["step"] == "job_cancelled"
    store.close()


def test_the_loop_reads_the_stream_the_shadow_sdk_writes() -> None:
    from watchkeeper.loop._cycle import shadow_model
    from watchkeeper.shadow import shadow_model as sdk_shadow_model

    assert shadow_model("doc-fraud") == sdk_shadow_model("doc-fraud")


def _mirror(store: Any, version: str, start: float, *, worse: bool, n: int = 600) -> None:
    rng = np.random.default_rng(9)
    ids = [f"w{int(start)}-{i}" for i in range(n)]
    ts = start + np.linspace(1, DAY - 10, n)
    y = rng.integers(0, 2, n)
    champion = np.clip(0.25 + 0.5 * y + rng.normal(0, 0.15, n), 0, 1)
    challenger = rng.uniform(size=n) if worse else champion
    store.log_events("p", "m", Window.from_columns(ids=ids, ts=ts, scores=champion))
    store.log_labels("p", "m", ids, y)
    store.log_events("p", "m:shadow", Window.from_columns(
        ids=ids, ts=ts, scores=challenger, versions=np.full(n, version, dtype=object)))  # fmt: skip


@pytest.mark.slow
def test_shadow_rejects_a_worse_challenger_and_asks_a_person_when_undecided(
    tmp_path: Path,
) -> None:
    store = make_store(tmp_path)
    _plan(store, tmp_path, triggers={"verdicts": [], "new_labels": 100}, promotion="auto",
          cooldown="30d", shadow={"duration": "2d"})  # fmt: skip
    now = T0 + 4 * DAY
    assert loop_step(store, "p", "m", now=now, workdir=tmp_path / "jobs")[-1]["step"] == (
        "shadow_started")
    _mirror(store, "retrain-1", now, worse=True)
    steps = loop_step(store, "p", "m", now=now + DAY, workdir=tmp_path / "jobs")
    assert steps == [{"step": "shadow_decided", "decision": "reject"}]
    assert shadow_report_of(store, "p", "m", "retrain-1")["decision"] == "reject"
    assert store.get_alias("p", "m", "champion") == "v1"  # auto, but the evidence was against
    # a second challenger whose shadow sees the same answers: no decision by the deadline
    job = store.create_job("p", "m", spec=store.get_job("p", 1)["spec"])
    steps = loop_step(store, "p", "m", now=now + DAY + 60, workdir=tmp_path / "jobs")
    assert steps[-1]["step"] == "shadow_started"
    version = f"retrain-{job['id']}"
    _mirror(store, version, now + DAY + 120, worse=False, n=200)
    steps = loop_step(store, "p", "m", now=now + 2 * DAY, workdir=tmp_path / "jobs")
    assert steps == []  # identical answers: no discordant pair, no decision yet
    steps = loop_step(store, "p", "m", now=now + 3 * DAY + 120, workdir=tmp_path / "jobs")
    assert steps == [{"step": "promotion_pending", "version": version}]  # a person decides
    assert store.get_alias("p", "m", "champion") == "v1"
    store.close()


def test_each_step_reaches_the_plans_sinks(tmp_path: Path) -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from watchkeeper.alerts import SinkPolicy

    got: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            got.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        policy = SinkPolicy.parse("127.0.0.1", None)
        store = make_store(tmp_path)
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        put_plan(store, "p", "m", MaintenancePlan.from_dict({
            "sinks": [{"type": "webhook", "url": url}],
            "retraining": {"trainer": {"command": [sys.executable, "-c", "raise SystemExit(4)"]},
                           "triggers": {"verdicts": [], "new_labels": 100},
                           "dataset": {"since": "10d"}}}).validate(policy), policy)  # fmt: skip
        loop_step(store, "p", "m", now=T0 + 4 * DAY, workdir=tmp_path / "jobs", policy=policy)
        rules = [e["alert"]["rule"] for body in got for e in body["events"]]
        assert rules == ["loop.job_queued", "loop.job_started", "loop.job_failed"], got
        assert "sink_errors" not in loop_events(store, "p", "m")[-1]
        store.close()
    finally:
        server.shutdown()
        server.server_close()


def test_a_trainer_that_writes_no_scores_fails_the_gate_saying_why(tmp_path: Path) -> None:
    store = make_store(tmp_path)
    put_plan(store, "p", "m", MaintenancePlan.from_dict({"retraining": {
        "trainer": {"command": ["true"]}, "triggers": {"verdicts": [], "new_labels": 100},
        "dataset": {"since": "10d"}, "promotion": "auto"}}).validate())  # fmt: skip
    steps = loop_step(store, "p", "m", now=T0 + 4 * DAY, workdir=tmp_path / "jobs")
    assert [s["step"] for s in steps][-1] == "gate_failed"
    report = gate_report(store, "p", "m", "retrain-1")
    assert report is not None and not report["passed"] and "eval_scores" in report["error"]
    assert store.get_alias("p", "m", "champion") == "v1"
    assert loop_step(store, "p", "m", now=T0 + 4 * DAY + 60, workdir=tmp_path / "jobs") == []
    store.close()
