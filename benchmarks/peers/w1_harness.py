"""Shared by the W1/W3 scripts, in every interpreter: load the data, time, measure memory.

Only the standard library and numpy, so it runs under each peer's own environment. Each script
prints one JSON line: medians of ``repeats`` timed calls, peak resident memory of the whole
process and its growth during the timed calls, import time, and what the tool flagged.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import time
from collections.abc import Callable
from typing import Any


def rss_mb() -> float:
    """Current resident memory of this process, in MB."""
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_mb() -> float:
    """Peak resident memory of this process so far, in MB (ru_maxrss is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e6


def measure(fn: Callable[[], Any], repeats: int) -> tuple[dict[str, Any], Any]:
    """Time ``fn`` ``repeats`` times; memory figures cover the timed calls."""
    base = rss_mb()
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    warm = times[1:] or times
    stats = {
        "times_s": times,
        "median_s": statistics.median(times),
        # The first call in a fresh process (what a CLI run or a cron job always pays) and
        # the median of the calls after it.
        "cold_s": times[0],
        "warm_s": statistics.median(warm),
        "peak_rss_mb": peak_mb(),
        "peak_growth_mb": max(peak_mb() - base, 0.0),
    }
    return stats, result


def load(path: str) -> dict[str, Any]:
    """The W1 arrays from an ``.npz`` file, or from a directory holding ``ref.parquet`` and
    ``cur.parquet`` (tables as users keep them: float64 numbers, string categories), in
    which case the pandas frames are returned too, as ``frame_ref`` and ``frame_cur``."""
    import numpy as np

    if not path.endswith(".npz"):
        return _load_parquet(path)
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _load_parquet(directory: str) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    frames = {side: pd.read_parquet(f"{directory}/{side}.parquet") for side in ("ref", "cur")}
    ref = frames["ref"]
    num_names = [c for c in ref.columns if ref[c].dtype == np.float64]
    cat_names = [c for c in ref.columns if c not in num_names]
    levels = sorted(set().union(*(set(f[c].unique()) for f in frames.values()
                                  for c in cat_names)))
    code = {v: i for i, v in enumerate(levels)}
    out: dict[str, Any] = {"num_names": np.array(num_names), "cat_names": np.array(cat_names),
                           "levels": np.array(levels)}
    for side, frame in frames.items():
        out[f"num_{side}"] = frame[num_names].to_numpy(np.float64)
        out[f"cat_{side}"] = np.column_stack([frame[c].map(code).to_numpy(np.int16)
                                              for c in cat_names])
        out[f"frame_{side}"] = frame
    return out


def emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj))
