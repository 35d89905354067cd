"""Events between a :class:`~watchkeeper.window.Window` and rows of the ``events`` table.

Layout of one stored event (see docs/store.md for why): fixed columns (id, ts, version), then
three column groups encoded per batch along a *feature schema* (the names and order of the
columns of that batch, stored once in ``feature_schemas``):

- ``nums``: the numeric columns (score, latency, numeric features) as one row of ``float64``
  bytes, so a window decodes with a single ``b"".join`` and ``np.frombuffer``;
- ``objs``: the object columns (predicted label, categorical features, tags) as one JSON list,
  so a window decodes with a single ``json.loads`` over all rows;
- ``embedding`` (``float32`` bytes) and ``probs`` (``float64`` bytes), NULL when absent.

Validation happens here, before any transaction opens: a bad batch raises ValueError naming
the field (and the first offending index) and nothing is written.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from watchkeeper.store._codec import canonical, dumps
from watchkeeper.window import Window

MAX_ID = 256
MAX_NAME = 128
_SCALARS = (str, int, float, bool, type(None), np.str_, np.integer, np.floating, np.bool_)


@dataclass
class EncodedBatch:
    """A validated batch, ready to insert (rows already deduplicated within the batch)."""

    rows: list[dict[str, Any]]
    spec: dict[str, Any]
    spec_hash: str
    n_in: int
    embedding_dim: int | None = None
    n_classes: int | None = None
    max_ts: float | None = None
    ids: list[str] = field(default_factory=list)


def first_bad(mask: Any) -> int:
    """Index of the first True of a boolean mask."""
    return int(np.flatnonzero(mask)[0])


def check_name(value: Any, what: str, limit: int = MAX_NAME) -> str:
    """A non-empty string of at most ``limit`` characters, or ValueError naming ``what``."""
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ValueError(
            f"{what}: expected a non-empty string of at most {limit} characters, got {value!r}"
        )
    return value


def check_ids(values: Any, what: str = "ids") -> np.ndarray:
    """Ids as a 1-D object array of non-empty ``str``; ValueError naming the first bad index."""
    array = np.asarray(values, dtype=object)
    if array.ndim != 1:
        raise ValueError(f"{what}: expected a 1-D sequence, got shape {array.shape}")
    if not len(array):
        return array
    kinds = set(map(type, array.tolist()))
    if not kinds <= {str, np.str_}:
        bad = np.fromiter((not isinstance(x, str) for x in array), bool, len(array))
        i = first_bad(bad)
        raise ValueError(f"{what}[{i}]: expected a string id, got {array[i]!r}")
    lengths = np.char.str_len(array.astype(str))
    if (lengths == 0).any() or (lengths > MAX_ID).any():
        i = first_bad((lengths == 0) | (lengths > MAX_ID))
        raise ValueError(f"{what}[{i}]: an id must have 1 to {MAX_ID} characters")
    return array


def _float_column(values: Any, what: str, n: int, *, ndim: int = 1) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected numbers") from None
    if array.ndim != ndim or len(array) != n:
        raise ValueError(f"{what}: expected {ndim}-D with {n} rows, got shape {array.shape}")
    if np.isinf(array).any():
        i = first_bad(np.isinf(array).reshape(n, -1).any(axis=1))
        raise ValueError(f"{what}[{i}]: infinite value")
    return array


def _object_column(values: Any, what: str, n: int) -> list[Any]:
    array = np.asarray(values, dtype=object)
    if array.ndim != 1 or len(array) != n:
        raise ValueError(f"{what}: expected 1-D with {n} rows, got shape {array.shape}")
    items: list[Any] = array.tolist()
    kinds = set(map(type, items))
    if not all(issubclass(k, _SCALARS) for k in kinds):
        i = next(j for j, x in enumerate(items) if not isinstance(x, _SCALARS))
        raise ValueError(
            f"{what}[{i}]: expected a string, number, bool or None, got {type(items[i]).__name__}"
        )
    if float in kinds or any(issubclass(k, np.floating) for k in kinds):
        # NaN is how pandas spells a missing category: store it as None (JSON null).
        items = [None if isinstance(x, float | np.floating) and math.isnan(x) else x for x in items]
    return items


def _vectors(values: Any, what: str, n: int, dtype: type[np.floating[Any]]) -> np.ndarray:
    array = _float_column(values, what, n, ndim=2).astype(dtype)
    nan = np.isnan(array)
    partial = nan.any(axis=1) & ~nan.all(axis=1)
    if partial.any():
        raise ValueError(
            f"{what}[{first_bad(partial)}]: NaN in part of a row (a row is all "
            "values, or all NaN for 'absent')"
        )
    return array


def _row_bytes(matrix: np.ndarray, absent: np.ndarray | None = None) -> list[bytes | None]:
    n = len(matrix)
    buf = np.ascontiguousarray(matrix).tobytes()
    width = len(buf) // n if n else 0
    out: list[bytes | None] = [buf[i * width : (i + 1) * width] for i in range(n)]
    if absent is not None and absent.any():
        for i in np.flatnonzero(absent).tolist():
            out[i] = None
    return out


def encode_events(events: Any, received_at: float) -> EncodedBatch:
    """Validate a window and turn it into rows of the ``events`` table."""
    if not isinstance(events, Window):
        raise ValueError(
            f"events: expected a watchkeeper.window.Window, got {type(events).__name__}"
        )
    n = len(events)
    ids = check_ids(events.ids)
    ts = _float_column(events.ts, "ts", n)
    if np.isnan(ts).any():
        raise ValueError(f"ts[{first_bad(np.isnan(ts))}]: NaN where an event time is required")

    num_names: list[str] = []
    num_cols: list[np.ndarray] = []
    obj_names: list[str] = []
    obj_cols: list[list[Any]] = []
    if events.scores is not None:
        num_names.append("score")
        num_cols.append(_float_column(events.scores, "scores", n))
    if events.latency_ms is not None:
        num_names.append("latency_ms")
        num_cols.append(_float_column(events.latency_ms, "latency_ms", n))
    if events.predicted is not None:
        obj_names.append("predicted")
        obj_cols.append(_object_column(events.predicted, "predicted", n))
    for name, column in events.features.items():
        check_name(name, "features (a feature name)")
        what = f"features.{name}"
        if np.asarray(column).dtype.kind in "biuf":
            num_names.append(f"f:{name}")
            num_cols.append(_float_column(column, what, n))
        else:
            obj_names.append(f"f:{name}")
            obj_cols.append(_object_column(column, what, n))
    for name, column in events.tags.items():
        check_name(name, "tags (a tag name)")
        obj_names.append(f"t:{name}")
        obj_cols.append(_object_column(column, f"tags.{name}", n))

    versions: list[Any] = [None] * n
    if events.versions is not None:
        versions = _object_column(events.versions, "versions", n)
        bad = [
            i
            for i, v in enumerate(versions)
            if v is not None and (not isinstance(v, str) or not v or len(v) > MAX_NAME)
        ]
        if bad:
            raise ValueError(
                f"versions[{bad[0]}]: expected a version string or None, got {versions[bad[0]]!r}"
            )

    embedding_dim = n_classes = None
    emb_rows: list[bytes | None] = [None] * n
    if events.embeddings is not None:
        emb = _vectors(events.embeddings, "embeddings", n, np.float32)
        absent = np.isnan(emb).all(axis=1) if emb.shape[1] else np.ones(n, bool)
        if not absent.all():
            embedding_dim = int(emb.shape[1])
            emb_rows = _row_bytes(emb, absent)
    prob_rows: list[bytes | None] = [None] * n
    if events.probs is not None:
        probs = _vectors(events.probs, "probs", n, np.float64)
        absent = np.isnan(probs).all(axis=1) if probs.shape[1] else np.ones(n, bool)
        if not absent.all():
            n_classes = int(probs.shape[1])
            prob_rows = _row_bytes(probs, absent)

    spec = {"num": num_names, "obj": obj_names}
    spec_hash = hashlib.sha256(canonical(spec).encode()).hexdigest()
    nums: list[bytes | None] = (
        _row_bytes(np.column_stack(num_cols)) if num_cols and n else [None] * n
    )
    objs: list[str | None] = (
        [dumps(list(r)) for r in zip(*obj_cols, strict=True)] if obj_cols else [None] * n
    )

    # Within the batch the first occurrence of an id wins; the database drops the rest.
    keep = np.arange(n)
    if n:
        _, first = np.unique(ids.astype(str), return_index=True)
        if len(first) < n:
            keep = np.sort(first)
    id_list = ids.tolist()
    ts_list = ts.tolist()
    rows = [
        {
            "event_id": id_list[i],
            "ts": ts_list[i],
            "version": versions[i],
            "nums": nums[i],
            "objs": objs[i],
            "embedding": emb_rows[i],
            "probs": prob_rows[i],
            "received_at": received_at,
        }
        for i in keep.tolist()
    ]
    return EncodedBatch(
        rows=rows,
        spec=spec,
        spec_hash=spec_hash,
        n_in=n,
        embedding_dim=embedding_dim,
        n_classes=n_classes,
        max_ts=float(ts.max()) if n else None,
        ids=[id_list[i] for i in keep.tolist()],
    )


def encode_labels(ids: Any, labels: Any) -> tuple[list[str], list[str]]:
    """Validated, deduplicated (last wins) ids and JSON-encoded labels."""
    id_array = check_ids(ids)
    n = len(id_array)
    values = _object_column(labels, "labels", n) if n or len(np.asarray(labels, object)) else []
    missing = [i for i, v in enumerate(values) if v is None]
    if missing:
        raise ValueError(f"labels[{missing[0]}]: a label is required (got None or NaN)")
    last: dict[str, str] = {}
    for i, text in zip(id_array.tolist(), map(dumps, values), strict=True):
        last[i] = text
    return list(last), list(last.values())


def _json_rows(texts: Sequence[str | None]) -> list[Any]:
    # One parse for the whole window instead of one per row.
    return list(json.loads("[" + ",".join(t if t is not None else "null" for t in texts) + "]"))


def decode_rows(
    rows: Sequence[Sequence[Any]],
    specs: Mapping[int, Mapping[str, list[str]]],
    *,
    embedding_dim: int | None,
    n_classes: int | None,
    start: float | None,
    end: float | None,
) -> Window:
    """Rows ``(event_id, ts, version, schema_id, nums, objs, embedding, probs, label)`` as a
    window, one vectorised decode per column group and schema."""
    n = len(rows)
    if n == 0:
        return Window(
            ids=np.empty(0, dtype=object),
            ts=np.empty(0),
            labels=np.empty(0, dtype=object),
            versions=np.empty(0, dtype=object),
            start=start,
            end=end,
        )
    ids_t, ts_t, ver_t, sid_t, nums_t, objs_t, emb_t, probs_t, lab_t = zip(*rows, strict=True)
    ids = np.empty(n, dtype=object)
    ids[:] = ids_t
    ts = np.fromiter(ts_t, dtype=np.float64, count=n)
    versions = np.empty(n, dtype=object)
    versions[:] = ver_t
    sids = np.fromiter(sid_t, dtype=np.int64, count=n)
    unique = np.unique(sids)

    num_cols: dict[str, np.ndarray] = {}
    obj_cols: dict[str, np.ndarray] = {}
    obj_set: dict[str, np.ndarray] = {}
    for sid in unique.tolist():
        spec = specs[sid]
        idx = None if len(unique) == 1 else np.flatnonzero(sids == sid)
        sel: slice | np.ndarray = slice(None) if idx is None else idx
        if spec["num"]:
            blobs = nums_t if idx is None else [nums_t[i] for i in idx.tolist()]
            k = len(spec["num"])
            matrix = np.frombuffer(b"".join(blobs), dtype=np.float64).reshape(-1, k)
            for j, name in enumerate(spec["num"]):
                column = num_cols.setdefault(name, np.full(n, np.nan))
                column[sel] = matrix[:, j]
        if spec["obj"]:
            texts = objs_t if idx is None else [objs_t[i] for i in idx.tolist()]
            parsed = _json_rows(texts)
            matrix_o = np.empty((len(parsed), len(spec["obj"])), dtype=object)
            matrix_o[:] = parsed
            for j, name in enumerate(spec["obj"]):
                column = obj_cols.setdefault(name, np.full(n, None, dtype=object))
                column[sel] = matrix_o[:, j]
                obj_set.setdefault(name, np.zeros(n, dtype=bool))[sel] = True
    for name in set(num_cols) & set(obj_cols):
        # Numeric in some batches, categorical in others: keep every value, as objects.
        merged = obj_cols.pop(name)
        numbers = num_cols.pop(name)
        fill = ~obj_set[name] & ~np.isnan(numbers)
        merged[fill] = numbers[fill]
        obj_cols[name] = merged

    embeddings = _vectors_out(emb_t, n, embedding_dim, np.float32)
    probs = _vectors_out(probs_t, n, n_classes, np.float64)
    labels = np.empty(n, dtype=object)
    if any(t is not None for t in lab_t):
        labels[:] = _json_rows(lab_t)
    features: dict[str, np.ndarray] = {}
    for name, column in num_cols.items():
        if name.startswith("f:"):
            features[name[2:]] = column
    for name, column in obj_cols.items():
        if name.startswith("f:"):
            features[name[2:]] = column
    tags = {name[2:]: c for name, c in obj_cols.items() if name.startswith("t:")}
    return Window(
        ids=ids,
        ts=ts,
        features=features,
        scores=num_cols.get("score"),
        probs=probs,
        predicted=obj_cols.get("predicted"),
        labels=labels,
        embeddings=embeddings,
        latency_ms=num_cols.get("latency_ms"),
        tags=tags,
        versions=versions,
        start=start,
        end=end,
    )


def _vectors_out(
    blobs: Sequence[bytes | None], n: int, dim: int | None, dtype: type[np.floating[Any]]
) -> np.ndarray | None:
    present = np.fromiter((b is not None for b in blobs), dtype=bool, count=n)
    if not present.any():
        return None
    every = bool(present.all())
    chosen = blobs if every else [b for b in blobs if b is not None]
    # bytearray: a writable buffer, so the window's array needs no copy
    flat = np.frombuffer(bytearray().join(chosen), dtype=dtype)  # type: ignore[arg-type]
    width = dim if dim else len(flat) // int(present.sum())
    matrix = flat.reshape(-1, width)
    if every:
        return matrix
    out = np.full((n, width), np.nan, dtype=dtype)
    out[present] = matrix
    return out
