"""The retraining loop over HTTP: jobs (list, read, queue, cancel), the gate's and the shadow
test's reports of a challenger version, promotion and its approval, the loop's state.

Reading needs the ``read`` scope; queueing, cancelling, promoting and approving need ``admin``
and are written to the audit log with the calling token's prefix as the actor. The server's
scheduler (``WATCHKEEPER_RUN_SCHEDULER``) runs the queued jobs and the rest of the loop.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from watchkeeper.server.deps import AdminProject, ReadProject, SettingsDep, StoreDep
from watchkeeper.server.errors import ErrorOut
from watchkeeper.server.ingest import ModelName
from watchkeeper.server.routers.audit import actor_of, record

router = APIRouter(prefix="/v1", tags=["loop"])

JobId = Annotated[int, Path(ge=1, le=2**62, description="The job's id.")]
VersionPath = Annotated[str, Path(min_length=1, max_length=128)]
MAX_LOG_TAIL = 64_000
JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")

_404: dict[int | str, dict[str, Any]] = {
    404: {"model": ErrorOut, "description": "No such model, version, job or report."}
}
_409: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorOut, "description": "The request conflicts with the loop's state."}
}


class RetrainIn(BaseModel):
    """``POST /v1/models/{model}/jobs``: queue a retraining with the plan's recipe."""

    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(max_length=2000)] | None = None


class PromoteIn(BaseModel):
    """``POST /v1/models/{model}/promotion``: which version becomes the champion, and why."""

    model_config = ConfigDict(extra="forbid")
    version: Annotated[str, Field(min_length=1, max_length=128)]
    reason: Annotated[str, Field(max_length=2000)] | None = None


class ApproveIn(BaseModel):
    """``POST /v1/models/{model}/promotion:approve``: the pending version (a check), and why."""

    model_config = ConfigDict(extra="forbid")
    version: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    reason: Annotated[str, Field(max_length=2000)] | None = None


def _model_or_404(store: Any, project: str, model: str) -> None:
    if not store.has_model(project, model):
        raise HTTPException(404, detail=f"model '{model}' is not registered in project '{project}'")


def _job_or_404(store: Any, project: str, model: str, job_id: int) -> dict[str, Any]:
    try:
        job: dict[str, Any] = store.get_job(project, job_id)
    except KeyError:
        job = {}
    if job.get("model") != model:
        raise HTTPException(404, detail=f"model '{model}' has no job {job_id}")
    return job


def _public(job: dict[str, Any], tail: int) -> dict[str, Any]:
    """A job as the API shows it: the log cut to its last ``tail`` characters."""
    out = dict(job)
    log = out.pop("log", "") or ""
    out["log_tail"] = log[-tail:] if tail else ""
    out["log_chars"] = len(log)
    return out


@router.get("/models/{model}/jobs", responses=_404)
async def list_jobs(
    model: ModelName,
    project: ReadProject,
    store: StoreDep,
    state: Annotated[str | None, Query(description=", ".join(JOB_STATES))] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    tail: Annotated[int, Query(ge=0, le=MAX_LOG_TAIL, description="Log characters.")] = 2000,
) -> Any:
    """The model's training jobs, newest first, each with its state and log tail."""
    if state is not None and state not in JOB_STATES:
        raise HTTPException(422, detail=f"state: expected one of {', '.join(JOB_STATES)}")

    def work() -> Any:
        _model_or_404(store, project, model)
        rows = store.list_jobs(project, model, state=state, limit=limit)
        return {"jobs": [_public(j, tail) for j in rows]}

    return await run_in_threadpool(work)


@router.get("/models/{model}/jobs/{job_id}", responses=_404)
async def get_job(
    model: ModelName,
    job_id: JobId,
    project: ReadProject,
    store: StoreDep,
    tail: Annotated[int, Query(ge=0, le=MAX_LOG_TAIL, description="Log characters.")] = 16_000,
) -> Any:
    """One job: state, trigger, outputs (dataset manifest, gate and shadow reports), log tail."""

    def work() -> Any:
        _model_or_404(store, project, model)
        return _public(_job_or_404(store, project, model, job_id), tail)

    return await run_in_threadpool(work)


@router.post("/models/{model}/jobs", status_code=201, responses={**_404, **_409})
async def queue_job(
    model: ModelName,
    project: AdminProject,
    store: StoreDep,
    settings: SettingsDep,
    request: Request,
    body: RetrainIn | None = None,
) -> Any:
    """Queue a retraining now (admin), whatever the triggers and the cooldown say; 409 while
    another job of the model is queued or running, 422 when the plan names no trainer."""
    actor = actor_of(request)
    reason = None if body is None else body.reason

    def work() -> Any:
        from watchkeeper.loop._plan import get_plan
        from watchkeeper.loop._promote import notify
        from watchkeeper.loop._triggers import maybe_retrain

        _model_or_404(store, project, model)
        found = get_plan(store, project, model)
        if found is None or found[1].retraining is None or found[1].retraining["trainer"] is None:
            raise HTTPException(
                422, detail="retraining.trainer: the model's plan names no trainer "
                "(PUT /v1/models/{model}/plan)",
            )  # fmt: skip
        active = store.list_jobs(project, model, limit=1)
        if active and active[0]["state"] in ("queued", "running"):
            raise HTTPException(
                409, detail=f"model '{model}' has job {active[0]['id']} {active[0]['state']}; "
                "one job per model at a time",
            )  # fmt: skip
        job = maybe_retrain(store, project, model, force=True)
        if job is None:
            raise HTTPException(409, detail=f"model '{model}' already has an active job")
        record(store, "job.queue", project, request, target=model,
               details={"job": job["id"], "reason": reason})  # fmt: skip
        notify(
            store, project, model, "job_queued",
            f"job {job['id']} queued by {actor}" + (f": {reason}" if reason else ""),
            details={"job": job["id"], "actor": actor}, policy=settings.sink_policy(),
        )  # fmt: skip
        return _public(job, 0)

    return await run_in_threadpool(work)


@router.post("/models/{model}/jobs/{job_id}:cancel", responses={**_404, **_409})
async def cancel_job(
    model: ModelName, job_id: JobId, project: AdminProject, store: StoreDep, request: Request
) -> Any:
    """Cancel a queued or running job (admin; the runner stops the trainer at its next
    heartbeat); 409 when the job already ended."""

    def work() -> Any:
        _model_or_404(store, project, model)
        job = _job_or_404(store, project, model, job_id)
        if job["state"] not in ("queued", "running"):
            raise HTTPException(409, detail=f"job {job_id} is {job['state']}; only a queued or "
                                "running job can be cancelled")  # fmt: skip
        job = store.cancel_job(project, job_id)
        record(store, "job.cancel", project, request, target=model, details={"job": job_id})
        return _public(job, 0)

    return await run_in_threadpool(work)


def _report(store: Any, project: str, model: str, version: str, kind: str) -> Any:
    from watchkeeper.loop._cycle import gate_report, shadow_report_of

    _model_or_404(store, project, model)
    try:
        get = gate_report if kind == "gate" else shadow_report_of
        report = get(store, project, model, version)
    except KeyError:
        raise HTTPException(404, detail=f"model '{model}' has no version '{version}'") from None
    if report is None:
        raise HTTPException(404, detail=f"version '{version}' of '{model}' has no {kind} report")
    return report


@router.get("/models/{model}/versions/{version}/gate", responses=_404)
async def get_gate(
    model: ModelName, version: VersionPath, project: ReadProject, store: StoreDep
) -> Any:
    """The stored gate report of a challenger version: rules and their outcomes, each set's
    metrics with intervals and paired tests, the thresholds, a summary."""
    return await run_in_threadpool(_report, store, project, model, version, "gate")


@router.get("/models/{model}/versions/{version}/shadow", responses=_404)
async def get_shadow(
    model: ModelName, version: VersionPath, project: ReadProject, store: StoreDep
) -> Any:
    """The latest stored shadow report of a challenger version (agreement, flag rates, band,
    score distance, latency, paired accuracy, the sequential test and its decision)."""
    return await run_in_threadpool(_report, store, project, model, version, "shadow")


@router.get("/models/{model}/loop", responses=_404)
async def get_loop(
    model: ModelName,
    project: ReadProject,
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=200, description="Newest steps shown.")] = 20,
) -> Any:
    """The model's loop: the challenger in progress (job, version, stage), the watch period
    after a promotion, and the newest steps."""

    def work() -> Any:
        from watchkeeper.loop._cycle import loop_status

        _model_or_404(store, project, model)
        return loop_status(store, project, model, limit=limit)

    return await run_in_threadpool(work)


@router.post("/models/{model}/promotion", responses=_404)
async def promote(
    model: ModelName,
    body: PromoteIn,
    project: AdminProject,
    store: StoreDep,
    settings: SettingsDep,
    request: Request,
) -> Any:
    """Make a registered version the champion (admin) and start the plan's watch period; 422
    when the version is not registered."""
    actor = actor_of(request)

    def work() -> Any:
        from watchkeeper.loop._cycle import promote_version

        _model_or_404(store, project, model)
        try:
            move = promote_version(store, project, model, body.version, actor=actor,
                                   reason=body.reason or "promoted over HTTP",
                                   policy=settings.sink_policy())  # fmt: skip
        except ValueError as exc:
            raise HTTPException(422, detail=str(exc)) from exc
        record(store, "alias.move", project, request, target=f"{model}:champion",
               details={"from": move.get("from"), "to": move.get("to"), "via": "promotion"})
        return move

    return await run_in_threadpool(work)


@router.post("/models/{model}/promotion:approve", responses={**_404, **_409})
async def approve(
    model: ModelName,
    project: AdminProject,
    store: StoreDep,
    settings: SettingsDep,
    request: Request,
    body: ApproveIn | None = None,
) -> Any:
    """Approve the pending promotion of a plan with ``promotion: approval`` (admin); 409 when
    none is pending or ``version`` is not the pending one."""
    actor = actor_of(request)

    def work() -> Any:
        from watchkeeper.loop._cycle import approve

        _model_or_404(store, project, model)
        try:
            move = approve(store, project, model, None if body is None else body.version,
                           actor=actor, reason=(body.reason if body else None) or "approved",
                           policy=settings.sink_policy())  # fmt: skip
        except ValueError as exc:
            raise HTTPException(409, detail=str(exc)) from exc
        record(store, "alias.move", project, request, target=f"{model}:champion",
               details={"from": move.get("from"), "to": move.get("to"), "via": "approval"})
        return move

    return await run_in_threadpool(work)
