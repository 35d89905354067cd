"""``POST /v1/models/{model}/labels:batch``: ground truth, joined to events by id."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from watchkeeper.server.deps import IngestProject, MetricsDep, SettingsDep, StoreDep
from watchkeeper.server.errors import validation_response
from watchkeeper.server.ingest import ModelName, ingest_labels
from watchkeeper.server.schemas import LabelsOut

router = APIRouter(prefix="/v1", tags=["labels"])

_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/LabelsBatch"}}},
    }
}


@router.post("/models/{model}/labels:batch", response_model=LabelsOut, openapi_extra=_BODY)
async def post_labels(
    model: ModelName,
    request: Request,
    project: IngestProject,
    store: StoreDep,
    metrics: MetricsDep,
    settings: SettingsDep,
) -> LabelsOut | JSONResponse:
    """Store labels ``{"ids": [...], "labels": [...]}``; they join their events whenever those
    arrive, before or after. A label sent again for the same id replaces the previous one."""
    start = time.perf_counter()
    body = await request.body()
    try:
        out: LabelsOut = await run_in_threadpool(
            ingest_labels,
            body,
            store=store,
            settings=settings,
            state=request.app.state.ingest,
            metrics=metrics,
            project=project,
            model=model,
        )
    except ValidationError as exc:
        metrics.reject("validation")
        return validation_response(list(exc.errors()))
    metrics.ingest_seconds.labels("labels").observe(time.perf_counter() - start)
    return out
