"""The application factory: ``create_app(settings)`` builds a fresh app, nothing at import."""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchkeeper import __version__
from watchkeeper.server.deps import TokenCache
from watchkeeper.server.errors import validation_response
from watchkeeper.server.ingest import IngestState
from watchkeeper.server.metrics import ServerMetrics, SystemCollector
from watchkeeper.server.settings import Settings

log = logging.getLogger("watchkeeper.server")


class BodyLimit:
    """ASGI middleware: a request body larger than ``limit`` bytes gets 413 before it is read
    into memory (by its Content-Length, or while streaming when it has none)."""

    def __init__(self, app: ASGIApp, limit: int, on_reject: Callable[[], None]) -> None:
        self.app = app
        self.limit = limit
        self.on_reject = on_reject

    async def _too_large(self, send: Send, size: str) -> None:
        self.on_reject()
        body = json.dumps(
            {
                "detail": f"request body of {size} bytes exceeds the limit of {self.limit} bytes "
                "(WATCHKEEPER_MAX_BODY_BYTES); send smaller batches"
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in {"GET", "HEAD", "OPTIONS"}:
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._too_large(send, length.decode())
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._too_large(send, f"more than {size}")
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _open_store(settings: Settings) -> Any:
    from watchkeeper.store import Store

    return Store(settings.db)


def _register_monitor_collector(
    registry: CollectorRegistry, store: Any, settings: Settings
) -> None:
    try:
        runner = importlib.import_module("watchkeeper.runner")
    except ImportError:
        return
    collector = getattr(runner, "MonitorCollector", None)
    if collector is not None:
        registry.register(collector(store, settings.metrics_max_models))


def _scheduler_hook(settings: Settings) -> Callable[[Any], Callable[[], None] | None]:
    def start(store: Any) -> Callable[[], None] | None:
        try:
            runner = importlib.import_module("watchkeeper.runner")
        except ImportError:
            log.warning("run_scheduler is set but watchkeeper.runner is not available")
            return None
        scheduler = runner.Scheduler(store, settings.scheduler_interval)
        scheduler.start()
        return getattr(scheduler, "stop", None)

    return start


def _publish_body_schemas(app: FastAPI) -> None:
    """Put the bodies that endpoints read by hand (for speed) into the OpenAPI components."""
    from fastapi.openapi.utils import get_openapi

    from watchkeeper.server.schemas import BODY_MODELS

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = doc.setdefault("components", {}).setdefault("schemas", {})
            for model in BODY_MODELS:
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(schema.pop("$defs", {}))
                components[model.__name__] = schema
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(
    settings: Settings | None = None,
    *,
    store: Any = None,
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    """Build the ingestion service.

    Parameters
    ----------
    settings
        What to serve and how; default ``Settings.from_env()``.
    store
        A :class:`~watchkeeper.store.Store` to use; default one opened on ``settings.db``
        (and closed with the app).
    registry
        Where the Prometheus collectors go; default a new ``CollectorRegistry``.

    Returns
    -------
    FastAPI
        With every router of ``watchkeeper.server.routers.ROUTERS`` included. Its lifespan runs
        ``settings.startup_hooks`` (each given the store; each may return a stop callable) and,
        with ``settings.run_scheduler``, starts ``watchkeeper.runner.Scheduler(store, interval)``.

    Examples
    --------
    >>> from fastapi.testclient import TestClient
    >>> from watchkeeper.store import Store
    >>> store = Store("sqlite://")
    >>> store.create_project("demo")
    >>> store.register_model("demo", "fraud")
    >>> token = store.create_token("demo", {"ingest"})
    >>> client = TestClient(create_app(Settings(system_metrics=False), store=store))
    >>> client.post("/v1/models/fraud/events:batch", json={"events": [{"id": "a", "score": 0.9}]},
    ...             headers={"Authorization": f"Bearer {token}"}).json()
    {'accepted': 1, 'duplicates': 0}
    >>> client.get("/metrics").text.count("watchkeeper_events_accepted_total{")
    1
    """
    settings = settings if settings is not None else Settings.from_env()
    settings.validate()
    owns_store = store is None
    if store is None:
        store = _open_store(settings)
    registry = registry if registry is not None else CollectorRegistry()
    metrics = ServerMetrics(registry, settings.metrics_max_models)
    if settings.system_metrics:
        registry.register(SystemCollector())
    if settings.monitor_metrics:
        _register_monitor_collector(registry, store, settings)

    hooks = list(settings.startup_hooks)
    if settings.run_scheduler:
        hooks.append(_scheduler_hook(settings))

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        stops: list[Callable[[], None]] = []
        for hook in hooks:
            stop = hook(store)
            if stop is not None:
                stops.append(stop)
        try:
            yield
        finally:
            for stop in reversed(stops):
                try:
                    stop()
                except Exception:  # one failing hook must not keep the others from stopping
                    log.exception("stopping a startup hook failed")
            if owns_store and hasattr(store, "close"):
                store.close()

    app = FastAPI(
        title="Watchkeeper",
        version=__version__,
        description="Ingestion and query API of Watchkeeper. Authenticate with "
        "'Authorization: Bearer <token>' (see `watchkeeper token create`).",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.metrics = metrics
    app.state.registry = registry
    app.state.token_cache = TokenCache()
    app.state.ingest = IngestState()

    @app.exception_handler(RequestValidationError)
    async def _on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.reject("validation")
        return validation_response(list(exc.errors()))

    @app.exception_handler(ValidationError)
    async def _on_pydantic(request: Request, exc: ValidationError) -> JSONResponse:
        metrics.reject("validation")
        return validation_response(list(exc.errors()))

    from watchkeeper.server.routers import ROUTERS

    for router in ROUTERS:
        app.include_router(router)

    if settings.console:
        importlib.import_module("watchkeeper.ui").install(app, settings)
    _publish_body_schemas(app)
    app.add_middleware(
        BodyLimit,
        limit=settings.max_body_bytes,
        on_reject=lambda: metrics.reject("too_large"),
    )
    return app
