"""Profiles of Dask DataFrames: one profile per partition, merged in a tree by Dask.

Each partition (a pandas DataFrame) becomes an Arrow table and goes through the same
:func:`watchkeeper.engines.profile_batches` as Spark's batches; profiles merge pairwise in a
tree of delayed tasks, so the scheduler never holds more than a few at once.
"""

from __future__ import annotations

from typing import Any

from watchkeeper.engines._arrow import (
    MAP_SAMPLE_ROWS,
    ProfileOptions,
    merge_keyed,
    profile_batches,
    with_embedding_map,
)
from watchkeeper.engines._missing import require
from watchkeeper.profiles import Profile, RFFMap


def _to_arrow(pdf: Any) -> Any:
    import pyarrow as pa

    return pa.Table.from_pandas(pdf, preserve_index=False)


def _partition(pdf: Any, options: ProfileOptions) -> dict[str, Profile]:
    return profile_batches(_to_arrow(pdf).to_batches(), options=options)


def _merge(a: dict[str, Profile], b: dict[str, Profile]) -> dict[str, Profile]:
    return merge_keyed([a, b])


def profile_by(
    ddf: Any,
    by: str | None,
    *,
    columns: list[str] | None = None,
    time_column: str | None = None,
    embedding: str | None = None,
    embedding_map: RFFMap | None = None,
    accuracy: float = 0.01,
    max_categories: int = 1000,
) -> dict[str, Profile]:
    """One profile per value of ``by`` (``{"": p}`` without), as the Spark engine's.

    The options are those of :func:`watchkeeper.engines.spark.profile_by`.
    """
    require("dask.dataframe", "dask")
    from dask.base import compute
    from dask.delayed import delayed

    options = ProfileOptions.plan(
        [str(c) for c in ddf.columns], columns=columns, by=by, time_column=time_column,
        embedding=embedding, embedding_map=embedding_map, accuracy=accuracy,
        max_categories=max_categories)
    selected = ddf[options.read]

    def sample() -> Any:
        head = selected[embedding].dropna().head(MAP_SAMPLE_ROWS, npartitions=-1)
        return _to_arrow(head.to_frame()).column(0)

    options = with_embedding_map(options, sample)
    level = [delayed(_partition)(part, options) for part in selected.to_delayed()]
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
    time_column: str | None = None,
    embedding: str | None = None,
    embedding_map: RFFMap | None = None,
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
    return profile_by(ddf, None, columns=columns, time_column=time_column,
                      embedding=embedding, embedding_map=embedding_map, accuracy=accuracy,
                      max_categories=max_categories).get("", Profile.zero())
