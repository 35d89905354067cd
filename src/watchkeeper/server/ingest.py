"""The work behind the ingest endpoints, kept apart from HTTP so it can be timed and tested.

Order of a batch: parse and validate the whole body (nothing stored on any error), check the
batch size, check the model, turn the batch into a :class:`~watchkeeper.window.Window`, commit it
in one store call (durable before the reply), then update the metrics.
"""

from __future__ import annotations

import threading
import time
from typing import Annotated, Any

import numpy as np
from fastapi import HTTPException, Path
from pydantic import ValidationError

from watchkeeper.server.metrics import ServerMetrics
from watchkeeper.server.schemas import (
    BatchError,
    EventsBatch,
    IngestOut,
    LabelsBatch,
    LabelsOut,
    batch_to_window,
)
from watchkeeper.server.settings import Settings

MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$"
ModelName = Annotated[
    str,
    Path(
        pattern=MODEL_PATTERN,
        description="Model name: letters, digits, '_', '.', ':', '-'; at most 128 characters.",
    ),
]
THRESHOLD_TTL = 60.0
SYSTEM_EVERY = 30.0
"""Seconds between two serving-side system snapshots stored as metric values, per model."""


class IngestState:
    """Per-app caches: models known to exist, version thresholds, last stored system figures."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.known_models: set[tuple[str, str]] = set()
        self.thresholds: dict[tuple[str, str, str], tuple[float, float]] = {}
        self.system_stored: dict[tuple[str, str], float] = {}


def too_large(metrics: ServerMetrics, n: int, limit: int, what: str) -> HTTPException:
    metrics.reject("too_large", n)
    return HTTPException(
        413,
        detail=f"batch of {n} {what} exceeds the limit of {limit} per request "
        "(WATCHKEEPER_MAX_BATCH_EVENTS); split it",
    )


def note_rejected(store: Any, state: IngestState, project: str, model: str, n: int) -> None:
    """Add ``n`` refused events to the store's counters when the model exists (best effort)."""
    record = getattr(store, "record_rejected", None)
    if record is None:
        return
    with state.lock:
        known = (project, model) in state.known_models
    try:
        if known or store.has_model(project, model):
            record(project, model, max(int(n), 1))
    except ValueError:
        pass  # a name the store refuses has nothing to count against


def ensure_model(
    store: Any,
    settings: Settings,
    state: IngestState,
    metrics: ServerMetrics,
    project: str,
    model: str,
    n: int,
) -> None:
    """404 for a model the project has not registered, unless auto-registration is on."""
    key = (project, model)
    with state.lock:
        if key in state.known_models:
            return
    if not store.has_model(project, model):
        if not settings.auto_register_models:
            metrics.reject("unknown_model", n)
            raise HTTPException(
                404,
                detail=f"model '{model}' is not registered in project '{project}'; register it "
                "(POST /v1/models, `watchkeeper model register`) or start the server with "
                "WATCHKEEPER_AUTO_REGISTER_MODELS=1",
            )
        store.register_model(project, model)
    with state.lock:
        state.known_models.add(key)


def flag_threshold(
    store: Any, settings: Settings, state: IngestState, project: str, model: str, version: Any
) -> float:
    """The operating-point threshold of the batch's model version, else the default."""
    if not isinstance(version, str):
        return settings.flag_threshold
    key = (project, model, version)
    now = time.monotonic()
    with state.lock:
        hit = state.thresholds.get(key)
    if hit is not None and hit[1] > now:
        return hit[0]
    threshold = settings.flag_threshold
    try:
        info = store.get_model_version(project, model, version)
    except (KeyError, LookupError, ValueError):
        info = None
    if info:
        op = info.get("operating_point") or {}
        if isinstance(op.get("threshold"), int | float):
            threshold = float(op["threshold"])
    with state.lock:
        state.thresholds[key] = (threshold, now + THRESHOLD_TTL)
    return threshold


def ingest_events(
    body: bytes,
    *,
    store: Any,
    settings: Settings,
    state: IngestState,
    metrics: ServerMetrics,
    project: str,
    model: str,
) -> IngestOut:
    """Validate, commit and count one events batch (raises HTTPException or ValidationError).

    Every refusal after authentication is counted in the metrics and, when the model is known,
    in the store's ingest counters (``record_rejected``) for the pipeline-health checks.
    """
    try:
        batch = EventsBatch.model_validate_json(body)
    except ValidationError:
        note_rejected(store, state, project, model, 1)  # the event count is unknowable
        raise
    n = batch.size()
    if n > settings.max_batch_events:
        note_rejected(store, state, project, model, n)
        raise too_large(metrics, n, settings.max_batch_events, "events")
    ensure_model(store, settings, state, metrics, project, model, n)
    now = time.time()
    try:
        window = batch_to_window(batch, now)
        report = getattr(store, "log_events_report", None)
        if report is not None:
            result = report(project, model, window, environment=batch.environment)
            new = np.asarray(result.new, dtype=bool)
        else:  # a store that cannot tell: all events count when any was new
            result = store.log_events(project, model, window, environment=batch.environment)
            new = np.full(len(window), int(result.accepted) > 0)
    except (BatchError, ValueError) as exc:
        # BatchError: shapes the schema cannot express; ValueError: what the store refuses
        # (e.g. an embedding width other than the model's). Nothing was written either way.
        metrics.reject("validation", n)
        note_rejected(store, state, project, model, n)
        raise HTTPException(422, detail=str(exc)) from None
    accepted, duplicates = int(result.accepted), int(result.duplicates)
    digests = (batch.environment or {}).get("model_digests")
    if isinstance(digests, dict) and digests:
        # the serving process says which artifact it runs; the registry compares
        from watchkeeper.registry import check_serving_digests

        check_serving_digests(store, project, model, digests)
    version = window.versions[0] if window.versions is not None and n else None
    threshold = flag_threshold(store, settings, state, project, model, version)
    metrics.observe_events(project, model, window, accepted, duplicates, threshold, new=new)
    if batch.system:
        metrics.observe_serving_system(project, model, batch.system)
        _store_system(store, state, project, model, batch.system, now)
    return IngestOut(accepted=accepted, duplicates=duplicates)


def _store_system(
    store: Any, state: IngestState, project: str, model: str, system: dict[str, float], now: float
) -> None:
    key = (project, model)
    with state.lock:
        if now - state.system_stored.get(key, 0.0) < SYSTEM_EVERY:
            return
        state.system_stored[key] = now
    values = {f"serving_{k}": float(v) for k, v in system.items() if np.isfinite(v)}
    store.add_metric_values(project, model, now, values, labels={"source": "serving"})


def ingest_labels(
    body: bytes,
    *,
    store: Any,
    settings: Settings,
    state: IngestState,
    metrics: ServerMetrics,
    project: str,
    model: str,
) -> LabelsOut:
    """Validate, commit and count one labels batch."""
    try:
        batch = LabelsBatch.model_validate_json(body)
    except ValidationError:
        note_rejected(store, state, project, model, 1)
        raise
    n = len(batch.ids)
    if n > settings.max_batch_events:
        note_rejected(store, state, project, model, n)
        raise too_large(metrics, n, settings.max_batch_events, "labels")
    ensure_model(store, settings, state, metrics, project, model, n)
    ids = np.empty(n, dtype=object)
    ids[:] = batch.ids
    labels = np.empty(n, dtype=object)
    labels[:] = batch.labels
    changed: np.ndarray | None = None
    try:
        report = getattr(store, "log_labels_report", None)
        if report is not None:
            result = report(project, model, ids, labels)
            accepted, stored_ids = int(result.stored), result.ids
            changed = np.asarray(result.changed, dtype=bool)
        else:
            accepted, stored_ids = int(store.log_labels(project, model, ids, labels)), None
    except ValueError as exc:
        metrics.reject("validation", n)
        raise HTTPException(422, detail=str(exc)) from None
    lags = None
    event_times = getattr(store, "event_times", None)
    if event_times is not None and n:
        # Label lag = when the label arrived minus when its event happened, for the labels
        # this batch added or changed (a label sent again is not observed twice).
        now = time.time()
        arrived = np.full(n, now) if batch.ts is None else np.asarray(batch.ts, dtype=np.float64)
        arrived[np.isnan(arrived)] = now
        keep = np.ones(n, dtype=bool)
        if changed is not None and stored_ids is not None:
            fresh = {i for i, c in zip(stored_ids, changed.tolist(), strict=True) if c}
            # the last occurrence of an id is the one stored
            _, last = np.unique(ids[::-1].astype(str), return_index=True)
            last = n - 1 - last
            keep = np.zeros(n, dtype=bool)
            keep[last] = np.isin(ids[last].astype(str), np.asarray(sorted(fresh), dtype=str))
        if keep.any():
            lags = arrived[keep] - np.asarray(
                event_times(project, model, ids[keep]), dtype=np.float64
            )
    counted = accepted if changed is None else int(changed.sum())
    metrics.observe_labels(project, model, counted, lags)
    return LabelsOut(accepted=accepted)
