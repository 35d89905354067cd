"""Profiles of Spark DataFrames: ``mapInArrow`` on the executors, one merge on the driver.

Every executor task profiles its partition's Arrow batches with
:func:`watchkeeper.engines.profile_batches` and emits one row per group: the group key and the
serialised profile (a few kilobytes per column, whatever the number of rows). The driver
collects those rows and merges them. Executors need ``watchkeeper`` importable (installed on
the cluster, or on ``PYTHONPATH`` for ``local[*]``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from watchkeeper.engines._arrow import merge_all, profile_batches
from watchkeeper.engines._missing import require
from watchkeeper.profiles import Profile

OUTPUT_SCHEMA = "key string, profile binary"


def _validate(df: Any, columns: list[str] | None, by: str | None) -> list[str]:
    names = list(df.columns)
    if by is not None and by not in names:
        raise ValueError(f"by: {by!r} is not a column of the DataFrame")
    chosen = list(columns) if columns is not None else [c for c in names if c != by]
    missing = [c for c in chosen if c not in names]
    if missing:
        raise ValueError(f"columns: not in the DataFrame: {missing}")
    if not chosen:
        raise ValueError("columns: nothing to profile")
    return chosen


def profile_by(
    df: Any,
    by: str | None,
    *,
    columns: list[str] | None = None,
    accuracy: float = 0.01,
    max_categories: int = 1000,
) -> dict[str, Profile]:
    """One profile per value of column ``by`` (a day, say), in one pass over ``df``.

    Parameters
    ----------
    df
        A ``pyspark.sql.DataFrame``.
    by
        The partition column (its values become text keys; nulls ``"<missing>"``), or None for
        one profile under the key ``""``.
    columns
        The features to profile (default: every column but ``by``).
    accuracy, max_categories
        Relative accuracy of the quantile sketches; categories counted exactly per column.
    """
    require("pyspark", "spark")
    chosen = _validate(df, columns, by)
    selected = df.select(*chosen, *([by] if by is not None else []))

    def per_partition(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        profiles = profile_batches(batches, by=by, columns=chosen, accuracy=accuracy,
                                   max_categories=max_categories)
        if profiles:
            yield pa.RecordBatch.from_pydict(
                {"key": list(profiles), "profile": [p.to_bytes() for p in profiles.values()]},
                schema=pa.schema([("key", pa.string()), ("profile", pa.binary())]),
            )

    rows = selected.mapInArrow(per_partition, OUTPUT_SCHEMA).collect()
    grouped: dict[str, list[Profile]] = {}
    for row in rows:
        grouped.setdefault(row["key"], []).append(Profile.from_bytes(bytes(row["profile"])))
    return {key: merge_all(parts) for key, parts in sorted(grouped.items())}


def profile(
    df: Any,
    *,
    columns: list[str] | None = None,
    accuracy: float = 0.01,
    max_categories: int = 1000,
) -> Profile:
    """The profile of a Spark DataFrame (every column, or ``columns``, as a feature).

    Parameters
    ----------
    df
        A ``pyspark.sql.DataFrame``.
    columns
        The features to profile.
    accuracy
        Relative accuracy of the quantile sketches (as ``watchkeeper.profiles.profile``).
    max_categories
        Categories counted exactly per column; the rarer ones are pooled beyond it.

    Returns
    -------
    Profile
        Equal to the in-memory profile of the same rows (exact counts, moments, ranges, sketch
        buckets; sums of floats up to rounding).
    """
    parts = profile_by(df, None, columns=columns, accuracy=accuracy,
                       max_categories=max_categories)
    return parts.get("", Profile.zero())
