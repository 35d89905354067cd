"""Columns of numpy arrays: what the SDK buffers, merges, splits and sends.

A *columns* dict has ``ids`` (object), ``ts`` (float64) and any of ``features`` / ``tags``
(dicts of arrays), ``scores``, ``latency_ms`` (float64), ``probs`` (float64 n x k),
``embeddings`` (float32 n x d), ``predicted``, ``versions``, ``payload_refs`` (object). Missing
numbers are NaN, missing objects None.
"""

from __future__ import annotations

import base64
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

Columns = dict[str, Any]
FLOATS = ("scores", "latency_ms")
OBJECTS = ("predicted", "versions", "payload_refs")


def _objects(values: Any, n: int, field: str) -> np.ndarray:
    if isinstance(values, str) or not hasattr(values, "__len__"):
        return np.full(n, None if values is None else str(values), dtype=object)
    out = np.empty(len(values), dtype=object)
    out[:] = [
        None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v) for v in values
    ]
    if len(out) != n:
        raise ValueError(f"{field}: {len(out)} values, but {n} ids")
    return out


def _floats(values: Any, n: int, field: str) -> np.ndarray:
    if field in FLOATS:
        raw = np.asarray(values)
        if raw.dtype == np.bool_ or (
            raw.dtype == object and any(isinstance(v, bool | np.bool_) for v in raw.ravel())
        ):
            raise ValueError(f"{field}: expected numbers, got booleans")
    try:
        out = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{field}: expected numbers") from None
    if len(out) != n:
        raise ValueError(f"{field}: {len(out)} values, but {n} ids")
    if np.isinf(out).any():
        raise ValueError(f"{field}[{int(np.flatnonzero(np.isinf(out))[0])}]: infinite value")
    return out


def _feature(values: Any, n: int, field: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1 or len(array) != n:
        raise ValueError(f"{field}: {len(array)} values, but {n} ids")
    if array.dtype.kind in "biuf" or array.dtype.kind == "O":
        try:
            return _floats(array, n, field)
        except ValueError as exc:
            if "infinite" in str(exc) or array.dtype.kind != "O":
                raise
    return _objects(array.tolist(), n, field)


def _frame_columns(data: Any, field: str) -> dict[str, Any]:
    if data is None:
        return {}
    if isinstance(data, Mapping):
        return {str(k): v for k, v in data.items()}
    if hasattr(data, "columns") and hasattr(data, "__getitem__"):
        # pandas or polars DataFrame: one numpy array per column
        return {str(c): np.asarray(data[c]) for c in data.columns}
    raise ValueError(
        f"{field}: expected a DataFrame or a dict of arrays, got {type(data).__name__}"
    )


def _ts(values: Any, n: int) -> np.ndarray:
    if values is None:
        return np.full(n, time.time())
    if hasattr(values, "timestamp") and not hasattr(values, "__len__"):
        return np.full(n, float(values.timestamp()))
    array = np.asarray(values)
    if array.dtype.kind == "M":
        return array.astype("datetime64[ns]").astype(np.int64) / 1e9
    if array.ndim == 0:
        return np.full(n, float(array))
    return _floats(array, n, "ts")


def build(
    *,
    ids: Any,
    ts: Any = None,
    features: Any = None,
    scores: Any = None,
    probs: Any = None,
    predicted: Any = None,
    embeddings: Any = None,
    latency_ms: Any = None,
    tags: Any = None,
    version: Any = None,
    payload_refs: Any = None,
) -> Columns:
    """Columns from the arguments of ``log_batch``; ValueError names a bad field."""
    if ids is None:
        raise ValueError("ids: required")
    id_array = np.asarray(ids)
    if id_array.ndim != 1:
        raise ValueError("ids: expected a 1-D sequence")
    n = len(id_array)
    cols: Columns = {"ids": _objects(id_array.tolist(), n, "ids"), "ts": _ts(ts, n)}
    if any(i is None or i == "" for i in cols["ids"]):
        raise ValueError("ids: every event needs a non-empty id")
    feats = _frame_columns(features, "features")
    if feats:
        cols["features"] = {k: _feature(v, n, f"features.{k}") for k, v in feats.items()}
    tag_cols = _frame_columns(tags, "tags")
    if tag_cols:
        cols["tags"] = {k: _objects(v, n, f"tags.{k}") for k, v in tag_cols.items()}
    if scores is not None:
        cols["scores"] = _floats(scores, n, "scores")
    if latency_ms is not None:
        cols["latency_ms"] = _floats(latency_ms, n, "latency_ms")
    if probs is not None:
        p = np.asarray(probs, dtype=np.float64)
        if p.ndim != 2 or len(p) != n:
            raise ValueError(f"probs: expected shape ({n}, k), got {p.shape}")
        cols["probs"] = p
    if embeddings is not None:
        e = np.asarray(embeddings, dtype=np.float32)
        if e.ndim != 2 or len(e) != n:
            raise ValueError(f"embeddings: expected shape ({n}, d), got {e.shape}")
        if np.isinf(e).any():
            raise ValueError("embeddings: infinite value")
        cols["embeddings"] = e
    if predicted is not None:
        cols["predicted"] = _objects(predicted, n, "predicted")
    if version is not None:
        cols["versions"] = _objects(version, n, "version")
    if payload_refs is not None:
        cols["payload_refs"] = _objects(payload_refs, n, "payload_refs")
    return cols


def from_rows(rows: Sequence[dict[str, Any]]) -> Columns:
    """Columns from the keyword dicts of single ``log`` calls (already checked one by one)."""

    def col(key: str) -> list[Any] | None:
        values = [r.get(key) for r in rows]
        return None if all(v is None for v in values) else values

    names = sorted({k for r in rows for k in (r.get("features") or {})})
    tag_names = sorted({k for r in rows for k in (r.get("tags") or {})})
    features = {k: [(r.get("features") or {}).get(k) for r in rows] for k in names}
    tags = {k: [(r.get("tags") or {}).get(k) for r in rows] for k in tag_names}
    scores, latency = col("score"), col("latency_ms")
    probs, embeddings = col("probs"), col("embedding")
    emb = None if embeddings is None else _stack(embeddings, np.float32)
    prob = None if probs is None else _stack(probs, np.float64)
    return build(
        ids=[r["id"] for r in rows],
        ts=[r["ts"] for r in rows],
        features={k: _nan_for_none(v) for k, v in features.items()} or None,
        scores=None if scores is None else _nan_for_none(scores),
        probs=prob,
        predicted=col("predicted"),
        embeddings=emb,
        latency_ms=None if latency is None else _nan_for_none(latency),
        tags=tags or None,
        version=col("version"),
        payload_refs=col("payload_ref"),
    )


def _stack(vectors: list[Any], dtype: Any) -> np.ndarray:
    """Rows of one width (checked at the call) as a matrix; NaN rows where a row is None."""
    present = np.array([v is not None for v in vectors])
    rows = np.stack([np.asarray(v, dtype=dtype).reshape(-1) for v in vectors if v is not None])
    out = np.full((len(vectors), rows.shape[1]), np.nan, dtype=dtype)
    out[present] = rows
    return out


def _nan_for_none(values: list[Any]) -> list[Any]:
    return [math.nan if v is None else v for v in values]


def length(cols: Columns) -> int:
    return len(cols["ids"])


def _filler(array: np.ndarray, n: int) -> np.ndarray:
    shape = (n, *array.shape[1:])
    if array.dtype.kind == "f":
        return np.full(shape, np.nan, dtype=array.dtype)
    return np.full(shape, None, dtype=object)


def signature(cols: Columns) -> dict[str, Any]:
    """What must agree for two column sets to be concatenated: vector widths, feature kinds."""
    out: dict[str, Any] = {}
    for key in ("embeddings", "probs"):
        if key in cols:
            out[key] = cols[key].shape[1]
    for name, values in cols.get("features", {}).items():
        out[f"features.{name}"] = values.dtype.kind == "f"
    return out


def mergeable(shape: dict[str, Any], part: Columns) -> bool:
    """Whether ``part`` agrees with a group of the given :func:`signature`."""
    other = signature(part)
    return all(shape[k] == v for k, v in other.items() if k in shape)


def concat(parts: Sequence[Columns]) -> Columns:
    """One column set from several, filling fields some parts lack with NaN / None."""
    if len(parts) == 1:
        return parts[0]
    sizes = [length(p) for p in parts]
    out: Columns = {}
    flat = {k for p in parts for k in p if k not in ("features", "tags")}
    for key in flat:
        template = next(p[key] for p in parts if key in p)
        out[key] = np.concatenate(
            [
                p[key] if key in p else _filler(template, s)
                for p, s in zip(parts, sizes, strict=True)
            ]
        )
    for group in ("features", "tags"):
        names = {k for p in parts for k in p.get(group, {})}
        if not names:
            continue
        out[group] = {}
        for k in names:
            template = next(p[group][k] for p in parts if k in p.get(group, {}))
            out[group][k] = np.concatenate(
                [
                    p[group][k] if k in p.get(group, {}) else _filler(template, s)
                    for p, s in zip(parts, sizes, strict=True)
                ]
            )
    return out


def split(cols: Columns, size: int) -> list[Columns]:
    """Chunks of at most ``size`` events."""
    n = length(cols)
    if n <= size:
        return [cols]
    out = []
    for start in range(0, n, size):
        sl = slice(start, start + size)
        part: Columns = {}
        for key, value in cols.items():
            part[key] = (
                {k: v[sl] for k, v in value.items()} if isinstance(value, dict) else value[sl]
            )
        out.append(part)
    return out


def _json_list(array: np.ndarray) -> list[Any]:
    if array.dtype.kind == "f" and np.isnan(array).any():
        obj = array.astype(object)
        obj[np.isnan(array)] = None
        values: list[Any] = obj.tolist()
        return values
    plain: list[Any] = array.tolist()
    return plain


def to_payload(cols: Columns) -> dict[str, Any]:
    """The columnar JSON body of ``POST /v1/models/{model}/events:batch`` (``columns`` part)."""
    out: dict[str, Any] = {"ids": cols["ids"].tolist(), "ts": _json_list(cols["ts"])}
    for key in (*FLOATS, *OBJECTS):
        if key in cols:
            out[key] = _json_list(cols[key])
    if "probs" in cols:
        p = cols["probs"]
        rows: list[Any] = p.tolist()
        absent = np.isnan(p).all(axis=1)
        for i in np.flatnonzero(absent):
            rows[i] = None
        out["probs"] = rows
    if "embeddings" in cols:
        e = np.ascontiguousarray(cols["embeddings"], dtype="<f4")
        out["embeddings_b64"] = base64.b64encode(e.tobytes()).decode("ascii")
        out["embedding_dim"] = int(e.shape[1])
    if "tags" in cols:
        out["tags"] = {k: _json_list(v) for k, v in cols["tags"].items()}
    numeric = {k: v for k, v in cols.get("features", {}).items() if v.dtype.kind == "f"}
    other = {k: v for k, v in cols.get("features", {}).items() if v.dtype.kind != "f"}
    if numeric:
        # base64 float64: about 4x cheaper to write and to read than decimal JSON numbers
        out["features_b64"] = {
            k: base64.b64encode(np.ascontiguousarray(v, dtype="<f8").tobytes()).decode("ascii")
            for k, v in numeric.items()
        }
    if other:
        out["features"] = {k: _json_list(v) for k, v in other.items()}
    return out


def to_window(cols: Columns) -> Any:
    """The columns as a :class:`~watchkeeper.window.Window` (for the in-process client)."""
    from watchkeeper.window import Window

    tags = dict(cols.get("tags", {}))
    if "payload_refs" in cols:
        tags["payload_ref"] = cols["payload_refs"]
    return Window(
        ids=cols["ids"],
        ts=cols["ts"],
        features=cols.get("features", {}),
        scores=cols.get("scores"),
        probs=cols.get("probs"),
        predicted=cols.get("predicted"),
        embeddings=cols.get("embeddings"),
        latency_ms=cols.get("latency_ms"),
        tags=tags,
        versions=cols.get("versions"),
    )


def split_payload(columns: dict[str, Any], at: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """A ``columns`` payload cut into events ``[:at]`` and ``[at:]`` (for a server whose batch
    limit is lower than the client's)."""

    def b64(text: str, width: int) -> tuple[str, str]:
        raw = base64.b64decode(text)
        cut = at * width
        return (
            base64.b64encode(raw[:cut]).decode("ascii"),
            base64.b64encode(raw[cut:]).decode("ascii"),
        )

    head: dict[str, Any] = {}
    tail: dict[str, Any] = {}
    for key, value in columns.items():
        if key == "embeddings_b64":
            head[key], tail[key] = b64(value, 4 * int(columns["embedding_dim"]))
        elif key == "features_b64":
            pairs = {k: b64(v, 8) for k, v in value.items()}
            head[key] = {k: p[0] for k, p in pairs.items()}
            tail[key] = {k: p[1] for k, p in pairs.items()}
        elif isinstance(value, list):
            head[key], tail[key] = value[:at], value[at:]
        elif isinstance(value, dict):
            head[key] = {k: v[:at] for k, v in value.items()}
            tail[key] = {k: v[at:] for k, v in value.items()}
        else:
            head[key] = tail[key] = value
    return head, tail
