"""Scale with Watchkeeper: profile a Parquet table (run by benchmarks/scale.py).

Modes: ``spark`` (``watchkeeper.spark.profile(spark.read.parquet(path))`` on Spark local[2],
``mapInArrow``), ``spark-parquet`` (``watchkeeper.spark.profile_parquet``: Spark schedules, the
Python workers read the Parquet files with Arrow), ``arrow`` (the same profile code in this
process over the Parquet batches), ``memory`` (the in-memory ``watchkeeper.profiles.profile``:
each 1M-row file read into numpy arrays and profiled, the file profiles merged, so 50M rows
need the memory of one file).
"""

from __future__ import annotations

import os
import sys
import warnings

from scale_harness import emit, measure

warnings.filterwarnings("ignore")


def main(mode: str, path: str, repeats: int) -> None:
    if mode in ("spark", "spark-parquet"):
        os.environ["PYSPARK_PYTHON"] = sys.executable
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        from pyspark.sql import SparkSession

        import watchkeeper.spark

        spark = (SparkSession.builder.master("local[2]").appName("scale")
                 .config("spark.ui.enabled", "false").config("spark.driver.memory", "2g")
                 .config("spark.driver.host", "127.0.0.1")
                 .config("spark.executor.heartbeatInterval", "60s")
                 .config("spark.network.timeout", "600s")
                 .getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        df = spark.read.parquet(path)
        watchkeeper.spark.profile(df.limit(10_000))  # warm-up: JVM code paths, Python workers
        if mode == "spark":
            stats, p = measure(lambda: watchkeeper.spark.profile(df), repeats)
        else:
            stats, parts = measure(lambda: watchkeeper.spark.profile_parquet(spark, path),
                                   repeats)
            p = parts[""]
        cores = 2
    elif mode == "arrow":
        import pyarrow.dataset as ds

        from watchkeeper.engines import profile_batches

        stats, parts = measure(
            lambda: profile_batches(ds.dataset(path, format="parquet").to_batches()), repeats)
        p = parts[""]
        cores = 1
    else:
        import pyarrow.dataset as ds
        import pyarrow.parquet as pq

        from watchkeeper.engines import merge_all
        from watchkeeper.profiles import profile

        def run() -> object:
            profiles = []
            for file in sorted(ds.dataset(path, format="parquet").files):
                table = pq.read_table(file)
                cols = {name: table.column(name).to_numpy() for name in table.schema.names}
                del table
                profiles.append(profile(cols))
            return merge_all(profiles)

        stats, p = measure(run, repeats)
        cores = 1
    emit({"tool": f"watchkeeper-{mode}", "rows": p.n, "cores": cores, **stats})  # type: ignore[attr-defined]


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
