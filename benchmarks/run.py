"""Run benchmarks one after another: ``python -m benchmarks.run all`` or by name.

One at a time, never in parallel: on a 2-core machine two benchmarks would time each other.
Each writes its own section of ``benchmarks/RESULTS.md``; a failing one is reported and the
others still run.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

BENCHMARKS = (
    "import_time",
    "w1_tabular",
    "w3_embeddings",
    "w4_streaming",
    "w5_performance",
    "store_read",
    "ingest",
    "monitors",
    "torch_overhead",
    "hardening",
    "registry_verify",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="+", help=f"'all' or any of: {', '.join(BENCHMARKS)}")
    args = parser.parse_args()
    names = list(BENCHMARKS) if args.names == ["all"] else args.names
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {', '.join(BENCHMARKS)}")
    failed = []
    for name in names:
        start = time.perf_counter()
        print(f"== {name}", flush=True)
        code = subprocess.call([sys.executable, "-m", f"benchmarks.{name}"])
        print(f"== {name}: exit {code} after {time.perf_counter() - start:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
