"""``POST /v1/models/{model}/findings/{finding_id}:explain``: which features and segments
account for a finding, computed now and kept in the finding (a heavy route: bounded in number
and charged ``rate_limit_heavy_cost``); ``GET .../explanation`` reads the kept one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path
from fastapi.concurrency import run_in_threadpool

from watchkeeper.server.deps import ReadProject, StoreDep
from watchkeeper.server.ingest import ModelName
from watchkeeper.server.routers.monitors import _clean, _model_or_404

router = APIRouter(prefix="/v1", tags=["monitors"])

FindingId = Annotated[int, Path(ge=1, le=2**62, description="The finding's id.")]


def _finding(store: Any, project: str, model: str, finding_id: int) -> dict[str, Any]:
    _model_or_404(store, project, model)
    try:
        found: dict[str, Any] = store.get_finding(project, model, finding_id)
    except KeyError:
        raise HTTPException(404, detail=f"model '{model}' has no finding {finding_id}") from None
    return found


@router.post("/models/{model}/findings/{finding_id}:explain")
async def explain_finding(
    model: ModelName, finding_id: FindingId, project: ReadProject, store: StoreDep
) -> Any:
    """Explain the finding (domain-classifier permutation importance per feature with its null
    threshold; each segment's share of the drift or of the error change) and keep the result
    in its details. 422 when the finding has no window or the model no reference."""

    def work() -> Any:
        from watchkeeper.runner import explain

        _finding(store, project, model, finding_id)
        try:
            return {"explanation": explain(store, project, model, finding_id)}
        except ValueError as exc:
            raise HTTPException(422, detail=str(exc)) from exc

    return _clean(await run_in_threadpool(work))


@router.get("/models/{model}/findings/{finding_id}/explanation")
async def get_explanation(
    model: ModelName, finding_id: FindingId, project: ReadProject, store: StoreDep
) -> Any:
    """The explanation kept in the finding (404 when none was computed yet)."""

    def work() -> Any:
        found = _finding(store, project, model, finding_id)
        kept = (found.get("details") or {}).get("explanation")
        if kept is None:
            raise HTTPException(
                404, detail=f"finding {finding_id} has no explanation yet (POST ...:explain)"
            )
        return {"explanation": kept}

    return _clean(await run_in_threadpool(work))
