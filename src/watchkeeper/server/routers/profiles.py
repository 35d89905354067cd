"""Profiles over HTTP: a batch job (Spark, Dask) posts the profile of a day; the server checks
it against the model's reference profile and stores the findings like any window's."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query
from fastapi.concurrency import run_in_threadpool

from watchkeeper.server.deps import IngestProject, StoreDep
from watchkeeper.server.ingest import ModelName

router = APIRouter(prefix="/v1", tags=["profiles"])
MAX_FEATURES = 10_000


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _parse(body: dict[str, Any]) -> Any:
    from watchkeeper.profiles import Profile

    raw = body.get("profile")
    if not isinstance(raw, dict):
        raise HTTPException(422, detail="profile: expected an object (Profile.to_dict())")
    features = raw.get("features", {})
    if not isinstance(features, dict) or len(features) > MAX_FEATURES:
        raise HTTPException(422, detail=f"profile.features: an object of at most "
                                        f"{MAX_FEATURES} features")
    try:
        return Profile.from_dict(raw)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise HTTPException(422, detail=f"profile: not a profile ({type(exc).__name__}: "
                                        f"{exc})") from exc


@router.post("/models/{model}/profiles:check")
async def check_profile(
    model: ModelName,
    project: IngestProject,
    store: StoreDep,
    body: Annotated[dict[str, Any], Body(description=(
        '{"profile": Profile.to_dict(), "start": epoch s, "end": epoch s, '
        '"partition": "2026-11-02"}'))],
    dry_run: Annotated[bool, Query(description="Check, store nothing.")] = False,
) -> Any:
    """Data quality and feature drift of a posted profile against the reference; the findings
    are stored (unless ``dry_run``) and returned."""

    def work() -> Any:
        from watchkeeper.checks.batch import check_profile as check
        from watchkeeper.profiles import Profile, profile

        if not store.has_model(project, model):
            raise HTTPException(
                404, detail=f"model '{model}' is not registered in project '{project}'")
        current = _parse(body)
        start, end = body.get("start"), body.get("end")
        for name, v in (("start", start), ("end", end)):
            if v is not None and (not isinstance(v, int | float) or not math.isfinite(v)):
                raise HTTPException(422, detail=f"{name}: expected epoch seconds")
        stored = store.get_reference_profile(project, model)
        try:
            reference = (Profile.from_dict(stored) if stored is not None
                         else profile(store.get_reference(project, model)))
        except (KeyError, LookupError) as exc:
            raise HTTPException(404, detail=f"model '{model}' has no reference") from exc
        config = store.get_monitor_config(project, model) or {}
        checks = dict(config.get("checks") or {})
        options = {k: checks.get(k) or {} for k in ("data_quality", "feature_drift")}
        try:
            found = check(reference, current, options, start=start, end=end)
        except ValueError as exc:
            raise HTTPException(422, detail=str(exc)) from exc
        rows = [f.to_dict() for f in found]
        partition = body.get("partition")
        if partition is not None:
            rows = [{**r, "details": {**r["details"], "partition": str(partition)[:200]}}
                    for r in rows]
        if not dry_run and rows:
            store.add_findings(project, model, rows)
        return {"rows": current.n, "stored": 0 if dry_run else len(rows), "findings": rows}

    return _clean(await run_in_threadpool(work))
