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


def _children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def _tree_cpu(root: int) -> dict[int, float]:
    """CPU seconds (user + system) so far of ``root`` and every live descendant, per pid."""
    children = _children()
    tick = os.sysconf("SC_CLK_TCK")
    out, stack = {}, [root]
    while stack:
        pid = stack.pop()
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[pid] = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        stack.extend(children.get(pid, []))
    return out


class CpuMeter:
    """Core-seconds a job costs, whatever else runs on the machine: per process of the tree,
    its CPU time at the last sample minus at the start (0 for a process started since). The
    CPU of a process that exits between two samples (0.25 s apart) after its last one is
    missed; Spark's Python workers are reused, so that is little."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.start = _tree_cpu(root)
        self.last = dict(self.start)

    def sample(self) -> None:
        self.last.update(_tree_cpu(self.root))

    def used(self) -> float:
        self.sample()
        return sum(v - self.start.get(pid, 0.0) for pid, v in self.last.items())


def _tree_rss_mb(root: int) -> float:
    """Resident memory of ``root`` and every descendant, in MB (from /proc)."""
    children = _children()
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
    meter: list[CpuMeter] = []

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], _tree_rss_mb(os.getpid()))
            if meter:
                meter[-1].sample()
            stop.wait(0.25)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    times, cpu, result = [], [], None
    try:
        for _ in range(repeats):
            meter.append(CpuMeter(os.getpid()))
            start = time.perf_counter()
            result = fn()
            times.append(time.perf_counter() - start)
            cpu.append(meter[-1].used())
    finally:
        stop.set()
        thread.join()
    return {"times_s": times, "median_s": statistics.median(times), "cpu_s": cpu,
            "median_cpu_s": statistics.median(cpu), "peak_tree_mb": peak[0],
            "load": os.getloadavg()[0]}, result


def emit(obj: dict[str, Any]) -> None:
    print(json.dumps(obj), flush=True)
