"""Profiles of Spark DataFrames and Parquet tables: Python workers profile Arrow batches, the
driver merges one small profile per task.

Two ways in, the same profiles out:

* :func:`profile` / :func:`profile_by` take any DataFrame (filters, joins, any source) and use
  ``mapInArrow``: the JVM turns its rows into Arrow batches of :data:`BATCH_ROWS` rows for the
  Python workers.
* :func:`profile_parquet` takes a Parquet path: Spark only schedules the tasks, each task reads
  its files with Arrow itself (only the columns asked for) and profiles them; no row crosses
  from the JVM to Python, which is most of ``mapInArrow``'s cost. The files must be readable
  from every executor (a shared or object-store path, or ``local[*]``).

Each task emits one row per group (the key and the compressed profile, a few kilobytes per
column whatever the rows). Executors need ``watchkeeper`` importable (installed on the
cluster, or on ``PYTHONPATH`` for ``local[*]``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from watchkeeper.engines._arrow import (
    MAP_SAMPLE_ROWS,
    ProfileOptions,
    from_rows,
    profile_batches,
    to_rows,
    with_embedding_map,
)
from watchkeeper.engines._missing import require
from watchkeeper.profiles import Profile, RFFMap

OUTPUT_SCHEMA = "key string, profile binary"
BATCH_ROWS = 100_000
"""Rows per Arrow batch from the JVM (Spark's default is 10,000): fewer, larger transfers and
numpy calls. Memory per worker is about ``BATCH_ROWS`` × the row width."""


@contextlib.contextmanager
def _conf(session: Any, key: str, value: str) -> Iterator[None]:
    """Set one SQL option for the job, then put the caller's value back."""
    before = session.conf.get(key, None)
    session.conf.set(key, value)
    try:
        yield
    finally:
        if before is None:
            session.conf.unset(key)
        else:
            session.conf.set(key, before)


def profile_by(
    df: Any,
    by: str | None,
    *,
    columns: list[str] | None = None,
    time_column: str | None = None,
    embedding: str | None = None,
    embedding_map: RFFMap | None = None,
    accuracy: float = 0.01,
    max_categories: int = 1000,
    batch_rows: int = BATCH_ROWS,
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
        The features to profile (default: every column but ``by``, ``time_column`` and
        ``embedding``).
    time_column
        Event times (epoch seconds, timestamps or dates): the profiles' ``ts_min``/``ts_max``.
    embedding
        A column of equal-length number arrays, summarised as ``Profile.embeddings`` with the
        random-Fourier sums of ``embedding_map`` (default: a map chosen from its first
        1,000 rows; to compare with a reference, pass ``reference.embeddings.rff_map``).
    accuracy, max_categories
        Relative accuracy of the quantile sketches; categories counted exactly per column.
    batch_rows
        ``spark.sql.execution.arrow.maxRecordsPerBatch`` for this job.
    """
    require("pyspark", "spark")
    if int(batch_rows) != batch_rows or batch_rows < 1:
        raise ValueError(f"batch_rows: a positive integer, got {batch_rows!r}")
    options = ProfileOptions.plan(
        list(df.columns), columns=columns, by=by, time_column=time_column, embedding=embedding,
        embedding_map=embedding_map, accuracy=accuracy, max_categories=max_categories)
    selected = df.select(*options.read)

    def sample() -> Any:
        import pyarrow as pa

        rows = (selected.select(embedding).where(f"`{embedding}` IS NOT NULL")
                .limit(MAP_SAMPLE_ROWS).collect())
        return pa.array([list(r[0]) for r in rows], type=pa.list_(pa.float64()))

    options = with_embedding_map(options, sample)

    def per_partition(batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        profiles = profile_batches(batches, options=options)
        if profiles:
            yield pa.RecordBatch.from_pydict(
                to_rows(profiles),
                schema=pa.schema([("key", pa.string()), ("profile", pa.binary())]),
            )

    with _conf(df.sparkSession, "spark.sql.execution.arrow.maxRecordsPerBatch",
               str(int(batch_rows))):
        rows = selected.mapInArrow(per_partition, OUTPUT_SCHEMA).collect()
    return from_rows((row["key"], row["profile"]) for row in rows)


def profile(
    df: Any,
    *,
    columns: list[str] | None = None,
    time_column: str | None = None,
    embedding: str | None = None,
    embedding_map: RFFMap | None = None,
    accuracy: float = 0.01,
    max_categories: int = 1000,
    batch_rows: int = BATCH_ROWS,
) -> Profile:
    """The profile of a Spark DataFrame (every column, or ``columns``, as a feature).

    Parameters
    ----------
    df
        A ``pyspark.sql.DataFrame``.
    columns, time_column, embedding, embedding_map, accuracy, max_categories, batch_rows
        As in :func:`profile_by`.

    Returns
    -------
    Profile
        Equal to the in-memory profile of the same rows (exact counts, moments, ranges, sketch
        buckets; sums of floats up to rounding).
    """
    parts = profile_by(df, None, columns=columns, time_column=time_column,
                       embedding=embedding, embedding_map=embedding_map, accuracy=accuracy,
                       max_categories=max_categories, batch_rows=batch_rows)
    return parts.get("", Profile.zero())


def profile_parquet(
    session: Any,
    path: str,
    *,
    by: str | None = None,
    columns: list[str] | None = None,
    time_column: str | None = None,
    embedding: str | None = None,
    embedding_map: RFFMap | None = None,
    accuracy: float = 0.01,
    max_categories: int = 1000,
    tasks: int | None = None,
) -> dict[str, Profile]:
    """Profiles of a Parquet table (file, directory, hive partitions), read by the workers.

    Spark schedules one task per group of files; each task reads its files with Arrow (only
    the columns needed) and profiles them, so no row passes through the JVM. Returns one
    profile per value of ``by`` (``{"": p}`` without), as :func:`profile_by`.

    Parameters
    ----------
    session
        A ``pyspark.sql.SparkSession``.
    path
        Where the table is: any path Arrow reads (local, ``s3://``, ``hdfs://``...), the same
        from the driver and every executor.
    by, columns, time_column, embedding, embedding_map, accuracy, max_categories
        As in :func:`profile_by` (``by`` may be a hive partition column).
    tasks
        Tasks to split the files into (default: Spark's default parallelism, at most one per
        file).
    """
    require("pyspark", "spark")
    import pyarrow.dataset as ds

    dataset = ds.dataset(path, format="parquet", partitioning="hive")
    files = sorted(dataset.files)
    options = ProfileOptions.plan(
        list(dataset.schema.names), columns=columns, by=by, time_column=time_column,
        embedding=embedding, embedding_map=embedding_map, accuracy=accuracy,
        max_categories=max_categories)
    options = with_embedding_map(options, lambda: dataset.head(
        MAP_SAMPLE_ROWS, columns=[embedding], filter=ds.field(embedding).is_valid()
    ).column(0))
    if not files:
        return {}
    want = int(tasks) if tasks is not None else int(session.sparkContext.defaultParallelism)
    if want < 1:
        raise ValueError(f"tasks: a positive integer, got {tasks!r}")
    slices = min(want, len(files))
    base = str(path)
    read = options.read

    def per_task(paths: Iterator[str]) -> Iterator[tuple[str, bytes]]:
        import pyarrow.dataset as pds

        mine = list(paths)
        if not mine:
            return
        part = pds.dataset(mine, format="parquet", partitioning="hive",
                           partition_base_dir=base)
        # Arrow's default read-ahead buffers 4 files x 16 batches per task: memory that grows
        # with the table; one batch ahead keeps a task's memory to about one batch.
        batches = part.to_batches(columns=read, batch_readahead=1, fragment_readahead=1)
        profiles = profile_batches(batches, options=options)
        yield from zip(*to_rows(profiles).values(), strict=True)

    rows = session.sparkContext.parallelize(files, slices).mapPartitions(per_task).collect()
    return from_rows(rows)
