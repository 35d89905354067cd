"""Scale with Watchkeeper: profile a Parquet table (run by benchmarks/scale.py).

Modes: ``spark`` (``watchkeeper.spark.profile`` on Spark local[2]), ``arrow`` (the same code
path in this process over the Parquet batches), ``memory`` (the in-memory
``watchkeeper.profiles.profile`` of the whole table read into numpy).
"""

from __future__ import annotations

import os
import sys
import warnings

from scale_harness import emit, measure

warnings.filterwarnings("ignore")


def main(mode: str, path: str, repeats: int) -> None:
    if mode == "spark":
        os.environ["PYSPARK_PYTHON"] = sys.executable
        from pyspark.sql import SparkSession

        import watchkeeper.spark

        spark = (SparkSession.builder.master("local[2]").appName("scale")
                 .config("spark.ui.enabled", "false").config("spark.driver.memory", "2g")
                 .getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        df = spark.read.parquet(path)
        stats, p = measure(lambda: watchkeeper.spark.profile(df), repeats)
        cores = 2
    elif mode == "arrow":
        import pyarrow.dataset as ds

        from watchkeeper.engines import profile_batches

        stats, parts = measure(
            lambda: profile_batches(ds.dataset(path, format="parquet").to_batches()), repeats)
        p = parts[""]
        cores = 1
    else:
        import numpy as np
        import pyarrow.parquet as pq

        from watchkeeper.profiles import profile

        def run() -> object:
            table = pq.read_table(path)
            cols = {name: (table.column(name).to_numpy() if name.startswith("num")
                           else np.asarray(table.column(name).to_pylist(), dtype=object))
                    for name in table.schema.names}
            return profile(cols)

        stats, p = measure(run, repeats)
        cores = 1
    emit({"tool": f"watchkeeper-{mode}", "rows": p.n, "cores": cores, **stats})  # type: ignore[attr-defined]


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
