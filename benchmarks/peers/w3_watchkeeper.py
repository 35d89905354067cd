"""W3 with Watchkeeper's multivariate tests (run by benchmarks/w3_embeddings.py)."""

from __future__ import annotations

import sys
import time
from typing import Any

from w1_harness import emit, load, measure, peak_mb

start = time.perf_counter()
from watchkeeper.stats import (  # noqa: E402
    ClassifierDrift,
    LinearMMDDrift,
    MMDDrift,
    RFFMMDDrift,
    bbsd,
)

import_s = time.perf_counter() - start


def main(path: str, repeats: int) -> None:
    d = load(path)
    ref = d["ref"]
    methods: list[dict[str, Any]] = []
    runs = {
        "mmd": lambda cur: MMDDrift(n_permutations=100).fit(ref).test(cur),
        "rff_mmd": lambda cur: RFFMMDDrift().fit(ref).test(cur),
        "linear_mmd": lambda cur: LinearMMDDrift().fit(ref).test(cur),
        "classifier": lambda cur: ClassifierDrift().fit(ref).test(cur),
        "ks per dimension (bonferroni)": lambda cur: bbsd(ref, cur),
    }
    for name, run in runs.items():
        stats, drift = measure(lambda run=run: run(d["drift"]), repeats)
        control = run(d["control"])
        methods.append({"method": name, "median_s": stats["median_s"],
                        "p_drift": drift.p_value, "drift": drift.drift,
                        "p_control": control.p_value, "control": control.drift})
    emit({"tool": "watchkeeper", "import_s": import_s, "peak_rss_mb": peak_mb(),
          "methods": methods})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
