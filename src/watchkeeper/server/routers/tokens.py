"""``POST /v1/tokens``: an admin mints a token for its own project."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from watchkeeper.server.deps import SCOPES, AdminProject, StoreDep

router = APIRouter(prefix="/v1", tags=["tokens"])

Scope = Annotated[str, Field(pattern="^(" + "|".join(SCOPES) + ")$")]


class TokenIn(BaseModel):
    """Scopes of the new token."""

    model_config = ConfigDict(extra="forbid")
    scopes: Annotated[list[Scope], Field(min_length=1)]


@router.post("/tokens", status_code=201)
async def create_token(body: TokenIn, project: AdminProject, store: StoreDep) -> dict[str, object]:
    """A new token of the caller's project; the plain token is shown only in this reply."""
    token = await run_in_threadpool(store.create_token, project, set(body.scopes))
    return {"project": project, "scopes": sorted(set(body.scopes)), "token": token}
