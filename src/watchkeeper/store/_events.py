"""Events between a :class:`~watchkeeper.window.Window` and ``events`` / ``event_chunks``.

Layout (docs/store.md says why): each accepted batch becomes one *chunk* row holding its values
column by column, and each event one narrow row of ``events`` holding the idempotency key
(model, id), its time, version, and its position in the chunk. A chunk is encoded along a
*feature schema* (names and order of the batch's columns, stored once in ``feature_schemas``):

- ``nums``: score, latency and numeric features as one ``n x k`` float64 matrix of bytes;
- ``objs``: predicted label, categorical features and tags as one JSON list of columns;
- ``embeddings`` (``n x d`` float32 bytes) and ``probs`` (``n x k`` float64 bytes), NaN rows
  where an event had none, NULL when no event of the batch had any.

Reading a window selects the index rows (a range scan on ``(model, ts)``), fetches the few
chunks they point into, decodes each with one ``np.frombuffer`` / ``json.loads``, and gathers
the rows with one fancy index per column: no Python object per event on the way out except
the ids and versions the window must hold anyway.

Validation happens here, before any transaction opens: a bad batch raises ValueError naming
the field (and the first offending index) and nothing is written.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from watchkeeper.store._codec import canonical, dumps
from watchkeeper.window import Window

MAX_ID = 256
MAX_NAME = 128
_SCALARS = (str, int, float, bool, type(None), np.str_, np.integer, np.floating, np.bool_)


@dataclass
class EncodedBatch:
    """A validated batch: index columns (deduplicated within the batch) and its chunk."""

    ids: list[str]
    ts: list[float]
    versions: list[Any]
    spec: dict[str, Any]
    spec_hash: str
    n_in: int
    nums: bytes | None = None
    objs: str | None = None
    embeddings: bytes | None = None
    embedding_dim: int | None = None
    probs: bytes | None = None
    n_classes: int | None = None
    ids_json: str = "[]"
    ts_bytes: bytes = b""
    versions_json: str = "[]"

    def __len__(self) -> int:
        return len(self.ids)


class Chunk(NamedTuple):
    """One stored chunk as the read path needs it."""

    schema_id: int
    n_rows: int
    nums: bytes | None
    objs: str | None
    embeddings: bytes | None
    embedding_dim: int | None
    probs: bytes | None
    n_classes: int | None
    ids: str
    ts: bytes
    versions: str


def first_bad(mask: Any) -> int:
    """Index of the first True of a boolean mask."""
    return int(np.flatnonzero(mask)[0])


def check_name(value: Any, what: str, limit: int = MAX_NAME) -> str:
    """A non-empty string of at most ``limit`` characters, or ValueError naming ``what``."""
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ValueError(
            f"{what}: expected a non-empty string of at most {limit} characters, got {value!r}"
        )
    if "\x00" in value:
        raise ValueError(f"{what}: NUL characters are not allowed")
    return value


def refuse_nul(encoded: str, columns: Mapping[str, Sequence[Any]]) -> None:
    """ValueError naming the first value holding a NUL character, if the JSON text has one.

    PostgreSQL's text columns cannot hold NUL, and SQLite would store what PostgreSQL refuses:
    both backends refuse it here, before any transaction. The scan runs once over the JSON text
    the batch is stored as (JSON always escapes NUL as ``\\u0000``); only a hit pays for the
    search of which field it came from.
    """
    if "\\u0000" not in encoded:
        return
    for what, values in columns.items():
        for i, value in enumerate(values):
            if isinstance(value, str) and "\x00" in value:
                raise ValueError(f"{what}[{i}]: NUL characters are not allowed")


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


def encode_events(events: Any) -> EncodedBatch:
    """Validate a window and encode it as index columns plus one columnar chunk."""
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
    emb = (
        None
        if events.embeddings is None
        else _vectors(events.embeddings, "embeddings", n, np.float32)
    )
    probs = None if events.probs is None else _vectors(events.probs, "probs", n, np.float64)

    # Within the batch the first occurrence of an id wins (the database drops known ids);
    # rows are kept in time order, so a time window covers a contiguous range of each chunk.
    keep: np.ndarray | None = None
    if n:
        _, first = np.unique(ids.astype(str), return_index=True)
        order = np.sort(first)
        order = order[np.argsort(ts[order], kind="stable")]
        if len(order) < n or bool((order != np.arange(n)).any()):
            keep = order

    def rows(a: np.ndarray) -> np.ndarray:
        return a if keep is None else a[keep]

    def items(values: list[Any]) -> list[Any]:
        return values if keep is None else [values[i] for i in keep.tolist()]

    spec = {"num": num_names, "obj": obj_names}
    out = EncodedBatch(
        ids=items(ids.tolist()),
        ts=rows(ts).tolist(),
        versions=items(versions),
        spec=spec,
        spec_hash=hashlib.sha256(canonical(spec).encode()).hexdigest(),
        n_in=n,
    )
    out.ids_json = dumps(out.ids)
    refuse_nul(out.ids_json, {"ids": out.ids})
    out.ts_bytes = np.asarray(out.ts, dtype=np.float64).tobytes()
    # one version for the whole batch (the usual case) is stored once, not once per event
    uniform = len(set(out.versions)) <= 1
    out.versions_json = dumps(out.versions[0] if uniform and n else out.versions)
    refuse_nul(out.versions_json, {"versions": out.versions})
    if num_cols and n:
        out.nums = np.ascontiguousarray(rows(np.column_stack(num_cols))).tobytes()
    if obj_cols and n:
        out.objs = dumps([items(c) for c in obj_cols])
        named = zip(map(_field_name, obj_names), obj_cols, strict=True)
        refuse_nul(out.objs, {name: items(column) for name, column in named})
    if emb is not None and emb.shape[1] and not np.isnan(emb).all():
        out.embeddings = np.ascontiguousarray(rows(emb)).tobytes()
        out.embedding_dim = int(emb.shape[1])
    if probs is not None and probs.shape[1] and not np.isnan(probs).all():
        out.probs = np.ascontiguousarray(rows(probs)).tobytes()
        out.n_classes = int(probs.shape[1])
    return out


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
    refuse_nul(dumps(list(last)) + "".join(last.values()),
               {"ids": id_array.tolist(), "labels": values})  # fmt: skip
    return list(last), list(last.values())


def _field_name(stored: str) -> str:
    """The caller's name of an object column stored as ``predicted``, ``f:name`` or ``t:name``."""
    kind, _, name = stored.partition(":")
    return {"f": f"features.{name}", "t": f"tags.{name}"}.get(kind, stored) if name else stored


def _objects(values: Sequence[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out


def decode_window(
    parts: Sequence[Chunk],
    positions: Sequence[np.ndarray],
    labels: Sequence[tuple[int, int, str]],
    specs: Mapping[int, Mapping[str, list[str]]],
    *,
    embedding_dim: int | None,
    n_classes: int | None,
    last_n: int | None,
    start: float | None,
    end: float | None,
) -> Window:
    """The events at ``positions`` (row numbers, one array per chunk in ``parts``) as a window
    ordered by time (ties in storage order), keeping the last ``last_n`` if given.

    Each column is decoded once per chunk into one array for all chunks, then the window's rows
    are taken with one fancy index. ``labels`` are ``(part index, row, JSON label)``.
    """
    sizes = np.array([c.n_rows for c in parts], dtype=np.int64)
    offsets = np.cumsum(sizes) - sizes
    total = int(sizes.sum())
    gpos = (
        np.concatenate([offsets[i] + p for i, p in enumerate(positions)])
        if parts
        else np.empty(0, dtype=np.int64)
    )
    ts_all = np.empty(total)
    ids_all = np.empty(total, dtype=object)
    versions_all = np.empty(total, dtype=object)
    for part, o, n in zip(parts, offsets.tolist(), sizes.tolist(), strict=True):
        ts_all[o : o + n] = np.frombuffer(part.ts, dtype=np.float64)
        ids_all[o : o + n] = json.loads(part.ids)
        versions_all[o : o + n] = json.loads(part.versions)  # a list, or one for all rows
    gpos = gpos[np.lexsort((gpos, ts_all[gpos]))]
    if last_n is not None:
        gpos = gpos[-last_n:]
    everything = len(gpos) == total and bool((gpos == np.arange(total)).all())

    def take(full: np.ndarray) -> np.ndarray:
        return full if everything else full[gpos]

    num_cols: dict[str, np.ndarray] = {}
    obj_cols: dict[str, np.ndarray] = {}
    obj_set: dict[str, np.ndarray] = {}
    for part, o, n in zip(parts, offsets.tolist(), sizes.tolist(), strict=True):
        spec = specs[part.schema_id]
        if spec["num"] and part.nums is not None:
            k = len(spec["num"])
            matrix = np.frombuffer(part.nums, dtype=np.float64).reshape(n, k)
            for j, name in enumerate(spec["num"]):
                if name not in num_cols:
                    num_cols[name] = np.full(total, np.nan)
                num_cols[name][o : o + n] = matrix[:, j]
        if spec["obj"] and part.objs is not None:
            for name, values in zip(spec["obj"], json.loads(part.objs), strict=True):
                if name not in obj_cols:
                    obj_cols[name] = np.full(total, None, dtype=object)
                    obj_set[name] = np.zeros(total, dtype=bool)
                obj_cols[name][o : o + n] = values
                obj_set[name][o : o + n] = True
    for name in set(num_cols) & set(obj_cols):
        # Numeric in some batches, categorical in others: keep every value, as objects.
        merged = obj_cols.pop(name)
        numbers = num_cols.pop(name)
        fill = ~obj_set[name] & ~np.isnan(numbers)
        merged[fill] = numbers[fill]
        obj_cols[name] = merged

    labels_all = np.full(total, None, dtype=object)
    if labels:
        where = np.array([offsets[i] + row for i, row, _ in labels], dtype=np.int64)
        # One parse for all labels instead of one per label.
        labels_all[where] = _objects(json.loads("[" + ",".join(t for _, _, t in labels) + "]"))

    embeddings = _vectors_full(
        [(c.embeddings, c.embedding_dim) for c in parts], sizes, embedding_dim, np.float32
    )
    probs = _vectors_full([(c.probs, c.n_classes) for c in parts], sizes, n_classes, np.float64)
    features = {name[2:]: take(c) for name, c in num_cols.items() if name.startswith("f:")}
    features.update({name[2:]: take(c) for name, c in obj_cols.items() if name.startswith("f:")})
    ts = take(ts_all)
    if len(ts):
        start = float(ts[0]) if start is None else start
        end = float(ts[-1]) if end is None else end
    return Window(
        ids=take(ids_all),
        ts=ts,
        features=features,
        scores=None if "score" not in num_cols else take(num_cols["score"]),
        probs=None if probs is None else take(probs),
        predicted=None if "predicted" not in obj_cols else take(obj_cols["predicted"]),
        labels=take(labels_all),
        embeddings=None if embeddings is None else take(embeddings),
        latency_ms=None if "latency_ms" not in num_cols else take(num_cols["latency_ms"]),
        tags={name[2:]: take(c) for name, c in obj_cols.items() if name.startswith("t:")},
        versions=take(versions_all),
        start=start,
        end=end,
    )


def _vectors_full(
    parts: Sequence[tuple[bytes | None, int | None]],
    sizes: np.ndarray,
    width: int | None,
    dtype: type[np.floating[Any]],
) -> np.ndarray | None:
    widths = {w for blob, w in parts if blob is not None and w}
    if not widths:
        return None
    d = width or max(widths)
    total = int(sizes.sum())
    if len(parts) == 1 and parts[0][0] is not None:
        # bytearray: a writable buffer, so the window's array needs no copy
        return np.frombuffer(bytearray(parts[0][0]), dtype=dtype).reshape(total, d)
    out = np.full((total, d), np.nan, dtype=dtype)
    o = 0
    for (blob, w), n in zip(parts, sizes.tolist(), strict=True):
        if blob is not None and w == d:
            out[o : o + n] = np.frombuffer(blob, dtype=dtype).reshape(n, d)
        o += n
    return out
