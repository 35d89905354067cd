"""Bytes for a whole :class:`~watchkeeper.window.Window` (reference sets) and JSON helpers.

Format: ``b"WKW1"``, a 4-byte little-endian header length, a JSON header, then the raw buffers
of the numeric columns back to back. Numeric columns keep their dtype (``float32`` embeddings
stay 4 bytes a value); object columns (ids, categorical features, labels) go in the header as
JSON lists. No pickle, so loading a reference never runs code.
"""

from __future__ import annotations

import json
import math
import struct
from typing import Any

import numpy as np

from watchkeeper.window import Window

MAGIC = b"WKW1"


def json_default(value: Any) -> Any:
    """``json.dumps`` fallback for numpy scalars and arrays."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def dumps(value: Any) -> str:
    """JSON text, numpy scalars allowed, NaN written as ``NaN`` (read back by :func:`loads`)."""
    return json.dumps(value, default=json_default, separators=(",", ":"))


def canonical(value: Any) -> str:
    """JSON with sorted keys, the input of a content hash."""
    return json.dumps(value, default=json_default, sort_keys=True, separators=(",", ":"))


def clean_floats(value: Any) -> Any:
    """NaN and infinities replaced by None, recursively (for JSON that must be strict)."""
    if isinstance(value, float | np.floating):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, dict):
        return {k: clean_floats(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_floats(v) for v in value]
    return value


def _fields(window: Window) -> list[tuple[str, np.ndarray | None]]:
    out: list[tuple[str, np.ndarray | None]] = [
        ("ids", window.ids),
        ("ts", window.ts),
        ("scores", window.scores),
        ("probs", window.probs),
        ("predicted", window.predicted),
        ("labels", window.labels),
        ("embeddings", window.embeddings),
        ("latency_ms", window.latency_ms),
        ("versions", window.versions),
    ]
    out += [(f"features.{k}", v) for k, v in window.features.items()]
    out += [(f"tags.{k}", v) for k, v in window.tags.items()]
    return out


def window_to_bytes(window: Window) -> bytes:
    """Encode a window; raises ValueError naming a column that cannot be encoded."""
    columns: list[dict[str, Any]] = []
    buffers: list[bytes] = []
    offset = 0
    for name, column in _fields(window):
        if column is None:
            continue
        array = np.asarray(column)
        if array.dtype.kind in "biuf":
            data = np.ascontiguousarray(array).tobytes()
            columns.append(
                {
                    "name": name,
                    "dtype": array.dtype.str,
                    "shape": list(array.shape),
                    "offset": offset,
                    "nbytes": len(data),
                }
            )
            buffers.append(data)
            offset += len(data)
        else:
            try:
                values = json.loads(dumps(array.tolist()))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name}: values cannot be stored ({exc})") from None
            columns.append({"name": name, "values": values})
    header = dumps({"columns": columns, "start": window.start, "end": window.end}).encode()
    return MAGIC + struct.pack("<I", len(header)) + header + b"".join(buffers)


def window_from_bytes(data: bytes) -> Window:
    """Decode what :func:`window_to_bytes` wrote."""
    if data[:4] != MAGIC:
        raise ValueError("reference: not a stored window (bad magic bytes)")
    (size,) = struct.unpack("<I", data[4:8])
    header = json.loads(data[8 : 8 + size])
    body = memoryview(data)[8 + size :]
    cols: dict[str, np.ndarray] = {}
    for spec in header["columns"]:
        if "values" in spec:
            array = np.empty(len(spec["values"]), dtype=object)
            array[:] = spec["values"]
        else:
            start = spec["offset"]
            raw = body[start : start + spec["nbytes"]]
            array = np.frombuffer(raw, dtype=np.dtype(spec["dtype"])).reshape(spec["shape"]).copy()
        cols[spec["name"]] = array
    return Window(
        ids=cols["ids"],
        ts=cols["ts"],
        features={k[9:]: v for k, v in cols.items() if k.startswith("features.")},
        scores=cols.get("scores"),
        probs=cols.get("probs"),
        predicted=cols.get("predicted"),
        labels=cols.get("labels"),
        embeddings=cols.get("embeddings"),
        latency_ms=cols.get("latency_ms"),
        tags={k[5:]: v for k, v in cols.items() if k.startswith("tags.")},
        versions=cols.get("versions"),
        start=header.get("start"),
        end=header.get("end"),
    )
