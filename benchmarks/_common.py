"""What every benchmark shares: timing, peak memory, the peers' interpreters, RESULTS.md.

Peers run in their own virtual environments (made by ``benchmarks/peers/setup.sh``) because
they pin conflicting numpy and pandas versions; a benchmark calls them as subprocesses and reads
one JSON object from their standard output.
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "RESULTS.md"
PEERS_DIR = Path(os.environ.get("PEERS_DIR", ROOT.parent.parent / ".peers"))


def peer_python(name: str) -> Path | None:
    """The interpreter of a peer's environment, or None when it was not set up."""
    path = PEERS_DIR / name / "bin" / "python"
    # setup.sh writes .ok once the installs finished: a half-built environment is not a peer
    return path if path.exists() and (PEERS_DIR / name / ".ok").exists() else None


def run_json(python: Path | str, script: Path, *args: str, timeout: float = 3600) -> Any:
    """Run ``script`` under ``python`` and parse the last line of its stdout as JSON."""
    proc = subprocess.run(
        [str(python), str(script), *args], capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{script.name} failed under {python}:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def median_time(fn: Callable[[], Any], repeats: int = 3) -> tuple[float, Any]:
    """Median wall time of ``repeats`` calls, and the last call's result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB (Linux ru_maxrss is in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_section(name: str, markdown: str) -> None:
    """Replace the section ``name`` of RESULTS.md (between its markers), or append it.

    Benchmarks may run at the same time: an exclusive lock on a side file makes each
    read-modify-write whole, and the new text replaces the old by an atomic rename, so no
    writer loses another's section and no reader sees half a file.
    """
    import fcntl

    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{markdown.rstrip()}\n{end}"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    with open(RESULTS.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
        if pattern.search(text):
            text = pattern.sub(lambda _: block, text)
        else:
            text = f"{text.rstrip()}\n\n{block}\n"
        tmp = RESULTS.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(RESULTS)


def machine_line() -> str:
    """One line saying where and when the figures were measured."""
    import platform

    return (
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {sys.platform}."
    )
