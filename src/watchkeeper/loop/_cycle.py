"""The loop's driver: one bounded, restart-safe step per model, its memory kept in the store.

:func:`loop_step` does what is due for one model and returns what it did:

1. the watch period of the last promotion (:func:`~watchkeeper.loop._promote.check_watch`);
2. the plan's triggers (:func:`~watchkeeper.loop._triggers.maybe_retrain`) unless a challenger
   is already in the gate, the shadow test or waiting for approval;
3. a queued job, run to its end here (``run_jobs=True``, a cron step) or by the caller (the
   server's scheduler runs it on a thread so the monitors keep their tick);
4. every job that ended since the last step: notified; a succeeded one goes to the **gate**
   (:func:`gate_job`), which registers the challenger version with its lineage and stores the
   gate's report in the job's outputs;
5. the **shadow test** of a challenger that passed (:func:`shadow_step`): the report on the
   mirrored traffic since the shadow started, a decision when the sequential test reaches one,
   else at the plan's ``shadow.duration``;
6. the **promotion**: automatic when the plan says ``promotion: auto`` and the evidence is for
   the challenger, else a pending promotion that :func:`approve` (a person) completes.

The state machine lives in the loop's state (``cycle``: job, version, stage, since), so a step
that dies half-way is redone by the next one: every write is keyed by the job or the version.
Each step is notified to the plan's sinks and written to the audit log.

The gate needs the challenger's scores on the evaluation set: a trainer writes them to
``{output}/eval_scores.parquet`` (or ``eval_scores.csv``) with the columns ``id`` and ``score``,
one row per row of ``{eval}``. The champion's scores are those the dataset recorded.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from watchkeeper.checks._config import parse_duration
from watchkeeper.loop._plan import get_plan
from watchkeeper.loop._promote import notify, promote
from watchkeeper.loop._triggers import loop_state, save_loop_state

SCORE_FILES = ("eval_scores.parquet", "eval_scores.csv")
ACTIVE_STAGES = ("gate", "shadow", "pending")
SHADOW_SUFFIX = ":shadow"
"""The challenger's mirrored events go to ``<model>:shadow`` (what ``watchkeeper.shadow``
logs to; the shadow SDK is a layer apart, so the name is spelled here too)."""


def shadow_model(model: str) -> str:
    """The stream a model's challenger logs its mirrored events to.

    Examples
    --------
    >>> shadow_model("doc-fraud")
    'doc-fraud:shadow'
    """
    return model + SHADOW_SUFFIX
MAX_SEEN_JOBS = 50
STEP_LEASE = 3600.0
"""Seconds a loop step holds its model's lease at most (a step running a job in the
foreground is bounded by the trainer's timeout; a dead step's lease lapses after this)."""


def version_for_job(job_id: int) -> str:
    """The registry version a job's challenger gets.

    Examples
    --------
    >>> version_for_job(7)
    'retrain-7'
    """
    return f"retrain-{int(job_id)}"


def _champion(store: Any, project: str, model: str) -> dict[str, Any] | None:
    """The champion's version record (the alias, else the newest version), or None."""
    name = store.get_alias(project, model, "champion")
    if name is None:
        versions = store.list_model_versions(project, model)
        if not versions:
            return None
        return dict(versions[-1])
    return dict(store.get_model_version(project, model, name))


def _challenger_scores(outputs: dict[str, Any]) -> Any:
    import pandas as pd

    places = [Path(outputs.get("workdir", "")) / "output"]
    artifact = outputs.get("artifact")
    if artifact:
        a = Path(artifact)
        places.append(a if a.is_dir() else a.parent)
    for place in places:
        for name in SCORE_FILES:
            path = place / name
            if path.is_file():
                frame = pd.read_parquet(path) if name.endswith(".parquet") else pd.read_csv(path)
                if "id" not in frame or "score" not in frame:
                    raise ValueError(f"{path}: expected the columns id and score")
                return frame
    raise ValueError(
        "the trainer wrote no challenger scores on the evaluation set "
        f"({' or '.join(SCORE_FILES)} with the columns id and score in its output directory)"
    )


def _eval_sets(store: Any, project: str, job: dict[str, Any], gate_cfg: dict[str, Any]) -> Any:
    """The gate's evaluation sets from the job's dataset and the challenger's scores."""
    import pandas as pd

    from watchkeeper.loop._gate import EvalSet

    outputs = job["outputs"]
    frame = pd.read_parquet(outputs["dataset"]["eval"])
    scores = _challenger_scores(outputs)
    by_id = pd.Series(
        pd.to_numeric(scores["score"], errors="coerce").to_numpy(np.float64),
        index=scores["id"].astype(str),
    )
    by_id = by_id[~by_id.index.duplicated(keep="last")]
    frame = frame[frame["label"].notna()].copy()
    frame["challenger"] = by_id.reindex(frame["id"].astype(str)).to_numpy()
    missing = int(frame["challenger"].isna().sum())
    if missing:
        raise ValueError(
            f"the challenger's scores miss {missing} of the {len(frame)} labelled evaluation "
            "events (or are not numbers)"
        )
    tags = [c for c in frame.columns if c.startswith("tag.")]
    sets: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    for name, source in (("validation", "reference"), ("recent", "production")):
        part = frame[frame["source"] == source]
        y = part["label"].astype(str).astype(float).to_numpy() > 0.5
        if len(part) < gate_cfg["min_events"] or y.sum() < 2 or (~y).sum() < 2:
            skipped[name] = (
                f"{len(part)} labelled events ({int(y.sum())} positive): too few for the gate"
            )
            continue
        sets[name] = EvalSet(
            y.astype(np.int64), part["score"].to_numpy(np.float64),
            part["challenger"].to_numpy(np.float64),
            tags={c[4:]: part[c].astype(str).to_numpy() for c in tags},
        )  # fmt: skip
    return sets, skipped, frame


def _register(
    store: Any, project: str, model: str, job: dict[str, Any], version: str,
    champion: dict[str, Any] | None, threshold: float | None, frame: Any,
) -> None:  # fmt: skip
    """Register the challenger version: artifact, operating point, reference, lineage."""
    from watchkeeper.estimation import OperatingPoint
    from watchkeeper.registry import record_lineage
    from watchkeeper.window import Window

    outputs = job["outputs"]
    manifest = outputs["dataset"]
    artifact_text = str(outputs.get("artifact") or "")
    artifact = Path(artifact_text)
    sha = None
    if artifact_text and artifact.is_file() and artifact.stat().st_size <= 4 * 2**30:
        h = hashlib.sha256()
        with artifact.open("rb") as f:
            for chunk in iter(lambda: f.read(2**20), b""):
                h.update(chunk)
        sha = h.hexdigest()
    op = None
    ref_rows = frame[frame["source"] == "reference"] if frame is not None else None
    if threshold is not None and ref_rows is not None and len(ref_rows):
        y = ref_rows["label"].astype(str).astype(float).to_numpy() > 0.5
        if 0 < y.sum() < y.size:
            op = OperatingPoint.from_scores(
                ref_rows["challenger"].to_numpy(np.float64), y, threshold=threshold
            ).to_dict()
    if champion is not None and store.get_alias(project, model, "champion") is None:
        # the newest version would become the serving one: pin the champion first
        store.set_alias(
            project, model, "champion", champion["version"], actor="watchkeeper",
            reason=f"pinned before job {job['id']} registered a challenger",
        )  # fmt: skip
    store.register_model_version(
        project, model, version,
        artifact_uri=artifact.resolve().as_uri() if artifact_text and artifact.exists() else None,
        sha256=sha, operating_point=op,
        expected_prevalence=None if champion is None else champion.get("expected_prevalence"),
        expected_volume=None if champion is None else champion.get("expected_volume"),
        window=None if champion is None else champion.get("window"),
    )  # fmt: skip
    if ref_rows is not None and len(ref_rows) and threshold is not None:
        feats = {c[8:]: ref_rows[c].to_numpy() for c in ref_rows.columns
                 if c.startswith("feature.")}  # fmt: skip
        s = ref_rows["challenger"].to_numpy(np.float64)
        store.put_reference(project, model, version, Window.from_columns(
            ids=[str(i)[len("reference:"):] for i in ref_rows["id"]], features=feats, scores=s,
            predicted=np.where(s >= threshold, "1", "0"),
            labels=ref_rows["label"].astype(str).astype(float).astype(np.int64).to_numpy(),
            versions=np.full(len(s), version, dtype=object),
        ))  # fmt: skip
    parent = None if champion is None else champion["version"]
    lineage = record_lineage(
        store, project, model, version, training_data=manifest["train"],
        validation_data=manifest["eval"], time_column="ts", parent=parent,
        params={"job": float(job["id"])}, code=None,
        windows=[[manifest["config"]["start"], manifest["config"]["end"]]],
    )  # fmt: skip
    lineage["dataset"] = {
        "fingerprint": manifest["fingerprint"], "manifest": str(
            Path(manifest["train"]).parent / "manifest.json"),
        "split_ts": manifest.get("split_ts"), "files": manifest["files"],
    }  # fmt: skip
    lineage["job"] = int(job["id"])
    lineage["trigger"] = job.get("trigger") or {}
    store.put_version_registry(project, model, version, lineage=lineage)
    # the manifest's fingerprint names the training data (train and eval files together)
    store.register_model_version(project, model, version, data_fingerprint=manifest["fingerprint"])


def _merge_lineage(store: Any, project: str, model: str, version: str, **parts: Any) -> None:
    record = store.get_model_version(project, model, version)
    lineage = dict(record.get("lineage") or {})
    lineage.update(parts)
    store.put_version_registry(project, model, version, lineage=lineage)


def gate_job(
    store: Any, project: str, model: str, job_id: int, *, now: float | None = None,
    policy: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """Run the plan's gate on a succeeded job's challenger; register the version; store the
    report (job outputs ``gate``, version lineage ``gate``); notify. Returns the report dict
    (``passed``, ``version``, and ``error`` when the gate could not be evaluated)."""
    from watchkeeper.loop._gate import evaluate_gate, gate_config

    now = time.time() if now is None else float(now)
    job = store.get_job(project, job_id)
    found = get_plan(store, project, model)
    retraining = found[1].retraining if found is not None else None
    cfg = gate_config((retraining or {}).get("gate"))
    version = version_for_job(job_id)
    champion = _champion(store, project, model)
    champion_thr = None
    if champion is not None and champion.get("operating_point"):
        champion_thr = champion["operating_point"].get("threshold")
    report: dict[str, Any]
    frame = None
    threshold = None
    try:
        sets, skipped, frame = _eval_sets(store, project, job, cfg)
        if not sets:
            raise ValueError("no evaluation set has enough labelled events: " + "; ".join(
                f"{k}: {v}" for k, v in skipped.items()))  # fmt: skip
        result = evaluate_gate(sets, cfg, champion_threshold=champion_thr)
        report = result.to_dict()
        report["summary"] = result.summary()
        report["skipped_sets"] = skipped
        threshold = float(result.thresholds["challenger"])
    except Exception as exc:  # whatever the trainer left behind, the gate fails and says why
        report = {"passed": False, "error": f"{type(exc).__name__}: {exc}"[:4000],
                  "summary": [f"gate: FAILED ({exc})"[:4000]]}  # fmt: skip
    report.update({"version": version, "job": int(job_id), "at": now,
                   "champion": None if champion is None else champion["version"]})  # fmt: skip
    _register(store, project, model, job, version, champion, threshold, frame)
    store.update_job_outputs(project, job_id, {"version": version, "gate": report})
    _merge_lineage(store, project, model, version, gate={
        "passed": report["passed"], "job": int(job_id), "at": now,
        "report": f"job {job_id} outputs.gate",
    })  # fmt: skip
    if report["passed"]:
        store.set_alias(project, model, "challenger", version, actor="watchkeeper",
                        reason=f"job {job_id} passed the gate")  # fmt: skip
    step = "gate_passed" if report["passed"] else "gate_failed"
    notify(store, project, model, step,
           f"{version} {'passed' if report['passed'] else 'failed'} the gate: "
           + "; ".join(report["summary"][1:] or report["summary"])[:1500],
           severity="info" if report["passed"] else "warning",
           details={"job": int(job_id), "version": version, "passed": report["passed"]},
           now=now, policy=policy)  # fmt: skip
    return report


def gate_report(store: Any, project: str, model: str, version: str) -> dict[str, Any] | None:
    """The stored gate report of a challenger version (None when it has none)."""
    job_id = (store.get_model_version(project, model, version).get("lineage") or {}).get("job")
    if job_id is None:
        return None
    return (store.get_job(project, int(job_id)).get("outputs") or {}).get("gate")


def shadow_report_of(
    store: Any, project: str, model: str, version: str
) -> dict[str, Any] | None:
    """The latest stored shadow report of a challenger version (None when it has none)."""
    job_id = (store.get_model_version(project, model, version).get("lineage") or {}).get("job")
    if job_id is None:
        return None
    return (store.get_job(project, int(job_id)).get("outputs") or {}).get("shadow")


def _decide_promotion(
    store: Any, project: str, model: str, state: dict[str, Any], retraining: dict[str, Any],
    why: str, *, evidence: bool, now: float, policy: Any,
) -> dict[str, Any]:  # fmt: skip
    cycle = state["cycle"]
    version = cycle["version"]
    if evidence and retraining["promotion"] == "auto":
        cycle.update(stage="done", outcome="promoted", ended_at=now)
        save_loop_state(store, project, model, state)
        move = promote(store, project, model, version, actor="watchkeeper (promotion: auto)",
                       reason=why, now=now, policy=policy)  # fmt: skip
        return {"step": "promoted", "version": version, "move": move}
    cycle.update(stage="pending", pending_since=now, why=why)
    save_loop_state(store, project, model, state)
    notify(store, project, model, "promotion_pending",
           f"{version} waits for approval ({why}): `watchkeeper model approve {model}` or "
           f"POST /v1/models/{model}/promotion:approve", severity="warning",
           details={"version": version, "job": cycle["job"]}, now=now, policy=policy)  # fmt: skip
    return {"step": "promotion_pending", "version": version}


def shadow_step(
    store: Any, project: str, model: str, *, now: float | None = None, policy: Any = None
) -> dict[str, Any] | None:
    """Update the shadow report of the challenger in shadow; decide when the evidence allows.

    The champion's events and the challenger's mirrored ones (``"<model>:shadow"``) since the
    shadow started are joined by request id. ``promote`` (the sequential test found the
    challenger more accurate) leads to the promotion; ``reject`` ends the cycle; no decision by
    ``shadow.duration`` (or an ``inconclusive`` test) asks a person.
    """
    from watchkeeper.estimation import OperatingPoint
    from watchkeeper.loop._sequential import SequentialPairedTest
    from watchkeeper.loop._shadow import shadow_report
    now = time.time() if now is None else float(now)
    state = loop_state(store, project, model)
    cycle = state.get("cycle") or {}
    if cycle.get("stage") != "shadow":
        return None
    found = get_plan(store, project, model)
    if found is None or found[1].retraining is None:
        return None
    retraining = found[1].retraining
    sh = retraining["shadow"]
    since, version = float(cycle["since"]), cycle["version"]
    timed_out = now >= since + parse_duration(sh["duration"], "shadow.duration")
    report = None
    error = None
    shadow_name = shadow_model(model)
    champion = _champion(store, project, model)
    try:
        record = store.get_model_version(project, model, version)
        op = record.get("operating_point")
        if not op or champion is None or not (champion.get("operating_point") or {}).get(
            "threshold"
        ):
            raise ValueError("the champion or the challenger has no operating point")
        if not store.has_model(project, shadow_name):
            raise ValueError(f"no shadow events yet (nothing logged to {shadow_name!r})")
        champ_w = store.read_window(project, model, start=since, end=now, embeddings=False)
        shadow_w = store.read_window(project, shadow_name, start=since, end=now,
                                     embeddings=False)  # fmt: skip
        if shadow_w.versions is not None:
            keep = np.flatnonzero(np.asarray(shadow_w.versions, dtype=object) == version)
            shadow_w = shadow_w.take(keep)
        cap = sh["max_events"]
        if cap is not None and len(shadow_w) > 50 * cap:  # bound the join; newest kept
            shadow_w = shadow_w.take(np.arange(len(shadow_w) - 50 * cap, len(shadow_w)))
        r = shadow_report(
            champ_w, shadow_w, champion_threshold=float(champion["operating_point"]["threshold"]),
            challenger_threshold=float(op["threshold"]),
            challenger_op=OperatingPoint.from_dict(op),
            expected_prevalence=champion.get("expected_prevalence"), alpha=sh["alpha"],
            sequential=SequentialPairedTest(alpha=sh["alpha"], max_events=cap),
        )  # fmt: skip
        report = r.to_dict()
        report["summary"] = r.summary()
    except (ValueError, KeyError) as exc:
        error = str(exc)
    stored = report or {"error": error, "summary": [f"shadow: no report yet ({error})"]}
    stored.update({"version": version, "since": since, "at": now})
    store.update_job_outputs(project, int(cycle["job"]), {"shadow": stored})
    decision = None if report is None else report["decision"]
    if decision in ("continue", None) and not timed_out:
        return {"step": "shadow", "decision": "continue", "report": stored}
    _merge_lineage(store, project, model, version, shadow={
        "decision": decision or "no report", "job": int(cycle["job"]), "at": now,
        "report": f"job {cycle['job']} outputs.shadow",
    })  # fmt: skip
    word = decision or "no report"
    if decision in ("continue", None):
        word = "no decision by the end of the shadow period"
    notify(store, project, model, "shadow_decided", f"{version} in shadow: {word}; "
           + "; ".join(stored["summary"])[:1500], details={"version": version,
           "decision": decision, "timed_out": timed_out}, now=now, policy=policy,
           severity="warning" if decision == "reject" else "info")  # fmt: skip
    state = loop_state(store, project, model)  # notify appended to the event log
    cycle = state["cycle"]
    if decision == "reject":
        cycle.update(stage="done", outcome="rejected in shadow", ended_at=now)
        save_loop_state(store, project, model, state)
        return {"step": "shadow_decided", "decision": "reject"}
    return _decide_promotion(
        store, project, model, state, retraining,
        "gate passed; shadow: the sequential test found it more accurate"
        if decision == "promote" else f"gate passed; shadow: {word}",
        evidence=decision == "promote", now=now, policy=policy,
    )  # fmt: skip


def _settle_jobs(
    store: Any, project: str, model: str, *, now: float, policy: Any
) -> list[dict[str, Any]]:
    """Notify the jobs that started or ended since the last step; gate the succeeded ones."""
    done: list[dict[str, Any]] = []
    state = loop_state(store, project, model)
    seen = set(state.get("seen_jobs") or [])
    started = set(state.get("started_jobs") or [])
    for job in reversed(store.list_jobs(project, model, limit=20)):
        jid = int(job["id"])
        if jid in seen:
            continue
        if job["state"] in ("running", "succeeded", "failed", "cancelled") and (
            jid not in started and job.get("started_at") is not None
        ):
            notify(store, project, model, "job_started", f"job {jid} started "
                   f"(attempt {job['attempts']})", details={"job": jid}, now=now,
                   policy=policy)  # fmt: skip
            started.add(jid)
            done.append({"step": "job_started", "job": jid})
        if job["state"] in ("queued", "running"):
            continue
        if job["state"] == "succeeded":
            ds = (job["outputs"] or {}).get("dataset") or {}
            notify(store, project, model, "job_succeeded",
                   f"job {jid} succeeded: dataset {str(ds.get('fingerprint', ''))[:12]}, "
                   f"artifact {job['outputs'].get('artifact')}", details={"job": jid},
                   now=now, policy=policy)  # fmt: skip
        else:
            notify(store, project, model, f"job_{job['state']}",
                   f"job {jid} {job['state']}: {job.get('error') or ''}"[:1500],
                   severity="warning", details={"job": jid}, now=now, policy=policy)  # fmt: skip
        seen.add(jid)
        state = loop_state(store, project, model)
        state["seen_jobs"] = sorted(seen)[-MAX_SEEN_JOBS:]
        state["started_jobs"] = sorted(started)[-MAX_SEEN_JOBS:]
        if job["state"] == "succeeded":
            state["cycle"] = {"job": jid, "version": version_for_job(jid), "stage": "gate",
                              "since": now}  # fmt: skip
        save_loop_state(store, project, model, state)
        done.append({"step": f"job_{job['state']}", "job": jid})
    state = loop_state(store, project, model)
    state["started_jobs"] = sorted(started)[-MAX_SEEN_JOBS:]
    save_loop_state(store, project, model, state)
    return done


def loop_step(
    store: Any, project: str, model: str, *, now: float | None = None,
    workdir: str | Path = ".watchkeeper/jobs", run_jobs: bool = True, policy: Any = None,
    champion_artifact: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Do what is due for one model's loop (see the module's docstring); returns the steps.

    ``run_jobs=False`` leaves a queued job to the caller (the server runs it on a thread).
    Idempotent: a step with nothing due does nothing and returns ``[]``; so does a step while
    another step of the same model holds its lease (``loop-step:<model>``).
    """
    now = time.time() if now is None else float(now)
    found = get_plan(store, project, model)
    if found is None or found[1].retraining is None:
        return []
    # one step of a model at a time, across processes (two replicas' schedulers, a cron job)
    holder, lease = f"{default_holder()}:{id(store)}", f"loop-step:{model}"
    if not store.acquire_lease(project, lease, holder, ttl=STEP_LEASE):
        return []
    try:
        return _step(store, project, model, found[1].retraining, now=now, workdir=workdir,
                     run_jobs=run_jobs, policy=policy,
                     champion_artifact=champion_artifact)  # fmt: skip
    finally:
        store.release_lease(project, lease, holder)


def _step(
    store: Any, project: str, model: str, retraining: dict[str, Any], *, now: float,
    workdir: str | Path, run_jobs: bool, policy: Any, champion_artifact: str | None,
) -> list[dict[str, Any]]:  # fmt: skip
    from watchkeeper.loop._jobs import recover_jobs, run_job
    from watchkeeper.loop._promote import check_watch
    from watchkeeper.loop._triggers import maybe_retrain

    steps: list[dict[str, Any]] = []
    watch = check_watch(store, project, model, now=now, policy=policy)
    if watch is not None:
        steps.append({"step": watch["outcome"], **watch})
    recover_jobs(store, project)
    cycle = loop_state(store, project, model).get("cycle") or {}
    if cycle.get("stage") not in ACTIVE_STAGES:
        job = maybe_retrain(store, project, model, now=now)
        if job is not None:
            fired = ", ".join(f["kind"] for f in job["trigger"]["fired"])
            notify(store, project, model, "job_queued", f"job {job['id']} queued ({fired})",
                   details={"job": job["id"], "trigger": job["trigger"]}, now=now,
                   policy=policy)  # fmt: skip
            steps.append({"step": "job_queued", "job": job["id"]})
    if run_jobs:
        queued = store.list_jobs(project, model, state="queued", limit=1)
        if queued:
            if champion_artifact is None:
                champ = _champion(store, project, model)
                uri = (champ or {}).get("artifact_uri") or ""
                champion_artifact = uri[len("file://"):] if uri.startswith("file://") else None
            run_job(store, project, queued[0]["id"], workdir=workdir,
                    champion_artifact=champion_artifact)  # fmt: skip
    steps.extend(_settle_jobs(store, project, model, now=now, policy=policy))
    state = loop_state(store, project, model)
    cycle = state.get("cycle") or {}
    if cycle.get("stage") == "gate":
        report = gate_job(store, project, model, int(cycle["job"]), now=now, policy=policy)
        steps.append({"step": "gate_passed" if report["passed"] else "gate_failed",
                      "version": cycle["version"], "job": cycle["job"]})  # fmt: skip
        state = loop_state(store, project, model)
        cycle = state["cycle"]
        if not report["passed"]:
            cycle.update(stage="done", outcome="failed the gate", ended_at=now)
            save_loop_state(store, project, model, state)
        elif retraining["shadow"]["enabled"]:
            cycle.update(stage="shadow", since=now)
            save_loop_state(store, project, model, state)
            store.register_model(project, shadow_model(model))  # where the mirror logs
            notify(store, project, model, "shadow_started",
                   f"{cycle['version']} runs in shadow for up to {retraining['shadow']['duration']}"
                   f": mirror traffic to it with watchkeeper.shadow.Shadow(..., version="
                   f"{cycle['version']!r})", details={"version": cycle["version"]}, now=now,
                   policy=policy)  # fmt: skip
            steps.append({"step": "shadow_started", "version": cycle["version"]})
        else:
            steps.append(_decide_promotion(
                store, project, model, state, retraining, "gate passed; no shadow test",
                evidence=True, now=now, policy=policy))  # fmt: skip
    elif cycle.get("stage") == "shadow":
        out = shadow_step(store, project, model, now=now, policy=policy)
        if out is not None and out.get("step") != "shadow":
            steps.append({k: v for k, v in out.items() if k != "report"})
    return steps


def approve(
    store: Any, project: str, model: str, version: str | None = None, *,
    actor: str = "watchkeeper", reason: str = "approved", now: float | None = None,
    policy: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """Complete a pending promotion (``promotion: approval``); ValueError when none is pending
    or ``version`` is not the pending one. Returns the alias move."""
    now = time.time() if now is None else float(now)
    state = loop_state(store, project, model)
    cycle = state.get("cycle") or {}
    if cycle.get("stage") != "pending":
        raise ValueError(f"model {model!r} has no promotion waiting for approval")
    if version is not None and version != cycle["version"]:
        raise ValueError(
            f"version: the pending promotion is {cycle['version']!r}, not {version!r}"
        )
    cycle.update(stage="done", outcome="promoted on approval", ended_at=now, approved_by=actor)
    save_loop_state(store, project, model, state)
    return promote(store, project, model, cycle["version"], actor=actor, reason=reason,
                   now=now, policy=policy)  # fmt: skip


def promote_version(
    store: Any, project: str, model: str, version: str, *, actor: str, reason: str,
    now: float | None = None, policy: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """Promote any registered version by hand; a pending or shadow cycle of that version ends."""
    now = time.time() if now is None else float(now)
    state = loop_state(store, project, model)
    cycle = state.get("cycle") or {}
    if cycle.get("version") == version and cycle.get("stage") in ACTIVE_STAGES:
        cycle.update(stage="done", outcome="promoted by hand", ended_at=now, approved_by=actor)
        save_loop_state(store, project, model, state)
    return promote(store, project, model, version, actor=actor, reason=reason, now=now,
                   policy=policy)  # fmt: skip


def default_holder() -> str:
    """``host:pid``: who holds a job's lease."""
    return f"{os.uname().nodename}:{os.getpid()}"


def jobs_root(db: str | None = None, jobs_dir: str | None = None) -> str:
    """Where jobs write: ``jobs_dir`` when given, else ``jobs/`` beside a SQLite file ``db``,
    else ``./.watchkeeper/jobs``.

    Examples
    --------
    >>> jobs_root("sqlite:////srv/wk/wk.db")
    '/srv/wk/jobs'
    """
    if jobs_dir:
        return str(jobs_dir)
    if db and db.startswith("sqlite:///") and len(db) > len("sqlite:///"):
        db = db[len("sqlite:///") :]
    if db and "://" not in db:
        return str(Path(db).expanduser().resolve().parent / "jobs")
    return str(Path(".watchkeeper") / "jobs")


class LoopDriver:
    """The loop as the server's scheduler runs it: :meth:`step` after each model's monitors.

    A step does the quick work (triggers, gate, shadow, promotion, watch) on the scheduler's
    thread and starts a queued job on a thread of its own, one per model (the store's lease
    makes it one per model across replicas too), so a long training never delays the monitors.
    A server that dies mid-job leaves a stale heartbeat that a later step requeues.

    Examples
    --------
    >>> from watchkeeper.store import Store
    >>> s = Store("sqlite://")
    >>> s.register_model("p", "m")
    >>> LoopDriver(s, workdir="/tmp/jobs").step("p", "m")
    []
    """

    def __init__(self, store: Any, *, workdir: str | Path, policy: Any = None) -> None:
        import threading

        self.store = store
        self.workdir = Path(workdir)
        self.policy = policy
        self._threads: dict[tuple[str, str], threading.Thread] = {}
        self._lock = threading.Lock()

    def _start_job(self, project: str, model: str, job_id: int) -> bool:
        import logging
        import threading

        from watchkeeper.loop._jobs import run_job

        key = (project, model)
        with self._lock:
            running = self._threads.get(key)
            if running is not None and running.is_alive():
                return False

            def work() -> None:
                try:
                    champ = _champion(self.store, project, model)
                    uri = (champ or {}).get("artifact_uri") or ""
                    artifact = uri[len("file://"):] if uri.startswith("file://") else None
                    run_job(self.store, project, job_id, workdir=self.workdir,
                            champion_artifact=artifact)  # fmt: skip
                except Exception:  # the job's row says what failed; the thread must not die loud
                    logging.getLogger("watchkeeper.loop").exception("job %s failed", job_id)

            thread = threading.Thread(target=work, name=f"watchkeeper-job-{job_id}", daemon=True)
            self._threads[key] = thread
            thread.start()
        return True

    def step(self, project: str, model: str, now: float | None = None) -> list[dict[str, Any]]:
        """One loop step for a model; a queued job is started on its own thread."""
        if model.endswith(SHADOW_SUFFIX):
            return []  # a challenger's mirrored stream has no loop of its own
        steps = loop_step(self.store, project, model, now=now, workdir=self.workdir,
                          run_jobs=False, policy=self.policy)  # fmt: skip
        queued = self.store.list_jobs(project, model, state="queued", limit=1)
        if queued and self._start_job(project, model, int(queued[0]["id"])):
            steps.append({"step": "job_launched", "job": int(queued[0]["id"])})
        return steps

    def join(self, timeout: float | None = None) -> None:
        """Wait for the job threads (tests and a graceful stop)."""
        for thread in list(self._threads.values()):
            thread.join(timeout)


def loop_status(store: Any, project: str, model: str, *, limit: int = 20) -> dict[str, Any]:
    """The loop of a model at a glance: the current (or last) cycle, the watch period, the
    newest ``limit`` steps (newest last), the last trigger time."""
    state = loop_state(store, project, model)
    events = list(state.get("events") or [])[-max(1, min(int(limit), 200)):]
    return {
        "cycle": state.get("cycle"),
        "watch": state.get("watch"),
        "last_trigger_at": state.get("last_trigger_at"),
        "events": events,
    }
