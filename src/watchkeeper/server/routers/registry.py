"""The model registry over HTTP: versions with their aliases, alias moves (admin), rollback,
history, artifact verification and lineage, all under ``/v1/models/{model}/...``.

The actor of a move is the calling token (``token:<its first 10 characters>``, the prefix the
store keeps), so the audit trail says which token moved an alias. Nothing here takes a URL or a
path from the caller: the artifact store is the server's (``WATCHKEEPER_ARTIFACTS``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from watchkeeper.server.deps import AdminProject, ReadProject, SettingsDep, StoreDep
from watchkeeper.server.errors import ErrorOut
from watchkeeper.server.ingest import ModelName

router = APIRouter(prefix="/v1", tags=["registry"])

ALIAS_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
AliasPath = Annotated[str, Path(pattern=ALIAS_PATTERN)]
VersionPath = Annotated[str, Path(min_length=1, max_length=128)]
MAX_HISTORY = 1_000


class AliasIn(BaseModel):
    """``PUT /v1/models/{model}/aliases/{alias}``: where the alias goes, and why."""

    model_config = ConfigDict(extra="forbid")
    version: Annotated[str, Field(min_length=1, max_length=128)]
    reason: Annotated[str, Field(max_length=2000)] | None = None


class RollbackIn(BaseModel):
    """``POST /v1/models/{model}/aliases/{alias}/rollback``: why."""

    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, Field(max_length=2000)] | None = None


def _actor(request: Request) -> str:
    # the dependency already authenticated this header; its prefix names the token
    token = request.headers.get("authorization", "").partition(" ")[2].strip()
    return f"token:{token[:10]}"


def _model_or_404(store: Any, project: str, model: str) -> None:
    if not store.has_model(project, model):
        raise HTTPException(404, detail=f"model '{model}' is not registered in project '{project}'")


def _version_or_404(store: Any, project: str, model: str, version: str) -> dict[str, Any]:
    try:
        record: dict[str, Any] = store.get_model_version(project, model, version)
    except KeyError:
        raise HTTPException(404, detail=f"model '{model}' has no version '{version}'") from None
    return record


@router.get("/models/{model}/versions")
async def list_versions(model: ModelName, project: ReadProject, store: StoreDep) -> dict[str, Any]:
    """Every version of the model (oldest first) with its aliases, and the aliases."""

    def work() -> dict[str, Any]:
        _model_or_404(store, project, model)
        aliases = store.list_aliases(project, model)
        versions = store.list_model_versions(project, model)
        for v in versions:
            v["aliases"] = sorted(a for a, target in aliases.items() if target == v["version"])
        return {"model": model, "aliases": aliases, "versions": versions}

    return await run_in_threadpool(work)


@router.get("/models/{model}/aliases")
async def list_aliases(model: ModelName, project: ReadProject, store: StoreDep) -> dict[str, Any]:
    """The model's aliases and the version each points at."""

    def work() -> dict[str, Any]:
        _model_or_404(store, project, model)
        return {"aliases": store.list_aliases(project, model)}

    return await run_in_threadpool(work)


@router.put("/models/{model}/aliases/{alias}")
async def set_alias(
    model: ModelName,
    alias: AliasPath,
    body: AliasIn,
    project: AdminProject,
    store: StoreDep,
    request: Request,
) -> dict[str, Any]:
    """Move the alias to a registered version (admin); the move is recorded with the calling
    token and the reason. 422 when the version is not registered."""
    actor = _actor(request)

    def work() -> dict[str, Any]:
        _model_or_404(store, project, model)
        try:
            move: dict[str, Any] = store.set_alias(
                project, model, alias, body.version, actor=actor, reason=body.reason
            )
        except ValueError as exc:
            raise HTTPException(422, detail=str(exc)) from exc
        return move

    return await run_in_threadpool(work)


@router.post(
    "/models/{model}/aliases/{alias}/rollback",
    responses={409: {"model": ErrorOut, "description": "The alias has no earlier version."}},
)
async def rollback_alias(
    model: ModelName,
    alias: AliasPath,
    project: AdminProject,
    store: StoreDep,
    request: Request,
    body: RollbackIn | None = None,
) -> dict[str, Any]:
    """Move the alias back to where it pointed before its newest move not yet undone (admin);
    409 when there is nothing to roll back to."""
    actor = _actor(request)
    reason = None if body is None else body.reason

    def work() -> dict[str, Any]:
        _model_or_404(store, project, model)
        try:
            move: dict[str, Any] = store.rollback_alias(
                project, model, alias, actor=actor, reason=reason
            )
        except ValueError as exc:
            raise HTTPException(409, detail=str(exc)) from exc
        return move

    return await run_in_threadpool(work)


@router.get("/models/{model}/aliases/{alias}/history")
async def alias_history(
    model: ModelName,
    alias: AliasPath,
    project: ReadProject,
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY)] = 100,
) -> dict[str, Any]:
    """The alias's moves, oldest first (the newest ``limit``)."""

    def work() -> dict[str, Any]:
        _model_or_404(store, project, model)
        return {"moves": store.alias_history(project, model, alias, limit=limit)}

    return await run_in_threadpool(work)


@router.post("/models/{model}/versions/{version}/verify")
async def verify_version(
    model: ModelName,
    version: VersionPath,
    project: AdminProject,
    store: StoreDep,
    settings: SettingsDep,
) -> dict[str, Any]:
    """Re-read the version's artifact from the server's artifact store and compare every
    SHA-256 (admin: it reads the whole artifact). A mismatch is stored as an integrity finding
    and a critical alert; the answer says what differs."""

    def work() -> dict[str, Any]:
        from watchkeeper import registry

        _model_or_404(store, project, model)
        _version_or_404(store, project, model, version)
        try:
            result = registry.verify(store, project, model, version, artifacts=settings.artifacts)
        except ValueError as exc:
            raise HTTPException(422, detail=str(exc)) from exc
        return result.to_dict()

    return await run_in_threadpool(work)


@router.get("/models/{model}/versions/{version}/lineage")
async def lineage(
    model: ModelName, version: VersionPath, project: ReadProject, store: StoreDep
) -> dict[str, Any]:
    """The version's lineage and its parents' (newest first)."""

    def work() -> dict[str, Any]:
        from watchkeeper import registry

        _model_or_404(store, project, model)
        _version_or_404(store, project, model, version)
        chain = registry.lineage_chain(store, project, model, version)
        return {
            "chain": [
                {"version": r["version"], "sha256": r["sha256"], "lineage": r["lineage"]}
                for r in chain
            ]
        }

    return await run_in_threadpool(work)
