"""Outliers over HTTP: a model's scored events with the smallest conformal p-values."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from fastapi.concurrency import run_in_threadpool

from watchkeeper.server.deps import ReadProject, StoreDep, epoch_query
from watchkeeper.server.ingest import ModelName
from watchkeeper.store._outliers import MAX_OUTLIER_ROWS

router = APIRouter(prefix="/v1", tags=["outliers"])


@router.get("/models/{model}/outliers")
async def list_outliers(
    model: ModelName,
    project: ReadProject,
    store: StoreDep,
    max_p_value: Annotated[float, Query(gt=0, le=1, description="Largest p-value.")] = 0.01,
    start: Annotated[float | None, epoch_query("Events at or after (epoch s).")] = None,
    end: Annotated[float | None, epoch_query("Events before (epoch s).")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_OUTLIER_ROWS)] = 100,
) -> Any:
    """Scored events with ``p_value <= max_p_value``, most unusual first (the runner scores
    every event of a closed window against the version's reference)."""

    def work() -> Any:
        if not store.has_model(project, model):
            raise HTTPException(
                404, detail=f"model '{model}' is not registered in project '{project}'"
            )
        rows = store.outlier_events(
            project, model, max_p_value=max_p_value, start=start, end=end, limit=limit
        )
        return {"outliers": rows}

    return await run_in_threadpool(work)
