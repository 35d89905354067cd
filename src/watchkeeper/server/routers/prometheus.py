"""``/metrics`` in the Prometheus text exposition format (the app's own registry).

A scrape needs a token with the read scope and sees only the series of the token's project; set
``WATCHKEEPER_PUBLIC_METRICS=1`` to serve every series without a token (for a scraper on a
private network). Server-wide series (system figures, rejections by reason, ingest durations)
carry no project and are served only when public.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import Metric

from watchkeeper.server.deps import require_scope

router = APIRouter(tags=["metrics"])

_READ = require_scope("read")


class ProjectView:
    """The samples of a registry whose ``project`` label is one project (a registry for
    ``generate_latest``)."""

    def __init__(self, registry: CollectorRegistry, project: str) -> None:
        self.registry = registry
        self.project = project

    def collect(self) -> Iterator[Metric]:
        for family in self.registry.collect():
            kept = [s for s in family.samples if s.labels.get("project") == self.project]
            if kept:
                out = Metric(family.name, family.documentation, family.type, family.unit)
                out.samples = kept
                yield out


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {"schema": {"type": "string"}}}},
        401: {"description": "No or invalid token (and public metrics off)"},
        403: {"description": "The token lacks the read scope"},
    },
)
def metrics(request: Request) -> Response:
    """Ingest counters and histograms, per-model figures (and, when public, system figures):
    every series of the token's project, or every series when ``public_metrics`` is set."""
    registry: CollectorRegistry = request.app.state.registry
    if request.app.state.settings.public_metrics:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    view = ProjectView(registry, _READ(request))
    return Response(generate_latest(view), media_type=CONTENT_TYPE_LATEST)
