"""Liveness (``/healthz``) and readiness (``/readyz``: the database answers)."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from watchkeeper.server.deps import StoreDep

router = APIRouter(tags=["health"])
log = logging.getLogger("watchkeeper.server")


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up (answered on the event loop, so a busy thread pool cannot stall it)."""
    return {"status": "ok"}


def _probe(store: Any) -> None:
    ping = getattr(store, "ping", None)
    if ping is not None:
        ping()
    else:
        # Any query proves the database answers; an unknown token is the cheapest one.
        store.authenticate("readiness-probe")


@router.get(
    "/readyz",
    response_model=None,
    responses={503: {"description": "The database does not answer (the reason is logged)."}},
)
async def readyz(store: StoreDep) -> dict[str, str] | JSONResponse:
    """The database answers a query; 503 otherwise."""
    try:
        await run_in_threadpool(_probe, store)
    except Exception:  # any failure of the database means "not ready"
        # The reason goes to the server's log only: its text names hosts, ports and databases.
        log.exception("readiness probe failed")
        return JSONResponse(
            status_code=503,
            content={"status": "unavailable", "detail": "the database does not answer"},
        )
    return {"status": "ready"}
