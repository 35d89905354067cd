"""Profiles of Arrow data, the one code path every engine runs on its workers.

Spark hands a worker Arrow record batches (``mapInArrow``), Dask a pandas partition (turned into
an Arrow table without copying numbers), a Parquet scan Arrow batches too: each is profiled here
column by column in vectorised numpy and Arrow compute, never row by row, and the profiles are
merged. ``profile_batches`` groups by a partition column (a day, say) in the same pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from watchkeeper.profiles import CategoricalSummary, NumericSummary, Profile

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


def profile_batches(
    batches: Iterable[Any],
    *,
    by: str | None = None,
    columns: list[str] | None = None,
    accuracy: float = 0.01,
    max_categories: int = 1000,
    chunk_rows: int = CHUNK_ROWS,
) -> dict[str, Profile]:
    """Profiles of a stream of record batches, one per value of ``by`` (``{"": p}`` without).

    Small batches are gathered into chunks of about ``chunk_rows`` rows before profiling, so
    the number of merges does not grow with the engine's batch size.
    """
    import pyarrow as pa
    import pyarrow.compute as pc

    out: dict[str, Profile] = {}
    pending: list[Any] = []
    rows = 0

    def flush() -> None:
        nonlocal pending, rows
        if not pending:
            return
        table = pa.Table.from_batches(pending)
        pending, rows = [], 0
        names = columns if columns is not None else [c for c in table.schema.names if c != by]
        if by is None:
            groups: Iterator[tuple[str, Any]] = iter([("", table)])
        else:
            if by not in table.schema.names:
                raise ValueError(f"by: {by!r} is not a column of the data")
            keys, values = _group_keys(pa, table.column(by))
            groups = (
                (key, table.filter(pc.is_null(table.column(by)) if value.as_py() is None
                                   else pc.equal(table.column(by), value)))
                for key, value in zip(keys, values, strict=True)
            )
        for key, part in groups:
            p = profile_arrow(part, columns=names, accuracy=accuracy,
                              max_categories=max_categories)
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


def merge_all(profiles: Iterable[Profile]) -> Profile:
    """Merge profiles pairwise in a balanced tree (the order does not change the result)."""
    level = list(profiles)
    if not level:
        return Profile.zero()
    while len(level) > 1:
        level = [level[i].merge(level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    return level[0]
