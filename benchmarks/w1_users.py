"""W1 as users hold their tables: Parquet read into pandas (float64 numbers, string
categories), also polars and Arrow; cold (first call in a fresh process) and warm.

The data are W1's (``benchmarks/w1_tabular.py``: 20 numeric + 5 categorical columns, eight
planted drifts), written to Parquet with the categories as strings. Every tool runs in its own
fresh interpreter: it reads the two files (not timed), then makes its first call (``cold``:
what a CLI run or a cron job always pays) and ``repeats - 1`` more (``warm``: their median).
Peers get their inputs in the form they need, converted before the clock starts, so their
encoding of the strings is not charged to them. Watchkeeper runs twice on pandas: with its
defaults, and asked for the tests Alibi Detect's ``TabularDrift`` runs (two-sample KS on
numbers, chi-squared on categories).

Run: ``.venv/bin/python -m benchmarks.w1_users [--rows 100000 1000000] [--repeats 4]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import machine_line, peer_python, run_json, write_section
from benchmarks.w1_tabular import PLANTED, make_w1

HERE = Path(__file__).resolve().parent / "peers"
PEERS = ("alibi", "frouros", "nannyml", "evidently")
OURS = (  # (label, script arguments after the repeats)
    ("watchkeeper (defaults, pandas)", ("defaults", "pandas")),
    ("watchkeeper (KS + chi2, pandas)", ("ks_chi2", "pandas")),
    ("watchkeeper (defaults, polars)", ("defaults", "polars")),
    ("watchkeeper (defaults, Arrow)", ("defaults", "arrow")),
)


def write_parquet(n: int, directory: Path) -> None:
    """W1's pair with ``n`` rows per side as ``ref.parquet`` and ``cur.parquet``."""
    import pandas as pd

    npz = directory / "w1.npz"
    make_w1(n, npz)
    with np.load(npz) as d:
        levels = d["levels"].astype(str)
        for side in ("ref", "cur"):
            frame = pd.DataFrame(d[f"num_{side}"], columns=[str(c) for c in d["num_names"]])
            for j, name in enumerate(d["cat_names"]):
                frame[str(name)] = pd.array(levels[d[f"cat_{side}"][:, j]], dtype="str")
            frame.to_parquet(directory / f"{side}.parquet")
    npz.unlink()


def run_tool(python: Path, script: str, directory: Path, repeats: int, *args: str,
             ) -> dict[str, Any]:
    try:
        return run_json(python, HERE / script, str(directory), str(repeats), *args,
                        timeout=3600)
    except Exception as exc:  # a peer failing must not lose the others' figures
        return {"error": str(exc).splitlines()[-1][:200]}


def run_all(n: int, repeats: int, runs: int, workdir: Path) -> list[dict[str, Any]]:
    """Each tool ``runs`` times in a fresh process; cold and warm are medians over the runs."""
    write_parquet(n, workdir)
    print(f"load average before {n:,} rows: {os.getloadavg()[0]:.1f}", flush=True)
    tools: list[tuple[str, Path | None, str, tuple[str, ...]]] = [
        (label, Path(sys.executable), "w1_watchkeeper.py", args) for label, args in OURS
    ]
    tools += [(p, peer_python(p), f"w1_{p}.py", ()) for p in PEERS]
    rows: list[dict[str, Any]] = []
    for label, python, script, args in tools:
        if python is None:
            rows.append({"tool": label, "error": "environment not set up"})
            continue
        outs = [run_tool(python, script, workdir, repeats, *args) for _ in range(runs)]
        good = [o for o in outs if "error" not in o]
        if not good:
            rows.append({"tool": label, "error": outs[0]["error"]})
            continue
        row = {**good[0], "tool": label}
        for key in ("cold_s", "warm_s", "peak_rss_mb", "import_s"):
            row[key] = statistics.median(o[key] for o in good)
        row["load"] = os.getloadavg()[0]
        print(label, n, {k: row[k] for k in ("cold_s", "warm_s", "peak_rss_mb", "load")},
              flush=True)
        rows.append(row)
    return rows


def to_markdown(n: int, rows: list[dict[str, Any]]) -> str:
    peers = [r for r in rows if r["tool"] in PEERS and "error" not in r]
    best = min(peers, key=lambda r: r["cold_s"]) if peers else None
    alibi = next((r for r in peers if r["tool"] == "alibi"), None)
    leanest = min(peers, key=lambda r: r["peak_rss_mb"]) if peers else None
    lines = [
        f"#### {n:,} rows per side",
        "",
        "| tool | cold (s) | warm (s) | best peer cold ÷ this cold | peak RSS (MB) | "
        "import (s) | planted found (of 8) | false flags | load average after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['tool']} | failed: {r['error']} | | | | | | | |")
            continue
        flagged = set(r["flagged"])
        ratio = f"{best['cold_s'] / r['cold_s']:.1f}×" if best else "-"
        lines.append(
            f"| {r['tool']} | {r['cold_s']:.3f} | {r['warm_s']:.3f} | {ratio} | "
            f"{r['peak_rss_mb']:.0f} | {r['import_s']:.2f} | {len(flagged & set(PLANTED))} | "
            f"{len(flagged - set(PLANTED))} | {r.get('load', float('nan')):.1f} |"
        )
    ours = {r["tool"]: r for r in rows if r["tool"].startswith("watchkeeper") and "error" not in r}
    notes = []
    default = ours.get(OURS[0][0])
    kschi2 = ours.get(OURS[1][0])
    if default and best:
        notes.append(f"Defaults, cold: {best['cold_s'] / default['cold_s']:.1f}× faster than the "
                     f"fastest peer ({best['tool']}).")
    if kschi2 and alibi:
        notes.append(f"KS + chi-squared, cold: {alibi['cold_s'] / kschi2['cold_s']:.1f}× faster "
                     "than Alibi Detect's TabularDrift (the same tests).")
    if default and leanest:
        notes.append(f"Peak RSS {default['peak_rss_mb']:.0f} MB against the leanest peer's "
                     f"{leanest['peak_rss_mb']:.0f} MB ({leanest['tool']}).")
    return "\n".join([*lines, "", " ".join(notes)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=4, help="calls per process")
    parser.add_argument("--runs", type=int, nargs="+", default=[3],
                        help="fresh processes per tool: one number, or one per --rows size")
    parser.add_argument("--section", default="w1_users",
                        help="section of RESULTS.md to write (to keep sizes run apart)")
    args = parser.parse_args()
    if len(args.runs) not in (1, len(args.rows)):
        parser.error("--runs takes one number or one per --rows size")
    runs = args.runs * len(args.rows) if len(args.runs) == 1 else args.runs
    sections = []
    for n, n_runs in zip(args.rows, runs, strict=True):
        with tempfile.TemporaryDirectory() as tmp:
            rows = run_all(n, args.repeats, n_runs, Path(tmp))
            sections.append(to_markdown(n, rows) + f"\n\nMedians over {n_runs} fresh "
                            f"process(es) per tool.")
    md = "\n\n".join([
        "### W1 as users hold it: Parquet → pandas (string categories), polars, Arrow; cold "
        "and warm",
        machine_line(),
        f"Command: `.venv/bin/python -m benchmarks.w1_users --rows "
        f"{' '.join(map(str, args.rows))} --repeats {args.repeats} --runs "
        f"{' '.join(map(str, args.runs))}"
        f"{'' if args.section == 'w1_users' else ' --section ' + args.section}`. "
        "Cold: the first call in a fresh process after the import (shown apart); warm: the "
        "median of the calls after it; both are medians over the fresh processes. Peers' "
        "inputs are converted from the frames before the clock starts. Verdicts as in W1.",
        *sections,
    ])
    write_section(args.section, md)
    print(md)


if __name__ == "__main__":
    main()
