"""W1 with Watchkeeper: detect_drift with its defaults (run by benchmarks/w1_tabular.py)."""

from __future__ import annotations

import sys
import time

from w1_harness import emit, load, measure

start = time.perf_counter()
from watchkeeper.stats import detect_drift  # noqa: E402

import_s = time.perf_counter() - start


def main(path: str, repeats: int, config: str = "defaults", shape: str = "pandas") -> None:
    d = load(path)
    num_names, cat_names = d["num_names"].tolist(), d["cat_names"].tolist()
    levels = d["levels"].astype(object)

    def table(side: str) -> dict[str, object]:
        cols: dict[str, object] = {n: d[f"num_{side}"][:, j] for j, n in enumerate(num_names)}
        for j, n in enumerate(cat_names):
            cols[n] = levels[d[f"cat_{side}"][:, j]]
        return cols

    if "frame_ref" in d:  # as users hold them: pandas from Parquet, or polars, or Arrow
        ref, cur = d["frame_ref"], d["frame_cur"]
        if shape == "polars":
            import polars as pl

            ref, cur = pl.from_pandas(ref), pl.from_pandas(cur)
        elif shape == "arrow":
            import pyarrow as pa

            ref, cur = pa.Table.from_pandas(ref), pa.Table.from_pandas(cur)
    else:
        ref, cur = table("ref"), table("cur")
    options: dict[str, object] = {}
    if config == "ks_chi2":  # the tests Alibi Detect's TabularDrift runs
        options["methods"] = {**dict.fromkeys(num_names, "ks"), **dict.fromkeys(cat_names, "chi2")}
    stats, report = measure(lambda: detect_drift(ref, cur, **options), repeats)
    emit({"tool": "watchkeeper", "import_s": import_s, **stats, "flagged": report.drifted,
          "methods": sorted({r.method for r in report.columns.values()})})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), *sys.argv[3:])
