"""Shared by the scale scripts, in every interpreter: time a call, sample the memory of this
process and all its children (Spark's JVM and Python workers), print one JSON line.

Only the standard library, so it runs under each peer's own environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and every descendant, in MB (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    total, stack = 0.0, [root]
    page = os.sysconf("SC_PAGE_SIZE")
    while stack:
        pid = stack.pop()
        with contextlib.suppress(OSError, IndexError, ValueError):
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page / 1e6
        stack.extend(children.get(pid, []))
    return total


def measure(fn: Callable[[], Any], repeats: int) -> tuple[dict[str, Any], Any]:
    """Median wall time of ``repeats`` calls and the peak memory of the process tree."""
    peak = [0.0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss_mb(os.getpid()))
            stop.wait(0.5)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    times, result = [], None
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - start)
    finally:
        stop.set()
        thread.join()
    return {"times_s": times, "median_s": statistics.median(times),
            "peak_tree_mb": peak[0]}, result


def emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)
