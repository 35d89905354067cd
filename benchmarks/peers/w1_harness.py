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
    stats = {
        "times_s": times,
        "median_s": statistics.median(times),
        "peak_rss_mb": peak_mb(),
        "peak_growth_mb": max(peak_mb() - base, 0.0),
    }
    return stats, result


def load(path: str) -> dict[str, Any]:
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj))
