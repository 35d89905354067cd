"""Profiles of data too large for one process, on an existing engine: Spark first, then Dask.

Each worker profiles its partitions with :func:`profile_arrow` (vectorised over Arrow batches,
no Python per row) and ships one serialised :class:`~watchkeeper.profiles.Profile`; the driver
merges them. Merging is exact for counts, moments, ranges and sketch buckets, so the result is
the in-memory profile of the whole table within the sketches' stated accuracy, whatever the
partitioning. Compare two profiles with :func:`watchkeeper.profiles.compare_profiles`.

``watchkeeper.engines.spark`` needs the ``spark`` extra (``pyspark``), ``watchkeeper.engines.dask``
the ``dask`` extra; neither is imported until called.
"""

from __future__ import annotations

from watchkeeper.engines._arrow import (
    ProfileOptions,
    embedding_matrix,
    merge_all,
    merge_keyed,
    profile_arrow,
    profile_batches,
    summarise_arrow,
    time_seconds,
)

__all__ = ["ProfileOptions", "embedding_matrix", "merge_all", "merge_keyed", "profile_arrow",
           "profile_batches", "summarise_arrow", "time_seconds"]
