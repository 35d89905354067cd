"""Training jobs: build the dataset, run the trainer in a subprocess, record what happened.

A trainer is either a Python callable named ``"package.module:function"``, called as
``train(data) -> artifact path`` where ``data`` is a dict of paths (``train``, ``eval``,
``manifest``, ``output``, ``champion``), or a command whose arguments may hold the placeholders
``{train}``, ``{eval}``, ``{manifest}``, ``{output}``, ``{champion}`` and ``{job}``; a command's
artifact is ``{output}`` (or the last line it prints starting with ``artifact:``). Both run in a
subprocess, in their own process group, with the plan's timeout; the runner renews the job's
heartbeat and log every ``HEARTBEAT`` seconds and stops the trainer when the job is cancelled.

With ``strategy: awe`` in the job's spec, the trainer's artifact then joins the registry
and the job's challenger is the accuracy-weighted ensemble of recent versions
(:func:`watchkeeper.loop._ensemble.awe_after_training`).

One job per model at a time: the store refuses a second active job, and the runner holds the
lease ``retrain:<model>`` while the trainer runs. When the runner itself dies (a server killed
with ``kill -9``), the job's heartbeat stops; :func:`recover_jobs` requeues it once (resumed from
the start: a trainer must be restartable) and marks it failed after that, so it is never lost.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from watchkeeper.checks._config import parse_duration

HEARTBEAT = 2.0
"""Seconds between two heartbeats of a running job."""
STALE_AFTER = 30.0
"""A running job whose heartbeat is older than this has lost its runner."""
MAX_ATTEMPTS = 2

_CALLABLE_RUNNER = """
import importlib, json, sys
module, _, name = sys.argv[1].partition(":")
data = json.loads(sys.argv[2])
out = getattr(importlib.import_module(module), name)(data)
print("artifact:" + str(out), flush=True)
"""


def _command(trainer: Mapping[str, Any], paths: Mapping[str, str]) -> list[str]:
    if trainer.get("callable"):
        return [sys.executable, "-c", _CALLABLE_RUNNER, trainer["callable"], json.dumps(paths)]
    out = []
    for arg in trainer["command"]:
        try:
            out.append(arg.format(**paths))
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"trainer.command: unknown placeholder in {arg!r}: {exc}") from None
    return out


def _kill(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def run_job(
    store: Any,
    project: str,
    job_id: int,
    *,
    workdir: str | Path,
    holder: str | None = None,
    champion_artifact: str | None = None,
    generator: Any = None,
) -> dict[str, Any]:
    """Run one queued job to its end and return it as stored.

    The job's ``spec`` holds the plan's ``dataset`` and ``trainer`` sections. The dataset is
    written to ``workdir/job-<id>/data``, the trainer's output to ``workdir/job-<id>/output``.
    """
    from watchkeeper.loop._dataset import build_dataset
    from watchkeeper.loop._plan import trainer_config

    holder = holder or f"{os.uname().nodename}:{os.getpid()}"
    job = store.get_job(project, job_id)
    model = job["model"]
    lease = f"retrain:{model}"
    if not store.acquire_lease(project, lease, holder, ttl=STALE_AFTER):
        return dict(job)
    try:
        if not store.claim_job(project, job_id, holder):
            return dict(store.get_job(project, job_id))
        spec = job["spec"]
        base = Path(workdir) / f"job-{job_id}"
        log: list[str] = [f"[watchkeeper] job {job_id} for {model}, attempt {job['attempts'] + 1}"]
        try:
            trainer = trainer_config(spec.get("trainer"))
            if trainer is None:
                raise ValueError("retraining.trainer: the plan names no trainer")
            manifest = build_dataset(
                store, project, model, base / "data", spec.get("dataset"), generator=generator,
                now=spec.get("now"),
            )  # fmt: skip
        except (ValueError, OSError, ImportError) as exc:
            return dict(
                store.finish_job(project, job_id, "failed", error=str(exc), log="\n".join(log))
            )
        log.append(
            f"[watchkeeper] dataset {manifest.fingerprint[:12]}: "
            f"train {manifest.files['train']['rows']} rows, eval {manifest.files['eval']['rows']}"
        )
        output = base / "output"
        output.mkdir(parents=True, exist_ok=True)
        paths = {
            "train": manifest.train, "eval": manifest.eval,
            "manifest": str(base / "data" / "manifest.json"), "output": str(output),
            "champion": champion_artifact or "", "job": str(job_id),
        }  # fmt: skip
        try:
            cmd = _command(trainer, paths)
        except ValueError as exc:
            return dict(
                store.finish_job(project, job_id, "failed", error=str(exc), log="\n".join(log))
            )
        timeout = parse_duration(trainer["timeout"], "trainer.timeout")
        logfile = base / "trainer.log"
        env = {**os.environ, **trainer.get("env", {})}
        with logfile.open("wb") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env,
                cwd=str(base),
            )  # fmt: skip
            start = time.monotonic()
            state, error = "succeeded", None
            while True:
                try:
                    proc.wait(timeout=HEARTBEAT)
                    break
                except subprocess.TimeoutExpired:
                    pass
                text = "\n".join(log) + "\n" + logfile.read_text(errors="replace")[-32_000:]
                store.acquire_lease(project, lease, holder, ttl=STALE_AFTER)
                if store.heartbeat_job(project, job_id, holder, text) == "cancelled":
                    _kill(proc)
                    state, error = "cancelled", "cancelled"
                    break
                if time.monotonic() - start > timeout:
                    _kill(proc)
                    state, error = "failed", f"timeout after {timeout:.0f} s"
                    break
        text = logfile.read_text(errors="replace")
        full = "\n".join(log) + "\n" + text
        if state == "succeeded" and proc.returncode != 0:
            state, error = "failed", f"the trainer exited with code {proc.returncode}"
        artifact = str(output)
        for line in reversed(text.splitlines()):
            if line.startswith("artifact:"):
                artifact = line[len("artifact:") :].strip()
                break
        outputs = {
            "artifact": artifact, "dataset": manifest.to_dict(), "workdir": str(base),
            "seconds": round(time.monotonic() - start, 3),
        }  # fmt: skip
        if state == "cancelled":
            store.heartbeat_job(project, job_id, holder, full)
            return dict(store.get_job(project, job_id))
        if state == "succeeded" and spec.get("strategy") == "awe":
            # AWE: the new model joins the registry and the ensemble of recent versions,
            # weighted on the latest labelled chunk, is the job's challenger.
            from watchkeeper.loop._ensemble import awe_after_training

            try:
                outputs["ensemble"] = awe_after_training(
                    store, project, model, job_id, artifact=artifact, eval_path=manifest.eval,
                    config=spec.get("ensemble") or {}, out_dir=output / "ensemble",
                    fingerprint=manifest.fingerprint,
                )  # fmt: skip
                outputs["artifact"] = str(output / "ensemble" / "ensemble.json")
            except (ValueError, OSError, ImportError, KeyError) as exc:
                state, error = "failed", f"retraining.ensemble: {exc}"
        return dict(
            store.finish_job(project, job_id, state, outputs=outputs, log=full, error=error)
        )
    finally:
        store.release_lease(project, lease, holder)


def recover_jobs(
    store: Any, project: str, *, stale_after: float = STALE_AFTER
) -> list[dict[str, Any]]:
    """Jobs whose runner died: requeued (first time) or failed (after ``MAX_ATTEMPTS``)."""
    out = []
    for job in store.stale_jobs(project, stale_after):
        reason = (
            f"the runner {job['holder']} stopped (no heartbeat for more than {stale_after:.0f} s)"
        )
        if job["attempts"] < MAX_ATTEMPTS:
            out.append(store.requeue_job(project, job["id"], reason + "; requeued"))
        else:
            out.append(store.finish_job(project, job["id"], "failed", error=reason))
    return out


def run_queued(
    store: Any, project: str, *, workdir: str | Path, **kwargs: Any
) -> list[dict[str, Any]]:
    """Recover stale jobs, then run every queued job of the project (oldest first)."""
    recover_jobs(store, project)
    done = []
    for job in reversed(store.list_jobs(project, state="queued")):
        done.append(run_job(store, project, job["id"], workdir=workdir, **kwargs))
    return done
