"""Scale: profiling a 25-column Parquet table on Spark local[2], in memory, and with whylogs.

The table has W1's columns (benchmarks/w1_tabular.py): 20 numeric (normal, log-normal,
uniform, gamma) and 5 categorical of 10 levels, written as Parquet files of 1M rows. Each tool
runs in its own interpreter (whylogs in its own environment, numpy<2) on the same files:

* ``watchkeeper-spark``: ``watchkeeper.spark.profile(df)`` on Spark ``local[2]``
  (``mapInArrow``; the session's start-up is not timed);
* ``watchkeeper-arrow``: the same profile code over the Parquet batches, in one process;
* ``watchkeeper-memory``: the in-memory ``watchkeeper.profiles.profile`` of the table read whole;
* ``whylogs-spark``: whylogs' ``collect_dataset_profile_view`` on Spark ``local[2]``;
* ``whylogs-pandas``: ``why.log`` of the table read into pandas.

Reported: median wall time, rows per second per core (Spark: 2 cores), peak resident memory
of the process and all its children (the JVM and Spark's Python workers included).

Run: ``.venv/bin/python -m benchmarks.scale --rows 2000000 10000000 --repeats 1``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import machine_line, peer_python, run_json, write_section

HERE = Path(__file__).resolve().parent / "peers"
N_NUM, N_CAT, N_LEVELS = 20, 5, 10
FILE_ROWS = 1_000_000
TOOLS = (("watchkeeper", "spark"), ("watchkeeper", "spark-parquet"), ("watchkeeper", "arrow"),
         ("watchkeeper", "memory"), ("whylogs", "spark"), ("whylogs", "pandas"))


def make_table(n: int, directory: Path, seed: int = 0) -> Path:
    """Write ``n`` rows of the W1 reference design as Parquet files of up to 1M rows.

    File ``k`` depends only on ``(seed, k)``, so a smaller table is the first files of a larger
    one: the files are written once under ``directory``'s parent (``all/``) and each table is a
    directory of links to the first ``ceil(n / 1M)`` of them (kept between runs).
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    if (directory / ".done").exists():
        return directory
    store = directory.parent / "all"
    store.mkdir(parents=True, exist_ok=True)
    directory.mkdir(parents=True, exist_ok=True)
    params = np.random.default_rng(seed).uniform(size=(N_NUM, 2))
    levels = np.array([f"L{i}" for i in range(N_LEVELS)])
    probs = np.random.default_rng(seed).dirichlet(np.full(N_LEVELS, 3.0), size=N_CAT)
    for part, start in enumerate(range(0, n, FILE_ROWS)):
        m = min(FILE_ROWS, n - start)
        name = f"part-{part:04d}-{m}.parquet"
        link = directory / name
        if link.is_symlink() and link.resolve() != (store / name).resolve():
            link.unlink()  # a link left by a table written elsewhere (another checkout)
        if not link.is_symlink():
            link.symlink_to((store / name).resolve())
        if (store / name).exists():
            continue
        rng = np.random.default_rng([seed, part])
        cols: dict[str, Any] = {}
        for j in range(N_NUM):
            kind = j % 4
            if kind == 0:
                cols[f"num_{j:02d}"] = rng.normal(params[j, 0] * 10 - 5,
                                                  params[j, 1] * 2.5 + 0.5, m)
            elif kind == 1:
                cols[f"num_{j:02d}"] = rng.lognormal(0.0, 0.5, m)
            elif kind == 2:
                cols[f"num_{j:02d}"] = rng.uniform(0.0, 10.0, m)
            else:
                cols[f"num_{j:02d}"] = rng.gamma(2.0, 1.0, m)
        for j in range(N_CAT):
            cols[f"cat_{j}"] = pa.array(levels[rng.choice(N_LEVELS, m, p=probs[j])])
        tmp = store / f".{name}.tmp"
        pq.write_table(pa.table(cols), tmp,
                       row_group_size=131_072)  # row groups Spark can split between tasks
        tmp.rename(store / name)
    (directory / ".done").touch()
    return directory


def run_all(n: int, repeats: int, workdir: Path,
            tools: list[str] | None = None) -> list[dict[str, Any]]:
    path = make_table(n, workdir / f"t{n}")
    rows = []
    for tool, mode in TOOLS:
        if tools is not None and f"{tool}-{mode}" not in tools:
            continue
        python = Path(sys.executable) if tool == "watchkeeper" else peer_python(tool)
        if python is None:
            rows.append({"tool": f"{tool}-{mode}", "error": "environment not set up"})
            continue
        try:
            out = run_json(python, HERE / f"scale_{tool}.py", mode, str(path), str(repeats),
                           timeout=7200)
        except Exception as exc:  # a tool failing must not lose the others' figures
            out = {"tool": f"{tool}-{mode}", "error": str(exc).strip().splitlines()[-1][:200]}
        print(n, out, flush=True)
        rows.append(out)
    return rows


def to_markdown(n: int, rows: list[dict[str, Any]]) -> str:
    """One table per size: wall time and core-seconds, both per core, against the in-memory
    path (the issue's yardstick) and peak memory."""
    by = {r["tool"]: r for r in rows if "median_s" in r}
    memory = by.get("watchkeeper-memory")
    lines = [
        f"#### {n:,} rows × 25 columns",
        "",
        "| tool | cores | median wall (s) | rows/s/core (wall) | CPU (core-s) | "
        "rows per CPU-second | CPU vs in-memory | peak memory, process tree (MB) | load |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['tool']} | | failed: {r['error']} | | | | | | |")
            continue
        rate = r["rows"] / r["median_s"] / r["cores"]
        cpu = r.get("median_cpu_s")
        per_cpu = f"{r['rows'] / cpu:,.0f}" if cpu else "-"
        ratio = (f"{cpu / memory['median_cpu_s']:.2f}×"
                 if cpu and memory and memory.get("median_cpu_s") else "-")
        lines.append(f"| {r['tool']} | {r['cores']} | {r['median_s']:.1f} | {rate:,.0f} | "
                     f"{cpu or 0:.1f} | {per_cpu} | {ratio} | {r['peak_tree_mb']:,.0f} | "
                     f"{r.get('load', 0):.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000_000, 50_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workdir", type=Path, default=Path("build/scale"),
                        help="Where the Parquet tables are written once and kept.")
    parser.add_argument("--tools", nargs="+", default=None,
                        help="Only these (e.g. watchkeeper-spark whylogs-pandas).")
    parser.add_argument("--section", default="scale", help="Section of RESULTS.md to write.")
    args = parser.parse_args()
    sections = []
    for n in args.rows:
        sections.append(to_markdown(n, run_all(n, args.repeats, args.workdir, args.tools)))
    md = "\n\n".join([
        "### Scale: profiling a 25-column Parquet table (Spark local[2], in memory, whylogs)",
        machine_line(),
        f"Command: `.venv/bin/python -m benchmarks.scale --rows "
        f"{' '.join(map(str, args.rows))} --repeats {args.repeats}"
        + (f" --tools {' '.join(args.tools)} --section {args.section}" if args.tools else "")
        + "`. W1's columns (20 numeric, "
        "5 categorical of 10 levels) in Parquet files of 1M rows; every tool reads the same "
        "files. Times are medians of the repeats, from Parquet to a finished profile (Spark "
        "session start-up and a 10k-row warm-up job excluded); rows/s/core (wall) divides by "
        "the cores the tool ran on (local[2] = 2). On a shared machine wall time mostly "
        "measures the other jobs, so CPU is measured too: the user + system seconds of the "
        "process and every descendant (JVM, Python workers), sampled every 0.25 s, i.e. the "
        "core-seconds the job cost. Peak memory is the resident memory of the same process "
        "tree, sampled every 0.5 s. Load: the 1-minute load average at the end of the run.",
        *sections,
    ])
    write_section(args.section, md)
    print(md)


if __name__ == "__main__":
    main()
