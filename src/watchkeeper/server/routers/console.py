"""The console's data over HTTP: payloads, pages of samples, curated datasets.

- ``PUT /v1/payloads`` (ingest scope): the body is a thumbnail or a text snippet (at most
  256 KB, ``Content-Type`` one of ``image/jpeg``, ``image/png``, ``image/webp``,
  ``text/plain``); answers its ``payload_ref`` to put on events.
- ``GET /v1/payloads/{digest}`` (read scope): a payload of the caller's project.
- ``GET /v1/models/{model}/samples`` (read scope): one page of samples, the explorer's filters
  as query parameters (see docs/console.md).
- ``POST /v1/models/{model}/datasets`` (read scope) ``{"name", "ids"}`` and
  ``GET /v1/models/{model}/datasets/{name}``: curated sets for retraining.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from pydantic import BaseModel, Field

from watchkeeper.payloads import MAX_PAYLOAD_BYTES, PayloadStore, default_root
from watchkeeper.server.deps import IngestProject, ReadProject, SettingsDep, StoreDep

router = APIRouter(prefix="/v1", tags=["console"])


def _payloads(request: Request) -> PayloadStore:
    found = getattr(request.app.state, "payloads", None)
    if found is None:
        settings = request.app.state.settings
        db = settings.db or getattr(request.app.state.store, "url", None)
        found = PayloadStore(default_root(db, settings.payload_url))
        request.app.state.payloads = found
    return found


def _known(store: Any, project: str, model: str) -> None:
    if not store.has_model(project, model):
        raise HTTPException(404, detail=f"model {model!r} not found")


@router.put("/payloads", status_code=201)
async def put_payload(request: Request, project: IngestProject) -> dict[str, str]:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > MAX_PAYLOAD_BYTES:
        raise HTTPException(413, detail=f"payload: at most {MAX_PAYLOAD_BYTES} bytes")
    data = await request.body()
    media_type = request.headers.get("content-type", "").split(";")[0].strip()
    try:
        ref = await run_in_threadpool(_payloads(request).put, project, data, media_type)
    except ValueError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    return {"payload_ref": ref}


@router.get("/payloads/{digest}")
def get_payload(request: Request, project: ReadProject, digest: str) -> Response:
    try:
        found = _payloads(request).get(project, f"sha256:{digest}")
    except ValueError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    if found is None:
        raise HTTPException(404, detail="no such payload in this project")
    return Response(found[0], media_type=found[1])


@router.get("/models/{model}/samples")
def get_samples(
    request: Request, model: str, project: ReadProject, store: StoreDep, settings: SettingsDep
) -> dict[str, Any]:
    from watchkeeper.ui._routes import parse_query

    _known(store, project, model)
    try:
        query, cursor, limit = parse_query(request.query_params)
        page = store.sample_page(
            project, model, query, cursor=cursor, limit=limit,
            default_threshold=settings.flag_threshold,
        )  # fmt: skip
    except ValueError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    out: dict[str, Any] = page.to_dict()
    return out


class DatasetIn(BaseModel):
    name: str = Field(min_length=1, max_length=128)
    ids: list[str] = Field(min_length=1, max_length=10_000)
    note: str | None = Field(default=None, max_length=4096)


@router.post("/models/{model}/datasets", status_code=201)
def post_dataset(
    model: str, body: DatasetIn, project: ReadProject, store: StoreDep
) -> dict[str, Any]:
    _known(store, project, model)
    try:
        stored: dict[str, Any] = store.create_curated_set(
            project, model, body.name, body.ids, actor=f"api:{project}", note=body.note
        )
    except ValueError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    return stored


@router.get("/models/{model}/datasets/{name}")
def get_dataset(model: str, name: str, project: ReadProject, store: StoreDep) -> dict[str, Any]:
    _known(store, project, model)
    try:
        found: dict[str, Any] | None = store.get_curated_set(project, model, name)
    except ValueError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    if found is None:
        raise HTTPException(404, detail=f"no dataset {name!r}")
    return found
