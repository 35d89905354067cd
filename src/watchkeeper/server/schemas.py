"""Request and response bodies of the HTTP API (pydantic v2).

Two shapes carry a batch of events. The *row* form, ``{"events": [{"id": ..., "score": ...}]}``,
is the one to type by hand; the *columnar* form, ``{"columns": {"ids": [...], "scores": [...]}}``,
is what the SDK sends: it becomes numpy arrays without a Python loop per event, and embeddings may
travel as base64 float32 bytes. Every number must be finite: a missing value is ``null``.
"""

from __future__ import annotations

import binascii
from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

from watchkeeper.window import Window

Id = Annotated[str, Field(min_length=1, max_length=256)]
Name = Annotated[str, Field(min_length=1, max_length=128)]
Version = Annotated[str, Field(min_length=1, max_length=128)]
Finite = Annotated[float, Strict()]
"""A finite number: an integer or a float, never a boolean (``true`` is not ``1.0``) and never
NaN (the models refuse non-finite floats)."""
EPOCH_LIMIT = 1e11
Epoch = Annotated[float, Strict(), Field(ge=-EPOCH_LIMIT, le=EPOCH_LIMIT)]
"""A time in epoch seconds, within ±1e11 (the year 5138): windows and buckets stay computable."""
Text = Annotated[str, Strict()]
"""A string as sent: a number is not turned into one (``NaN`` does not become ``"NaN"``)."""
Scalar = float | Text | None
"""A feature value: a finite number, a category, or null for missing."""
Label = Text | Annotated[int, Strict()] | Finite | bool
"""A ground-truth label: a class name, an integer, a finite number or a boolean; never NaN."""


class _Strict(BaseModel):
    model_config = ConfigDict(
        extra="forbid", allow_inf_nan=False, coerce_numbers_to_str=True, frozen=True
    )


class EventIn(_Strict):
    """One prediction, row form."""

    id: Id
    ts: Epoch | None = Field(None, description="Seconds since the Unix epoch; default: now.")
    features: dict[Name, Scalar] | None = None
    score: Finite | None = None
    probs: list[Finite] | None = None
    predicted: str | None = None
    embedding: list[Finite] | None = None
    latency_ms: Annotated[Finite, Field(ge=0)] | None = None
    tags: dict[Name, str | None] | None = None
    version: Version | None = None
    payload_ref: str | None = None


class ColumnsIn(_Strict):
    """A batch of predictions, columnar form: every list has one entry per id."""

    ids: list[Id]
    ts: list[Epoch | None] | None = None
    features: dict[Name, list[Scalar]] | None = None
    scores: list[Finite | None] | None = None
    probs: list[list[Finite] | None] | None = None
    predicted: list[str | None] | None = None
    embeddings: list[list[Finite] | None] | None = None
    embeddings_b64: str | None = Field(
        None, description="Little-endian float32 bytes of an n x embedding_dim array, base64."
    )
    embedding_dim: Annotated[int, Field(ge=1, le=65536)] | None = None
    features_b64: dict[Name, str] | None = Field(
        None,
        description="Numeric features as base64 of n little-endian float64 (NaN for missing).",
    )
    latency_ms: list[Annotated[Finite, Field(ge=0)] | None] | None = None
    tags: dict[Name, list[str | None]] | None = None
    version: Version | None = Field(None, description="Model version of every event of the batch.")
    versions: list[Version | None] | None = None
    payload_refs: list[str | None] | None = None

    @model_validator(mode="after")
    def _same_lengths(self) -> ColumnsIn:
        n = len(self.ids)
        named: list[tuple[str, list[Any] | None]] = [
            ("ts", self.ts),
            ("scores", self.scores),
            ("probs", self.probs),
            ("predicted", self.predicted),
            ("embeddings", self.embeddings),
            ("latency_ms", self.latency_ms),
            ("versions", self.versions),
            ("payload_refs", self.payload_refs),
        ]
        named += [(f"features.{k}", v) for k, v in (self.features or {}).items()]
        named += [(f"tags.{k}", v) for k, v in (self.tags or {}).items()]
        for name, column in named:
            if column is not None and len(column) != n:
                raise ValueError(f"columns.{name}: {len(column)} values, but {n} ids")
        if self.embeddings_b64 is not None:
            if self.embeddings is not None:
                raise ValueError("columns.embeddings_b64: give embeddings or embeddings_b64")
            if self.embedding_dim is None:
                raise ValueError("columns.embedding_dim: required with embeddings_b64")
        return self


class EventsBatch(_Strict):
    """``POST /v1/models/{model}/events:batch``: give ``events`` (rows) or ``columns``."""

    events: list[EventIn] | None = None
    columns: ColumnsIn | None = None
    environment: dict[str, Any] | None = Field(
        None, description="Serving environment: Python and package versions (the SDK fills it)."
    )
    system: dict[str, float] | None = Field(
        None, description="Serving-side system metrics snapshot (CPU, memory, GPU...)."
    )

    @model_validator(mode="after")
    def _one_form(self) -> EventsBatch:
        if (self.events is None) == (self.columns is None):
            raise ValueError("body: give exactly one of 'events' (rows) or 'columns'")
        return self

    def size(self) -> int:
        """Number of events in the batch."""
        return len(self.events) if self.events is not None else len(self.columns.ids)  # type: ignore[union-attr]


class LabelsBatch(_Strict):
    """``POST /v1/models/{model}/labels:batch``: ground truth joined to events by id."""

    ids: list[Id]
    labels: list[Label]
    ts: list[Epoch | None] | None = Field(
        None, description="When each label became known; default: now (for the label-lag metric)."
    )

    @model_validator(mode="after")
    def _same_lengths(self) -> LabelsBatch:
        if len(self.labels) != len(self.ids):
            raise ValueError(f"labels: {len(self.labels)} values, but {len(self.ids)} ids")
        if self.ts is not None and len(self.ts) != len(self.ids):
            raise ValueError(f"ts: {len(self.ts)} values, but {len(self.ids)} ids")
        return self


class OperatingPointIn(BaseModel):
    """A version's operating point: every number finite, never a boolean; rates in [0, 1]."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)
    threshold: Finite | None = Field(None, description="Score at or above which events flag.")
    tpr: Annotated[Finite, Field(ge=0, le=1)] | None = None
    fpr: Annotated[Finite, Field(ge=0, le=1)] | None = None
    n_positive: Annotated[int, Strict(), Field(ge=0)] | None = None
    n_negative: Annotated[int, Strict(), Field(ge=0)] | None = None


class IngestOut(BaseModel):
    """Reply to an events batch: committed before it is sent."""

    accepted: int
    duplicates: int


class LabelsOut(BaseModel):
    """Reply to a labels batch."""

    accepted: int


class BatchError(ValueError):
    """A batch that parsed but cannot become a window; the message names the field and index."""


def _float_column(values: list[Any] | None, n: int) -> np.ndarray | None:
    if values is None:
        return None
    return np.asarray(values, dtype=np.float64) if n else np.empty(0)


def _vectors(rows: list[list[float] | None], field: str, dtype: Any) -> np.ndarray:
    """Rows of one width as a matrix; NaN rows where a row is null."""
    widths = {len(r) for r in rows if r is not None}
    if len(widths) > 1:
        first = next(len(r) for r in rows if r is not None)
        bad = next(i for i, r in enumerate(rows) if r is not None and len(r) != first)
        raise BatchError(f"{field}[{bad}]: {len(rows[bad])} values, but the first has {first}")  # type: ignore[arg-type]
    if None in rows:
        d = widths.pop() if widths else 0
        out = np.full((len(rows), d), np.nan, dtype=dtype)
        present = np.array([r is not None for r in rows])
        if present.any():
            out[present] = np.asarray([r for r in rows if r is not None], dtype=dtype)
        return out
    return np.asarray(rows, dtype=dtype).reshape(len(rows), -1)


def _object(values: list[Any] | None) -> np.ndarray | None:
    if values is None:
        return None
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def _b64(text: str, where: str) -> bytes:
    # binascii's strict mode checks the alphabet in C; base64.b64decode(validate=True) runs a
    # regular expression over the whole text first, ten times slower on a batch's embeddings.
    try:
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise BatchError(f"{where}: not valid base64") from None


def _b64_floats(text: str, n: int, where: str) -> np.ndarray:
    raw = _b64(text, where)
    if len(raw) != 8 * n:
        raise BatchError(f"{where}: {len(raw)} bytes, but {n} ids x 8 bytes = {8 * n}")
    values = np.frombuffer(raw, dtype="<f8").astype(np.float64)
    if np.isinf(values).any():
        raise BatchError(f"{where}[{int(np.flatnonzero(np.isinf(values))[0])}]: infinite value")
    return values


def columns_to_window(cols: ColumnsIn, now: float) -> Window:
    """The columnar form as a :class:`~watchkeeper.window.Window` (no loop per event)."""
    n = len(cols.ids)
    ts = _float_column(cols.ts, n)
    if ts is None:
        ts = np.full(n, now)
    else:
        ts[np.isnan(ts)] = now
    embeddings: np.ndarray | None = None
    if cols.embeddings is not None:
        embeddings = _vectors(cols.embeddings, "columns.embeddings", np.float32)
    elif cols.embeddings_b64 is not None:
        raw = _b64(cols.embeddings_b64, "columns.embeddings_b64")
        d = int(cols.embedding_dim or 0)
        if len(raw) != 4 * n * d:
            raise BatchError(
                f"columns.embeddings_b64: {len(raw)} bytes, but {n} ids x {d} dims x 4 bytes "
                f"= {4 * n * d}"
            )
        embeddings = np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(n, d)
        if np.isinf(embeddings).any():
            bad = int(np.flatnonzero(np.isinf(embeddings).any(axis=1))[0])
            raise BatchError(f"columns.embeddings_b64[{bad}]: infinite value")
    probs: np.ndarray | None = None
    if cols.probs is not None:
        probs = _vectors(cols.probs, "columns.probs", np.float64)
    features: dict[str, np.ndarray | None] = {
        k: _object(v) for k, v in (cols.features or {}).items()
    }
    for name, text in (cols.features_b64 or {}).items():
        where = f"columns.features_b64.{name}"
        if name in features:
            raise BatchError(f"{where}: also given in columns.features")
        features[name] = _b64_floats(text, n, where)
    tags = {k: _object(v) for k, v in (cols.tags or {}).items()}
    if cols.payload_refs is not None:
        tags["payload_ref"] = _object(cols.payload_refs)
    versions = _object(cols.versions)
    if versions is None and cols.version is not None:
        versions = np.full(n, cols.version, dtype=object)
    return Window.from_columns(
        ids=_object(cols.ids),
        ts=ts,
        features=features,
        scores=_float_column(cols.scores, n),
        probs=probs,
        predicted=_object(cols.predicted),
        embeddings=embeddings,
        latency_ms=_float_column(cols.latency_ms, n),
        tags=tags,
        versions=versions,
    )


def _same_width(values: list[Any], name: str) -> None:
    first = next((len(v) for v in values if v is not None), 0)
    for i, v in enumerate(values):
        if v is not None and len(v) != first:
            raise BatchError(f"events[{i}].{name}: {len(v)} values, but the first has {first}")


def rows_to_columns(events: list[EventIn]) -> ColumnsIn:
    """The row form turned columnar; a field absent from every row stays absent."""
    if not events:
        return ColumnsIn(ids=[])

    def col(name: str) -> list[Any] | None:
        values = [getattr(e, name) for e in events]
        return None if all(v is None for v in values) else values

    feature_names = sorted({k for e in events for k in (e.features or {})})
    tag_names = sorted({k for e in events for k in (e.tags or {})})
    probs = col("probs")
    if probs is not None:
        _same_width(probs, "probs")
    embeddings = col("embedding")
    if embeddings is not None:
        _same_width(embeddings, "embedding")
    return ColumnsIn.model_construct(
        ids=[e.id for e in events],
        ts=col("ts"),
        features={k: [(e.features or {}).get(k) for e in events] for k in feature_names} or None,
        scores=col("score"),
        probs=probs,
        predicted=col("predicted"),
        embeddings=embeddings,
        latency_ms=col("latency_ms"),
        tags={k: [(e.tags or {}).get(k) for e in events] for k in tag_names} or None,
        versions=col("version"),
        payload_refs=col("payload_ref"),
    )


def batch_to_window(batch: EventsBatch, now: float) -> Window:
    """Either form of an events batch as a window; :class:`BatchError` names a bad field."""
    if batch.columns is not None:
        return columns_to_window(batch.columns, now)
    return columns_to_window(rows_to_columns(batch.events or []), now)


BODY_MODELS: list[type[BaseModel]] = [EventsBatch, LabelsBatch]
"""Bodies read by hand (``model_validate_json`` on the raw bytes), published in OpenAPI."""


def body_models() -> list[type[BaseModel]]:
    """Every body read by hand, the tools' included (imported here, not at module load)."""
    from watchkeeper.server.routers.tools import DriftIn, ExpectIn

    return [*BODY_MODELS, ExpectIn, DriftIn]
