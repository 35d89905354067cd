"""The application factory: ``create_app(settings)`` builds a fresh app, nothing at import."""

from __future__ import annotations

import contextlib
import importlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from watchkeeper import __version__
from watchkeeper.server.deps import TokenCache
from watchkeeper.server.errors import validation_response
from watchkeeper.server.gate import Gate
from watchkeeper.server.ingest import IngestState
from watchkeeper.server.metrics import ServerMetrics, SystemCollector
from watchkeeper.server.settings import Settings

log = logging.getLogger("watchkeeper.server")


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
        policy = settings.sink_policy()
        after_run = None
        if settings.run_loop:
            from watchkeeper.loop._cycle import LoopDriver, jobs_root

            workdir = jobs_root(settings.db, settings.jobs_dir)
            after_run = LoopDriver(store, workdir=workdir, policy=policy).step
        scheduler = runner.Scheduler(
            store, settings.scheduler_interval, sink_policy=policy, after_run=after_run
        )
        scheduler.start()
        return getattr(scheduler, "stop", None)

    return start


def _publish_body_schemas(app: FastAPI) -> None:
    """Put the bodies that endpoints read by hand (for speed, or off the event loop) into the
    OpenAPI components, and document every error reply as it is sent."""
    from fastapi.openapi.utils import get_openapi

    from watchkeeper.server.errors import document_errors
    from watchkeeper.server.schemas import body_models

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            components = doc.setdefault("components", {}).setdefault("schemas", {})
            for model in body_models():
                schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(schema.pop("$defs", {}))
                components[model.__name__] = schema
            app.openapi_schema = document_errors(doc)
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
    >>> client.get("/metrics").status_code                 # a scrape needs a token...
    401
    >>> reader = {"Authorization": f"Bearer {store.create_token('demo', {'read'})}"}
    >>> client.get("/metrics", headers=reader).text.count("watchkeeper_events_accepted_total{")
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
    app.state.token_cache = cache = TokenCache(settings.token_cache_seconds)
    app.state.ingest = IngestState()

    @app.exception_handler(RequestValidationError)
    async def _on_validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        metrics.reject("validation")
        return validation_response(list(exc.errors()))

    @app.exception_handler(ValidationError)
    async def _on_pydantic(request: Request, exc: ValidationError) -> JSONResponse:
        metrics.reject("validation")
        return validation_response(list(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 400:
            # FastAPI's "There was an error parsing the body": the body is not JSON (or not
            # UTF-8); a 422 naming the body, as every other invalid input.
            metrics.reject("validation")
            return validation_response([{"loc": ("body",), "msg": "not valid JSON"}])
        return await http_exception_handler(request, exc)

    from watchkeeper.server.routers import ROUTERS

    for router in ROUTERS:
        app.include_router(router)

    if settings.console:
        importlib.import_module("watchkeeper.ui").install(app, settings)
    _publish_body_schemas(app)
    app.add_middleware(
        Gate,
        settings=settings,
        authenticate=lambda token: cache.lookup(store, token),
        cached=cache.cached,
        on_reject=metrics.reject,
    )
    return app
