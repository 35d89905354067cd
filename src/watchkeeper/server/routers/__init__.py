"""Every router of the API; ``create_app`` includes each router of :data:`ROUTERS` in order.

Add a resource by writing ``routers/<resource>.py`` exposing ``router`` (an ``APIRouter`` with
``prefix="/v1"``) and appending it below.
"""

from __future__ import annotations

from fastapi import APIRouter

from watchkeeper.server.routers import (
    audit,
    console,
    events,
    explain,
    health,
    labels,
    loop,
    models,
    monitors,
    outliers,
    plans,
    profiles,
    prometheus,
    registry,
    tokens,
    tools,
)

ROUTERS: list[APIRouter] = [
    health.router,
    prometheus.router,
    models.router,
    events.router,
    labels.router,
    tokens.router,
    tools.router,
    monitors.router,
    plans.router,
    loop.router,
    console.router,
    registry.router,
    outliers.router,
    profiles.router,
    audit.router,
    explain.router,
]
