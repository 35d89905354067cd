"""``POST /v1/models/{model}/events:batch``: a batch of predictions, rows or columns."""

from __future__ import annotations

import time

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from watchkeeper.server.deps import IngestProject, MetricsDep, SettingsDep, StoreDep
from watchkeeper.server.errors import validation_response
from watchkeeper.server.ingest import ModelName, ingest_events
from watchkeeper.server.schemas import IngestOut

router = APIRouter(prefix="/v1", tags=["events"])

_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EventsBatch"}}},
    }
}


@router.post(
    "/models/{model}/events:batch",
    response_model=IngestOut,
    openapi_extra=_BODY,
    responses={
        401: {"description": "No or invalid token"},
        403: {"description": "Token lacks the ingest scope"},
        404: {"description": "Unknown model (and auto-registration off)"},
        413: {"description": "Body or batch too large"},
        422: {"description": "Invalid batch; 'detail' names the field and index"},
    },
)
async def post_events(
    model: ModelName,
    request: Request,
    project: IngestProject,
    store: StoreDep,
    metrics: MetricsDep,
    settings: SettingsDep,
) -> IngestOut | JSONResponse:
    """Store a batch of events; the reply comes after the batch is committed.

    Re-sending a batch is safe: events are idempotent by (model, id), and the reply counts the
    repeats as ``duplicates``. Any invalid event rejects the whole batch (nothing is stored).
    """
    start = time.perf_counter()
    body = await request.body()
    try:
        out: IngestOut = await run_in_threadpool(
            ingest_events,
            body,
            store=store,
            settings=settings,
            state=request.app.state.ingest,
            metrics=metrics,
            project=project,
            model=model,
        )
    except ValidationError as exc:
        metrics.reject("validation", _count(body))
        return validation_response(list(exc.errors()))
    metrics.ingest_seconds.labels("events").observe(time.perf_counter() - start)
    return out


def _count(body: bytes) -> int:
    # A rejected body's event count, for the rejected-events counter: cheap, best effort.
    return max(body.count(b'"id"'), 1)
