"""W3 with Alibi Detect: MMDDrift (PyTorch backend, 100 permutations) and KSDrift."""

from __future__ import annotations

import sys
import time
from typing import Any

from w1_harness import emit, load, measure, peak_mb

start = time.perf_counter()
from alibi_detect.cd import KSDrift, MMDDrift  # noqa: E402

import_s = time.perf_counter() - start


def main(path: str, repeats: int) -> None:
    d = load(path)
    ref = d["ref"]
    methods: list[dict[str, Any]] = []
    runs = {
        "mmd": lambda cur: MMDDrift(ref, backend="pytorch", p_val=0.05,
                                    n_permutations=100).predict(cur)["data"],
        "ks per dimension (bonferroni)": lambda cur: KSDrift(ref, p_val=0.05).predict(
            cur, drift_type="batch")["data"],
    }
    for name, run in runs.items():
        stats, drift = measure(lambda run=run: run(d["drift"]), repeats)
        control = run(d["control"])

        def p(out: dict) -> float:
            import numpy as np

            return float(np.min(out["p_val"]) * (np.size(out["p_val"])))

        methods.append({"method": name, "median_s": stats["median_s"],
                        "p_drift": min(p(drift), 1.0), "drift": bool(drift["is_drift"]),
                        "p_control": min(p(control), 1.0), "control": bool(control["is_drift"])})
    emit({"tool": "alibi", "import_s": import_s, "peak_rss_mb": peak_mb(), "methods": methods})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
