"""The maintenance plan over HTTP: a model's monitors and retraining policy, read and replaced."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from watchkeeper.server.deps import AdminProject, ReadProject, SettingsDep, StoreDep
from watchkeeper.server.ingest import ModelName
from watchkeeper.server.routers.audit import actor_of
from watchkeeper.server.routers.monitors import _clean, _model_or_404

router = APIRouter(prefix="/v1", tags=["loop"])


@router.get("/models/{model}/plan")
async def get_plan(model: ModelName, project: ReadProject, store: StoreDep) -> Any:
    """The model's maintenance plan (``"source": "stored" | "default"``)."""

    def work() -> Any:
        from watchkeeper.loop._plan import get_plan

        _model_or_404(store, project, model)
        found = get_plan(store, project, model)
        if found is None:
            raise HTTPException(
                404, detail=f"model '{model}' has no monitor configuration and no reference"
            )
        return {"source": found[0], "plan": found[1].to_dict()}

    return _clean(await run_in_threadpool(work))


@router.put("/models/{model}/plan")
async def put_plan(
    model: ModelName,
    request: Request,
    project: AdminProject,
    store: StoreDep,
    settings: SettingsDep,
    plan: Annotated[dict[str, Any], Body(description="A maintenance plan as JSON (docs/loop.md).")],
) -> Any:
    """Replace the model's plan; 422 names the offending field and nothing is stored."""

    def work() -> Any:
        from watchkeeper.loop import MaintenancePlan
        from watchkeeper.loop._plan import get_plan, put_plan

        _model_or_404(store, project, model)
        try:
            policy = settings.sink_policy()
            p = MaintenancePlan.from_dict(plan).validate(policy)
        except (ValueError, TypeError) as exc:
            raise HTTPException(422, detail=str(exc)) from exc
        found = get_plan(store, project, model)
        put_plan(store, project, model, p, policy)
        store.audit_config_change(
            "plan.set", project, model, found and found[1].to_dict(), p.to_dict(),
            actor=actor_of(request),
        )
        return {"source": "stored", "plan": p.to_dict()}

    return _clean(await run_in_threadpool(work))
