"""Profiles of Arrow data, the one code path every engine runs on its workers.

Spark hands a worker Arrow record batches (``mapInArrow``), Dask a pandas partition (turned into
an Arrow table without copying numbers), a Parquet scan Arrow batches too: each is profiled here
column by column in vectorised numpy and Arrow compute, never row by row, and the profiles are
merged. ``profile_batches`` groups by a partition column (a day, say) in the same pass.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from watchkeeper.profiles import (
    CategoricalSummary,
    EmbeddingSummary,
    NumericSummary,
    Profile,
    RFFMap,
)

CHUNK_ROWS = 262_144
"""Rows gathered from small batches before they are profiled together (fewer, larger merges)."""
MISSING_KEY = "<missing>"


def _is_numeric(pa: Any, dtype: Any) -> bool:
    return bool(pa.types.is_integer(dtype) or pa.types.is_floating(dtype)
                or pa.types.is_boolean(dtype) or pa.types.is_decimal(dtype))


def summarise_arrow(column: Any, *, accuracy: float = 0.01,
                    max_categories: int = 1000) -> NumericSummary | CategoricalSummary:
    """The summary of one Arrow column (array or chunked array), as ``summarise_column``.

    Numbers (integers, floats, booleans, decimals) become a :class:`NumericSummary` with nulls
    and NaN counted missing; anything else is counted by category with Arrow's ``value_counts``
    (nulls missing).

    Examples
    --------
    >>> import pyarrow as pa
    >>> summarise_arrow(pa.array([1, None, 3])).count
    2
    >>> summarise_arrow(pa.array(["a", "b", "a", None])).counts
    {'a': 2, 'b': 1}
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    dtype = column.type
    if pa.types.is_dictionary(dtype):
        column = column.cast(dtype.value_type)
        dtype = column.type
    if _is_numeric(pa, dtype):
        floats = pc.fill_null(pc.cast(column, pa.float64()), float("nan"))
        values = floats.to_numpy(zero_copy_only=False) if hasattr(floats, "to_numpy") else \
            np.asarray(floats)
        return NumericSummary.of(values, accuracy)
    missing = int(column.null_count)
    counted = pc.value_counts(column.drop_null() if hasattr(column, "drop_null") else column)
    keys = counted.field("values").to_pylist()
    counts = counted.field("counts").to_numpy(zero_copy_only=False).tolist()
    table: dict[str, int] = {}
    for k, c in zip(keys, counts, strict=True):  # one entry per distinct value, not per row
        key = str(k)
        table[key] = table.get(key, 0) + int(c)
    return CategoricalSummary.of_counts(table, missing, max_categories)


def profile_arrow(data: Any, *, columns: list[str] | None = None, accuracy: float = 0.01,
                  max_categories: int = 1000) -> Profile:
    """Profile an Arrow table or record batch: every column (or ``columns``) a feature.

    Examples
    --------
    >>> import pyarrow as pa
    >>> p = profile_arrow(pa.table({"x": [1.5, 2.0, None], "c": ["a", "b", "a"]}))
    >>> p.n, p.schema()
    (3, {'c': 'string', 'x': 'float'})
    """
    names = list(columns) if columns is not None else list(data.schema.names)
    missing = [c for c in names if c not in data.schema.names]
    if missing:
        raise ValueError(f"columns: not in the data: {missing}")
    return Profile(
        n=int(data.num_rows),
        features={
            name: summarise_arrow(data.column(name), accuracy=accuracy,
                                  max_categories=max_categories)
            for name in names
        },
    )


def _group_keys(pa: Any, column: Any) -> tuple[list[str], list[Any]]:
    """Distinct values of the partition column, as text keys and as Arrow scalars."""
    import pyarrow.compute as pc

    uniq = pc.unique(column)
    return [MISSING_KEY if v is None else str(v) for v in uniq.to_pylist()], list(uniq)


@dataclass(frozen=True)
class ProfileOptions:
    """What an engine profiles: the one validated plan every engine's workers run.

    ``columns`` are the features; ``by`` the partition column (one profile per value);
    ``time_column`` gives the profiles' ``ts_min``/``ts_max`` (numbers are epoch seconds,
    timestamps and dates are converted); ``embedding`` a column of equal-length number arrays
    summarised as :attr:`Profile.embeddings`, with the random-Fourier sums of ``embedding_map``.
    """

    columns: tuple[str, ...]
    by: str | None = None
    time_column: str | None = None
    embedding: str | None = None
    embedding_map: RFFMap | None = None
    accuracy: float = 0.01
    max_categories: int = 1000

    @classmethod
    def plan(cls, names: Iterable[str], *, columns: Iterable[str] | None = None,
             by: str | None = None, time_column: str | None = None,
             embedding: str | None = None, embedding_map: RFFMap | None = None,
             accuracy: float = 0.01, max_categories: int = 1000) -> ProfileOptions:
        """Validate the request against the data's column names (errors name the argument).

        Without ``columns`` every column but ``by``, ``time_column`` and ``embedding`` is a
        feature.
        """
        have = [str(n) for n in names]
        for arg, value in (("by", by), ("time_column", time_column), ("embedding", embedding)):
            if value is not None and value not in have:
                raise ValueError(f"{arg}: {value!r} is not a column of the data")
        special = {by, time_column, embedding}
        chosen = list(columns) if columns is not None else [c for c in have if c not in special]
        missing = [c for c in chosen if c not in have]
        if missing:
            raise ValueError(f"columns: not in the data: {missing}")
        if not chosen and embedding is None:
            raise ValueError("columns: nothing to profile")
        if embedding_map is not None and not isinstance(embedding_map, RFFMap):
            raise ValueError(f"embedding_map: an RFFMap, got {type(embedding_map).__name__}")
        if not 0 < accuracy < 1:
            raise ValueError(f"accuracy: must be in (0, 1), got {accuracy}")
        if int(max_categories) != max_categories or max_categories < 1:
            raise ValueError(f"max_categories: a positive integer, got {max_categories!r}")
        return cls(tuple(chosen), by, time_column, embedding, embedding_map, accuracy,
                   int(max_categories))

    @property
    def read(self) -> list[str]:
        """Every column the workers need, each once, in a stable order."""
        out = list(self.columns)
        for extra in (self.by, self.time_column, self.embedding):
            if extra is not None and extra not in out:
                out.append(extra)
        return out


def time_seconds(column: Any) -> np.ndarray:
    """Epoch seconds of a number, timestamp or date column (NaN where missing).

    Examples
    --------
    >>> import pyarrow as pa, datetime as dt
    >>> time_seconds(pa.array([dt.datetime(1970, 1, 2), None])).tolist()
    [86400.0, nan]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    dtype = column.type
    if pa.types.is_timestamp(dtype):
        per_second = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}[dtype.unit]
        ints = pc.cast(column, pa.int64())
        scale = 1.0 / per_second
    elif pa.types.is_date(dtype):
        ints = pc.cast(pc.cast(column, pa.date32()), pa.int32())
        scale = 86_400.0
    elif _is_numeric(pa, dtype):
        ints, scale = column, 1.0
    else:
        raise ValueError(f"time_column: numbers, timestamps or dates, not {dtype}")
    floats = pc.fill_null(pc.cast(ints, pa.float64()), float("nan"))
    return np.asarray(floats.to_numpy(zero_copy_only=False), dtype=np.float64) * scale


def embedding_matrix(column: Any) -> np.ndarray:
    """An ``(n, d)`` float matrix of a column of equal-length number lists (NaN rows missing).

    Examples
    --------
    >>> import pyarrow as pa
    >>> embedding_matrix(pa.array([[1.0, 2.0], None, [3.0, 4.0]])).tolist()
    [[1.0, 2.0], [nan, nan], [3.0, 4.0]]
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    dtype = column.type
    if not (pa.types.is_list(dtype) or pa.types.is_large_list(dtype)
            or pa.types.is_fixed_size_list(dtype)):
        raise ValueError(f"embedding: a column of number arrays, not {dtype}")
    present = pc.is_valid(column).to_numpy(zero_copy_only=False)
    lengths = pc.list_value_length(column.filter(pc.is_valid(column)))
    dims = np.unique(lengths.to_numpy(zero_copy_only=False))
    if dims.size > 1:
        raise ValueError(f"embedding: arrays of different lengths {dims[:5].tolist()}")
    out = np.full((len(column), int(dims[0]) if dims.size else 0), np.nan)
    if dims.size:
        flat = pc.list_flatten(column.filter(pc.is_valid(column)))
        values = pc.fill_null(pc.cast(flat, pa.float64()), float("nan"))
        out[present] = values.to_numpy(zero_copy_only=False).reshape(-1, int(dims[0]))
    return out


def _profile_part(part: Any, options: ProfileOptions) -> Profile:
    base = profile_arrow(part, columns=list(options.columns), accuracy=options.accuracy,
                         max_categories=options.max_categories)
    ts_min, ts_max, embeddings = math.inf, -math.inf, None
    if options.time_column is not None:
        ts = time_seconds(part.column(options.time_column))
        ts = ts[np.isfinite(ts)]
        if ts.size:
            ts_min, ts_max = float(ts.min()), float(ts.max())
    if options.embedding is not None:
        matrix = embedding_matrix(part.column(options.embedding))
        if matrix.shape[1]:
            embeddings = EmbeddingSummary.of(matrix, options.embedding_map)
        else:  # every row missing: no dimension to summarise yet
            embeddings = EmbeddingSummary(missing=matrix.shape[0])
    return dataclasses.replace(base, ts_min=ts_min, ts_max=ts_max, embeddings=embeddings)


def profile_batches(
    batches: Iterable[Any],
    *,
    by: str | None = None,
    columns: list[str] | None = None,
    accuracy: float = 0.01,
    max_categories: int = 1000,
    chunk_rows: int = CHUNK_ROWS,
    options: ProfileOptions | None = None,
) -> dict[str, Profile]:
    """Profiles of a stream of record batches, one per value of ``by`` (``{"": p}`` without).

    Small batches are gathered into chunks of about ``chunk_rows`` rows before profiling, so
    the number of merges does not grow with the engine's batch size. ``options`` (a
    :class:`ProfileOptions`) replaces the other arguments and adds time and embedding columns.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    out: dict[str, Profile] = {}
    pending: list[Any] = []
    rows = 0

    def flush() -> None:
        nonlocal pending, rows, options
        if not pending:
            return
        table = pa.Table.from_batches(pending)
        pending, rows = [], 0
        if options is None:
            options = ProfileOptions.plan(table.schema.names, columns=columns, by=by,
                                          accuracy=accuracy, max_categories=max_categories)
        group = options.by
        if group is None:
            groups: Iterator[tuple[str, Any]] = iter([("", table)])
        else:
            if group not in table.schema.names:
                raise ValueError(f"by: {group!r} is not a column of the data")
            keys, values = _group_keys(pa, table.column(group))
            groups = (
                (key, table.filter(pc.is_null(table.column(group)) if value.as_py() is None
                                   else pc.equal(table.column(group), value)))
                for key, value in zip(keys, values, strict=True)
            )
        for key, part in groups:
            p = _profile_part(part, options)
            out[key] = out[key].merge(p) if key in out else p

    for batch in batches:
        if batch.num_rows == 0:
            continue
        pending.append(batch)
        rows += batch.num_rows
        if rows >= chunk_rows:
            flush()
    flush()
    return out


def merge_keyed(parts: Iterable[dict[str, Profile]]) -> dict[str, Profile]:
    """Merge per-key profiles from many workers: one profile per key, keys sorted.

    Examples
    --------
    >>> a = {"d1": Profile(n=2), "d2": Profile(n=1)}
    >>> {k: p.n for k, p in merge_keyed([a, {"d1": Profile(n=3)}]).items()}
    {'d1': 5, 'd2': 1}
    """
    grouped: dict[str, list[Profile]] = {}
    for part in parts:
        for key, p in part.items():
            grouped.setdefault(key, []).append(p)
    return {key: merge_all(ps) for key, ps in sorted(grouped.items())}


def merge_all(profiles: Iterable[Profile]) -> Profile:
    """Merge profiles pairwise in a balanced tree (the order does not change the result)."""
    level = list(profiles)
    if not level:
        return Profile.zero()
    while len(level) > 1:
        level = [level[i].merge(level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    return level[0]


def to_rows(profiles: dict[str, Profile]) -> dict[str, list[Any]]:
    """Keys and serialised profiles, the columns a worker sends to the driver."""
    return {"key": list(profiles), "profile": [p.to_bytes() for p in profiles.values()]}


def from_rows(rows: Iterable[tuple[str, bytes]]) -> dict[str, Profile]:
    """Inverse of :func:`to_rows` over every worker's rows, merged per key."""
    return merge_keyed({key: Profile.from_bytes(bytes(blob))} for key, blob in rows)


def with_embedding_map(options: ProfileOptions, sample: Any) -> ProfileOptions:
    """``options`` with a random-Fourier map fixed before the workers start.

    A map must be the same on every worker (else their sums do not add up), so when the caller
    gave none it is chosen here, once, from ``sample()``: an Arrow column of up to
    :data:`MAP_SAMPLE_ROWS` embeddings (median-heuristic bandwidth, seed 0).
    """
    if options.embedding is None or options.embedding_map is not None:
        return options
    matrix = embedding_matrix(sample())
    matrix = matrix[np.isfinite(matrix).all(axis=1)] if matrix.shape[1] else matrix
    if matrix.shape[0] < 2:
        raise ValueError(f"embedding: fewer than 2 complete rows in {options.embedding!r} to "
                         "choose the random-Fourier map; pass embedding_map")
    return dataclasses.replace(options, embedding_map=RFFMap.from_sample(matrix))


MAP_SAMPLE_ROWS = 1000
"""Embeddings read on the driver to choose a random-Fourier map's bandwidth."""
