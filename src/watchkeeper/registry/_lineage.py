"""Lineage of a model version: the data it was trained and validated on (content hashes of the
files, row counts, time range), the code (git commit), its parent version, parameters and
validation metrics; and the chain of parents back to the first version."""

from __future__ import annotations

import hashlib
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from watchkeeper.registry._artifacts import canonical_json, hash_file

MAX_DATA_FILES = 10_000
MAX_CHAIN = 1_000


def _files(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    items = [paths] if isinstance(paths, str | Path) else list(paths)
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out.extend(
                sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
            )
        elif p.is_file():
            out.append(p)
        else:
            raise ValueError(f"data: {str(item)!r} is not a file or a directory")
        if len(out) > MAX_DATA_FILES:
            raise ValueError(f"data: more than {MAX_DATA_FILES} files")
    if not out:
        raise ValueError("data: no file found")
    return out


def _rows_and_range(path: Path, time_column: str | None) -> tuple[int | None, list[float] | None]:
    if path.suffix.lower() != ".parquet":
        return None, None
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    rows = int(meta.num_rows)
    if time_column is None:
        return rows, None
    if time_column not in pq.ParquetFile(path).schema_arrow.names:
        raise ValueError(f"time_column: {path.name} has no column {time_column!r}")
    col = pq.read_table(path, columns=[time_column]).column(0)
    if col.null_count == len(col):
        return rows, None
    bounds = pc.min_max(col)
    lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
    if hasattr(lo, "timestamp"):
        lo, hi = lo.timestamp(), hi.timestamp()
    return rows, [float(lo), float(hi)]


def data_fingerprint(
    paths: str | Path | Sequence[str | Path], *, time_column: str | None = None
) -> dict[str, Any]:
    """The fingerprint of a data set, in the DVC manner: each file's SHA-256 and size, and for
    Parquet its row count and (with ``time_column``) the time range it covers; ``digest`` names
    the whole set.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "a.csv").write_text("x\\n1\\n")
    >>> fp = data_fingerprint(d)
    >>> [f["path"] for f in fp["files"]], len(fp["digest"])
    (['a.csv'], 64)
    """
    files = _files(paths)
    base = Path(paths) if isinstance(paths, str | Path) and Path(paths).is_dir() else None
    entries = []
    total_rows: int | None = 0
    lo = hi = None
    for f in files:
        sha, size = hash_file(f)
        rows, span = _rows_and_range(f, time_column)
        name = f.relative_to(base).as_posix() if base is not None else f.name
        entries.append(
            {"path": name, "sha256": sha, "size": size, "rows": rows, "time_range": span}
        )
        total_rows = None if rows is None or total_rows is None else total_rows + rows
        if span is not None:
            lo = span[0] if lo is None else min(lo, span[0])
            hi = span[1] if hi is None else max(hi, span[1])
    core = [{"path": e["path"], "sha256": e["sha256"]} for e in entries]
    return {
        "digest": hashlib.sha256(canonical_json(core).encode()).hexdigest(),
        "files": entries,
        "rows": total_rows,
        "time_range": None if lo is None else [lo, hi],
    }


def git_commit(path: str | Path = ".") -> dict[str, Any] | None:
    """The git commit checked out at ``path`` and whether the tree has uncommitted changes, or
    None outside a git repository (or without git)."""
    try:
        head = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "HEAD"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
        dirty = subprocess.run(
            ["git", "-C", str(path), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return {"git_commit": head, "dirty": bool(dirty)}


def _numbers(value: Any, what: str) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise ValueError(f"{what}: expected a dict, got {type(value).__name__}")
    return dict(value)


def record_lineage(
    store: Any,
    project: str,
    model: str,
    version: str,
    *,
    training_data: str | Path | Sequence[str | Path] | None = None,
    validation_data: str | Path | Sequence[str | Path] | None = None,
    time_column: str | None = None,
    parent: str | None = None,
    params: Mapping[str, Any] | None = None,
    metrics: Mapping[str, Any] | None = None,
    code: str | Path | Mapping[str, Any] | None = ".",
    windows: Sequence[Sequence[float]] | None = None,
) -> dict[str, Any]:
    """Record a version's lineage (the version is registered if new) and return it.

    ``code`` is a directory whose git commit is taken (default: the working directory), a dict
    given as is, or None. ``windows`` are the ``[start, end]`` production windows the training
    data came from (as the retraining loop knows them). The training data's digest is also
    stored as the version's ``data_fingerprint``.
    """
    if parent is not None:
        if parent == version:
            raise ValueError("parent: a version cannot be its own parent")
        try:
            store.get_model_version(project, model, parent)
        except KeyError:
            raise ValueError(f"parent: model {model!r} has no version {parent!r}") from None
    lineage: dict[str, Any] = {
        "parent": parent,
        "params": _numbers(params, "params"),
        "metrics": _numbers(metrics, "metrics"),
        "recorded_at": time.time(),
    }
    if isinstance(code, Mapping):
        lineage["code"] = dict(code)
    elif code is not None:
        lineage["code"] = git_commit(code)
    data: dict[str, Any] = {}
    if training_data is not None:
        data["training"] = data_fingerprint(training_data, time_column=time_column)
    if validation_data is not None:
        data["validation"] = data_fingerprint(validation_data, time_column=time_column)
    if windows is not None:
        spans = [[float(a), float(b)] for a, b in windows]
        if any(b < a for a, b in spans):
            raise ValueError("windows: each window is [start, end] with start <= end")
        data["windows"] = spans[:10_000]
    lineage["data"] = data
    store.register_model_version(
        project,
        model,
        version,
        data_fingerprint=data["training"]["digest"] if "training" in data else None,
    )
    store.put_version_registry(project, model, version, lineage=lineage)
    return lineage


def lineage_chain(store: Any, project: str, model: str, version: str) -> list[dict[str, Any]]:
    """The version's record and its ancestors', newest first, each with its ``lineage``.

    Examples
    --------
    >>> from watchkeeper.store import Store
    >>> s = Store("sqlite://")
    >>> _ = record_lineage(s, "p", "m", "v1", params={"lr": 0.1}, code=None)
    >>> _ = record_lineage(s, "p", "m", "v2", parent="v1", metrics={"auc": 0.91}, code=None)
    >>> [(r["version"], r["lineage"]["parent"]) for r in lineage_chain(s, "p", "m", "v2")]
    [('v2', 'v1'), ('v1', None)]
    >>> s.close()
    """
    chain: list[dict[str, Any]] = []
    seen: set[str] = set()
    current: str | None = version
    while current is not None and current not in seen and len(chain) < MAX_CHAIN:
        seen.add(current)
        record = store.get_model_version(project, model, current)
        chain.append(record)
        current = (record.get("lineage") or {}).get("parent")
    return chain
