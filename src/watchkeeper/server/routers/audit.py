"""The audit log over HTTP: who created or revoked tokens and changed monitor configurations."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from watchkeeper.server.deps import AdminProject, StoreDep, epoch_query
from watchkeeper.store._outliers import AUDIT_ACTIONS

router = APIRouter(prefix="/v1", tags=["audit"])


def actor_of(request: Request) -> str:
    """The caller as the audit log names it: its token's first 10 characters (what
    ``GET /v1/tokens`` shows too), never the token."""
    header = request.headers.get("authorization", "")
    token = header.split(" ", 1)[1] if " " in header else ""
    return f"token:{token[:10]}" if token else "unknown"


def record(store: Any, action: str, project: str, request: Request, **kw: Any) -> None:
    """Write one audit entry (called from the routers of the admin actions)."""
    store.audit(action, project=project, actor=actor_of(request), **kw)


@router.get("/audit")
async def list_audit(
    project: AdminProject,
    store: StoreDep,
    since: Annotated[float | None, epoch_query("Entries at or after (epoch s).")] = None,
    action: Annotated[str | None, Query(description=f"One of {', '.join(AUDIT_ACTIONS)}.")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> Any:
    """The project's audit entries, newest first (admin scope)."""
    entries = await run_in_threadpool(
        lambda: store.audit_log(project, since=since, action=action, limit=limit)
    )
    return {"audit": entries}
