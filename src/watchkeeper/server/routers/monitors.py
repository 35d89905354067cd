"""Monitors over HTTP: a model's monitor configuration, its findings, metric values, alerts, and
running its monitors now."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool

from watchkeeper.server.deps import (
    AdminProject,
    ReadProject,
    SettingsDep,
    StoreDep,
    epoch_query,
)
from watchkeeper.server.ingest import ModelName
from watchkeeper.server.routers.audit import actor_of

router = APIRouter(prefix="/v1", tags=["monitors"])


def _model_or_404(store: Any, project: str, model: str) -> None:
    if not store.has_model(project, model):
        raise HTTPException(404, detail=f"model '{model}' is not registered in project '{project}'")


def _clean(value: Any) -> Any:
    """NaN and infinities out of a JSON answer."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@router.get("/models/{model}/monitors")
async def get_monitor_config(model: ModelName, project: ReadProject, store: StoreDep) -> Any:
    """The model's monitor configuration: the stored one, else the defaults from its reference
    (``"source": "stored" | "default"``)."""

    def work() -> Any:
        from watchkeeper.runner import load_context

        _model_or_404(store, project, model)
        stored = store.get_monitor_config(project, model)
        if stored is not None:
            return {"source": "stored", "config": stored}
        ctx = load_context(store, project, model)
        if ctx is None:
            raise HTTPException(
                404, detail=f"model '{model}' has no monitor configuration and no reference"
            )
        return {"source": "default", "config": ctx.config.to_dict()}

    return _clean(await run_in_threadpool(work))


@router.put("/models/{model}/monitors")
async def put_monitor_config(
    model: ModelName,
    request: Request,
    project: AdminProject,
    store: StoreDep,
    settings: SettingsDep,
    config: Annotated[dict[str, Any], Body(description="A MonitorConfig as JSON (see docs).")],
) -> Any:
    """Replace the model's monitor configuration; 422 names the offending field."""

    def work() -> Any:
        from watchkeeper.alerts import validate_alerting
        from watchkeeper.checks import MonitorConfig

        _model_or_404(store, project, model)
        try:
            cfg = MonitorConfig.from_dict(config).validate()
            validate_alerting(cfg.rules, cfg.sinks, settings.sink_policy())
        except (ValueError, TypeError) as exc:
            raise HTTPException(422, detail=str(exc)) from exc
        before = store.get_monitor_config(project, model)
        store.put_monitor_config(project, model, cfg.to_dict())
        store.audit_config_change(
            "monitors.set", project, model, before, cfg.to_dict(), actor=actor_of(request)
        )
        return {"source": "stored", "config": cfg.to_dict()}

    return _clean(await run_in_threadpool(work))


@router.get("/models/{model}/findings")
async def list_findings(
    model: ModelName,
    project: ReadProject,
    store: StoreDep,
    since: Annotated[float | None, epoch_query("Window end at or after (epoch s).")] = None,
    check: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    subject: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    drift: Annotated[bool | None, Query(description="Only drifted (or only clean).")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> Any:
    """Findings of the model, oldest first (the newest ``limit``)."""

    def work() -> Any:
        _model_or_404(store, project, model)
        rows = store.list_findings(
            project, model, since=since, check=check, subject=subject, limit=limit
        )
        if drift is not None:
            rows = [r for r in rows if bool(r.get("drift")) == drift]
        return {"findings": rows}

    return _clean(await run_in_threadpool(work))


@router.get("/models/{model}/metrics")
async def list_metric_values(
    model: ModelName,
    project: ReadProject,
    store: StoreDep,
    name: Annotated[str | None, Query(min_length=1, max_length=256)] = None,
    since: Annotated[float | None, epoch_query("From (epoch s).")] = None,
    until: Annotated[float | None, epoch_query("Until (epoch s).")] = None,
) -> Any:
    """Metric values of the model's windows (``events``, ``flag_rate``, ``ece``, ...)."""

    def work() -> Any:
        _model_or_404(store, project, model)
        return {
            "values": store.list_metric_values(project, model, name=name, since=since, until=until)
        }

    return _clean(await run_in_threadpool(work))


@router.get("/alerts")
async def list_alerts(
    project: ReadProject,
    store: StoreDep,
    model: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    status: Annotated[str | None, Query(pattern="^(firing|resolved)$")] = None,
    since: Annotated[float | None, epoch_query("Updated at or after (epoch s).")] = None,
) -> Any:
    """Alerts of the caller's project, most recently updated first."""
    rows = await run_in_threadpool(
        store.list_alerts, project, model=model, status=status, since=since
    )
    return _clean({"alerts": rows})


@router.post("/models/{model}/monitors:run")
async def run_now(
    model: ModelName,
    project: AdminProject,
    store: StoreDep,
    settings: SettingsDep,
    now: Annotated[float | None, epoch_query("Run as of this time (epoch s).")] = None,
    adhoc: Annotated[
        bool, Query(description="With no closed window, evaluate the trailing one.")
    ] = True,
    trailing: Annotated[
        bool, Query(description="Evaluate only the trailing window; store nothing.")
    ] = False,
) -> Any:
    """Run the model's monitors now: closed windows are evaluated, stored and alerted
    (``trailing=true``: only the window's length up to now, stored nowhere)."""

    def work() -> Any:
        from watchkeeper.runner import run_monitors

        _model_or_404(store, project, model)
        result = run_monitors(
            store, project, model, now=now, adhoc=adhoc, trailing=trailing,
            sink_policy=settings.sink_policy(),
        )  # fmt: skip
        return result.to_dict()

    return _clean(await run_in_threadpool(work))
