"""Scale with whylogs 1.6.4 (its own environment): profile the same Parquet table.

Modes: ``spark`` (``whylogs.api.pyspark.experimental.collect_dataset_profile_view`` on Spark
local[2]) and ``pandas`` (``why.log`` of the table read into pandas).
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
        from whylogs.api.pyspark.experimental import collect_dataset_profile_view

        spark = (SparkSession.builder.master("local[2]").appName("scale")
                 .config("spark.ui.enabled", "false").config("spark.driver.memory", "2g")
                 .getOrCreate())
        spark.sparkContext.setLogLevel("ERROR")
        df = spark.read.parquet(path)
        stats, view = measure(lambda: collect_dataset_profile_view(input_df=df), repeats)
        cores = 2
    else:
        import pandas as pd
        import whylogs as why

        stats, view = measure(lambda: why.log(pd.read_parquet(path)).view(), repeats)
        cores = 1
    cols = view.get_columns()
    rows = int(next(iter(cols.values())).get_metric("counts").n.value)
    emit({"tool": f"whylogs-{mode}", "rows": rows, "cores": cores, **stats})


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
