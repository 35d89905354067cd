"""Import time: ``import watchkeeper``, ``watchkeeper --help``, and the peers' imports.

Each figure is the median wall time of 5 fresh interpreter processes (so nothing is cached in
memory by the interpreter; the OS file cache is warm after the first). Peers are timed in their
own environments importing what a drift user imports.

Run: ``.venv/bin/python -m benchmarks.import_time``
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._common import machine_line, peer_python, write_section

REPEATS = 5
PEER_IMPORTS = {
    "evidently": "from evidently import Report; from evidently.presets import DataDriftPreset",
    "nannyml": "import nannyml",
    "alibi": "from alibi_detect.cd import MMDDrift, TabularDrift",
    "frouros": "from frouros.detectors.data_drift import KSTest, MMD",
}


def _median_wall(cmd: list[str]) -> tuple[float, float]:
    """Median wall time and median CPU time (user + system) of the child processes.

    On a shared machine the wall time includes waiting for a core; the CPU time does not.
    """
    import resource

    times, cpu = [], []
    subprocess.run(cmd, capture_output=True, check=True)  # warm the file cache
    for _ in range(REPEATS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(times), statistics.median(cpu)


def main() -> None:
    py = sys.executable
    bare = _median_wall([py, "-c", "pass"])[0]
    rows = [
        ("watchkeeper", "import watchkeeper", _median_wall([py, "-c", "import watchkeeper"])),
        ("watchkeeper", "import watchkeeper.stats",
         _median_wall([py, "-c", "import watchkeeper.stats"])),
    ]
    exe = shutil.which("watchkeeper") or str(Path(py).parent / "watchkeeper")
    rows.append(("watchkeeper", "watchkeeper --help", _median_wall([exe, "--help"])))
    for peer, stmt in PEER_IMPORTS.items():
        python = peer_python(peer)
        if python is not None:
            rows.append((peer, stmt, _median_wall([str(python), "-c", stmt])))
    lines = [
        "### Import time",
        "",
        machine_line(),
        f"Command: `.venv/bin/python -m benchmarks.import_time`. Median wall time of "
        f"{REPEATS} fresh processes, interpreter start-up included (a bare `python -c pass` "
        f"takes {bare:.3f} s here). CPU time (user + system) does not count waiting for a core on "
        "this shared machine. Target for Watchkeeper: under 0.5 s.",
        "",
        "| tool | what | median wall (s) | median CPU (s) |",
        "|---|---|---|---|",
        *[f"| {tool} | `{what}` | {t[0]:.3f} | {t[1]:.3f} |" for tool, what, t in rows],
    ]
    md = "\n".join(lines)
    write_section("import_time", md)
    print(md)


if __name__ == "__main__":
    main()
