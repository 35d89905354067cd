"""Where Spark's time goes when profiling a Parquet table: core-seconds of each stage.

Runs in one Spark ``local[2]`` session over the table at PATH (made by ``benchmarks/scale.py``,
e.g. ``build/scale/t2000000``) and prints one JSON line per job: wall seconds, core-seconds
(user + system CPU of this process, the JVM and the Python workers, from ``/proc``) and the load
average. Jobs: ``mapInArrow`` that only reads the batches (10k and 100k rows a batch), the
profile through ``mapInArrow`` (same two sizes), ``profile_parquet`` (workers read the files),
and the same profiling in this process without Spark.

Run: ``PYTHONPATH=src .venv/bin/python benchmarks/scale_spark_breakdown.py build/scale/t2000000``
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent / "peers"))

from scale_harness import measure


def main(path: str) -> None:
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    import pyarrow.dataset as ds
    from pyspark.sql import SparkSession

    from watchkeeper.engines import profile_batches
    from watchkeeper.engines import spark as wks

    spark = (SparkSession.builder.master("local[2]").appName("breakdown")
             .config("spark.ui.enabled", "false").config("spark.driver.memory", "2g")
             .config("spark.driver.host", "127.0.0.1").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    df = spark.read.parquet(path)
    wks.profile(df.limit(10_000))  # warm-up: JVM code paths, Python workers

    def report(name: str, fn: Callable[[], Any]) -> None:
        stats, _ = measure(fn, 1)
        print(json.dumps({"case": name, "wall_s": round(stats["median_s"], 1),
                          "cpu_s": round(stats["median_cpu_s"], 1),
                          "load": round(stats["load"], 1)}), flush=True)

    def drain(batches: Iterator[Any]) -> Iterator[Any]:
        for _ in batches:
            pass
        return iter([])

    for rows in (10_000, 100_000):
        spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(rows))
        report(f"mapInArrow-read-only-{rows}",
               lambda: df.mapInArrow(drain, "key string, profile binary").collect())
    for rows in (10_000, 100_000):
        report(f"profile-mapInArrow-{rows}", lambda rows=rows: wks.profile(df, batch_rows=rows))
    report("profile-parquet-workers-read", lambda: wks.profile_parquet(spark, path))
    report("one-process-arrow", lambda: profile_batches(
        ds.dataset(path, format="parquet").to_batches()))


if __name__ == "__main__":
    main(sys.argv[1])
