"""Models, their versions, and reads of their events (one project per token)."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from watchkeeper.server.deps import AdminProject, ReadProject, StoreDep, VersionQuery, epoch_query
from watchkeeper.server.ingest import MODEL_PATTERN, ModelName
from watchkeeper.server.schemas import OperatingPointIn
from watchkeeper.window import Window

router = APIRouter(prefix="/v1", tags=["models"])

MAX_VOLUME = 1e15
"""Largest expected volume of a window (events); the band's cost does not depend on it."""
MAX_READ_EVENTS = 100_000
"""Most events one read returns (the newest of the range asked for)."""
VersionPath = Annotated[str, Path(min_length=1, max_length=128)]


class ModelIn(BaseModel):
    """``POST /v1/models``."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(pattern=MODEL_PATTERN)]


class VersionIn(BaseModel):
    """``POST /v1/models/{model}/versions``: what is known of a model version."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, protected_namespaces=())
    version: Annotated[str, Field(min_length=1, max_length=128)]
    artifact_uri: Annotated[str, Field(max_length=2048)] | None = None
    sha256: Annotated[str, Field(pattern=r"^[0-9a-fA-F]{64}$")] | None = None
    data_fingerprint: Annotated[str, Field(max_length=1024)] | None = None
    environment: dict[str, Any] | None = None
    operating_point: OperatingPointIn | None = Field(
        None, description="threshold, tpr, fpr (and n_positive, n_negative) of the version."
    )
    expected_prevalence: Annotated[float, Field(ge=0, le=1)] | None = None
    expected_volume: Annotated[float, Field(ge=0, le=MAX_VOLUME)] | None = None
    window: Annotated[str, Field(max_length=32)] | None = Field(
        None, description="Monitoring window, e.g. '1h' or '1d'."
    )


def _model_or_404(store: Any, project: str, model: str) -> None:
    if not store.has_model(project, model):
        raise HTTPException(404, detail=f"model '{model}' is not registered in project '{project}'")


@router.post("/models", status_code=201)
async def register_model(body: ModelIn, project: AdminProject, store: StoreDep) -> dict[str, str]:
    """Register a model in the caller's project (idempotent)."""
    await run_in_threadpool(store.register_model, project, body.name)
    return {"project": project, "model": body.name}


@router.get("/models")
async def list_models(project: ReadProject, store: StoreDep) -> dict[str, list[str]]:
    """Models of the caller's project."""
    lister = getattr(store, "list_models", None)
    if lister is None:
        raise HTTPException(501, detail="this store cannot list models")
    return {"models": list(await run_in_threadpool(lister, project))}


@router.post("/models/{model}/versions", status_code=201)
async def register_version(
    model: ModelName, body: VersionIn, project: AdminProject, store: StoreDep
) -> dict[str, Any]:
    """Register (or update) a model version: artifact, digest, environment, operating point."""

    def work() -> Any:
        _model_or_404(store, project, model)
        fields = body.model_dump(exclude={"version", "operating_point"})
        if body.operating_point is not None:
            fields["operating_point"] = body.operating_point.model_dump(exclude_unset=True)
        store.register_model_version(project, model, body.version, **fields)
        return store.get_model_version(project, model, body.version)

    out: dict[str, Any] = _jsonable(await run_in_threadpool(work))
    return out


@router.get("/models/{model}/versions/{version}")
async def get_version(
    model: ModelName, version: VersionPath, project: ReadProject, store: StoreDep
) -> dict[str, Any]:
    """What is known of one model version."""

    def work() -> Any:
        _model_or_404(store, project, model)
        try:
            return store.get_model_version(project, model, version)
        except (KeyError, LookupError):
            return None

    info = await run_in_threadpool(work)
    if info is None:
        raise HTTPException(404, detail=f"model '{model}' has no version '{version}'")
    out: dict[str, Any] = _jsonable(info)
    return out


@router.get("/models/{model}/events")
async def read_events(
    model: ModelName,
    project: ReadProject,
    store: StoreDep,
    start: Annotated[float | None, epoch_query("From (epoch seconds).")] = None,
    end: Annotated[float | None, epoch_query("Until (epoch seconds, exclusive).")] = None,
    last_n: Annotated[int | None, Query(ge=1, le=MAX_READ_EVENTS)] = None,
    version: VersionQuery = None,
    embeddings: Annotated[bool, Query(description="Include embeddings.")] = False,
) -> dict[str, Any]:
    """A window of events, columnar (labels joined); NaN becomes ``null``.

    At most 100,000 events: the newest ``last_n`` (default 1,000 without a range, 100,000
    within one) of ``[start, end)``.
    """
    if last_n is None:
        last_n = 1000 if start is None and end is None else MAX_READ_EVENTS

    def work() -> Window:
        _model_or_404(store, project, model)
        window: Window = store.read_window(
            project, model, start=start, end=end, last_n=last_n, version=version
        )
        return window

    return window_to_json(await run_in_threadpool(work), embeddings=embeddings)


@router.get("/models/{model}/stats")
async def model_stats(
    model: ModelName,
    project: ReadProject,
    store: StoreDep,
    since: Annotated[float, epoch_query("From (epoch seconds).")] = 0.0,
) -> dict[str, Any]:
    """Events stored, and the store's ingest counters since ``since``."""

    def work() -> dict[str, Any]:
        _model_or_404(store, project, model)
        out = {"events": int(store.count_events(project, model))}
        out.update(store.ingest_stats(project, model, since))
        return out

    stats: dict[str, Any] = _jsonable(await run_in_threadpool(work))
    return stats


@router.get("/models/{model}/environments")
async def environments(
    model: ModelName,
    project: ReadProject,
    store: StoreDep,
    since: Annotated[float | None, epoch_query("Last seen at or after (epoch s).")] = None,
) -> dict[str, Any]:
    """Serving environments the SDK reported (Python and package versions)."""

    def work() -> Any:
        _model_or_404(store, project, model)
        return store.serving_environments(project, model, since=since)

    return {"environments": _jsonable(await run_in_threadpool(work))}


def _col(a: np.ndarray | None) -> list[Any] | None:
    if a is None:
        return None
    if a.dtype.kind == "f":
        out = a.astype(object)
        out[~np.isfinite(a)] = None
        values: list[Any] = out.tolist()
        return values
    plain: list[Any] = a.tolist()
    return plain


def window_to_json(window: Window, *, embeddings: bool = False) -> dict[str, Any]:
    """A window as the columnar JSON the events endpoints accept (``null`` for missing)."""
    out: dict[str, Any] = {
        "ids": _col(window.ids),
        "ts": _col(window.ts),
        "features": {k: _col(v) for k, v in window.features.items()},
        "scores": _col(window.scores),
        "probs": _col(window.probs),
        "predicted": _col(window.predicted),
        "labels": _col(window.labels),
        "latency_ms": _col(window.latency_ms),
        "tags": {k: _col(v) for k, v in window.tags.items()},
        "versions": _col(window.versions),
    }
    if embeddings and window.embeddings is not None:
        out["embeddings"] = _col(window.embeddings.astype(np.float64))
    return out


def _jsonable(value: Any) -> Any:
    """Numpy scalars and arrays inside store answers, as plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _col(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
