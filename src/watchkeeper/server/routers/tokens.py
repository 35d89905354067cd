"""``POST /v1/tokens`` and ``POST /v1/tokens:revoke``: an admin mints or revokes tokens of its
own project."""

from __future__ import annotations

import time
from functools import partial
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from watchkeeper.server.deps import SCOPES, AdminProject, StoreDep
from watchkeeper.server.routers.audit import record

router = APIRouter(prefix="/v1", tags=["tokens"])

Scope = Annotated[str, Field(pattern="^(" + "|".join(SCOPES) + ")$")]


MAX_LIFETIME = 10 * 365 * 86400


class TokenIn(BaseModel):
    """Scopes of the new token, and its lifetime."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    scopes: Annotated[list[Scope], Field(min_length=1, max_length=3)]
    expires_in: Annotated[float, Field(ge=60, le=MAX_LIFETIME)] | None = Field(
        None, description="Seconds until the token stops working (default: until revoked)."
    )


@router.post("/tokens", status_code=201)
async def create_token(
    body: TokenIn, request: Request, project: AdminProject, store: StoreDep
) -> dict[str, object]:
    """A new token of the caller's project; the plain token is shown only in this reply."""
    expires_at = None if body.expires_in is None else time.time() + body.expires_in
    token = await run_in_threadpool(
        partial(store.create_token, project, set(body.scopes), expires_at=expires_at)
    )
    await run_in_threadpool(
        partial(
            record, store, "token.create", project, request,
            target=f"token:{token[:10]}",
            details={"scopes": sorted(set(body.scopes)), "expires_at": expires_at},
        )
    )
    return {
        "project": project,
        "scopes": sorted(set(body.scopes)),
        "token": token,
        "expires_at": expires_at,
    }


@router.get("/tokens")
async def list_tokens(project: AdminProject, store: StoreDep) -> dict[str, object]:
    """The project's tokens (their first 10 characters, never the token): scopes, created,
    expires, last used (written at most once a minute), revoked."""
    return {"tokens": await run_in_threadpool(store.list_tokens, project)}


class RevokeIn(BaseModel):
    """The token to revoke."""

    model_config = ConfigDict(extra="forbid")
    token: Annotated[str, Field(min_length=1, max_length=512)]


@router.post("/tokens:revoke")
async def revoke_token(
    body: RevokeIn, request: Request, project: AdminProject, store: StoreDep
) -> dict[str, object]:
    """Revoke a token of the caller's project (404 for any other token, revoked or unknown)."""

    def work() -> bool:
        found = store.authenticate(body.token)
        if found is None or found[0] != project:
            return False
        done = bool(store.revoke_token(body.token))
        if done:
            record(store, "token.revoke", project, request, target=f"token:{body.token[:10]}")
        return done

    if not await run_in_threadpool(work):
        raise HTTPException(404, detail="no active token of this project matches")
    request.app.state.token_cache.forget(body.token)
    return {"project": project, "revoked": True}
