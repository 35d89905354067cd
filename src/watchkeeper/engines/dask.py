"""Profiles of Dask DataFrames: one profile per partition, merged in a tree by Dask.

Each partition (a pandas DataFrame) becomes an Arrow table and goes through the same
:func:`watchkeeper.engines.profile_batches` as Spark's batches; profiles merge pairwise in a
tree of delayed tasks, so the scheduler never holds more than a few at once.
"""

from __future__ import annotations

from typing import Any

from watchkeeper.engines._arrow import profile_batches
from watchkeeper.engines._missing import require
from watchkeeper.profiles import Profile


def _partition(pdf: Any, by: str | None, columns: list[str], accuracy: float,
               max_categories: int) -> dict[str, Profile]:
    import pyarrow as pa

    table = pa.Table.from_pandas(pdf, preserve_index=False)
    return profile_batches(table.to_batches(), by=by, columns=columns, accuracy=accuracy,
                           max_categories=max_categories)


def _merge(a: dict[str, Profile], b: dict[str, Profile]) -> dict[str, Profile]:
    out = dict(a)
    for key, p in b.items():
        out[key] = out[key].merge(p) if key in out else p
    return out


def profile_by(
    ddf: Any,
    by: str | None,
    *,
    columns: list[str] | None = None,
    accuracy: float = 0.01,
    max_categories: int = 1000,
) -> dict[str, Profile]:
    """One profile per value of ``by`` (``{"": p}`` without), as the Spark engine's."""
    require("dask.dataframe", "dask")
    from dask.base import compute
    from dask.delayed import delayed

    names = [str(c) for c in ddf.columns]
    if by is not None and by not in names:
        raise ValueError(f"by: {by!r} is not a column of the DataFrame")
    chosen = list(columns) if columns is not None else [c for c in names if c != by]
    missing = [c for c in chosen if c not in names]
    if missing:
        raise ValueError(f"columns: not in the DataFrame: {missing}")
    if not chosen:
        raise ValueError("columns: nothing to profile")
    selected = ddf[chosen + ([by] if by is not None else [])]
    level = [delayed(_partition)(part, by, chosen, accuracy, max_categories)
             for part in selected.to_delayed()]
    if not level:
        return {}
    while len(level) > 1:
        level = [delayed(_merge)(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
                 for i in range(0, len(level), 2)]
    (out,) = compute(level[0])  # type: ignore[no-untyped-call]
    return dict(sorted(out.items()))


def profile(
    ddf: Any,
    *,
    columns: list[str] | None = None,
    accuracy: float = 0.01,
    max_categories: int = 1000,
) -> Profile:
    """The profile of a Dask DataFrame (every column, or ``columns``, as a feature).

    Examples
    --------
    >>> import dask.dataframe as dd, pandas as pd
    >>> ddf = dd.from_pandas(pd.DataFrame({"x": [1.0, 2.0, 3.0, 4.0]}), npartitions=2)
    >>> profile(ddf).features["x"].count
    4
    """
    return profile_by(ddf, None, columns=columns, accuracy=accuracy,
                      max_categories=max_categories).get("", Profile.zero())
