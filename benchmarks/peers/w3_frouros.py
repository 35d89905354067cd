"""W3 with Frouros: MMD (RBF kernel) with a 100-permutation test callback."""

from __future__ import annotations

import sys
import time
from typing import Any

from w1_harness import emit, load, measure, peak_mb

start = time.perf_counter()
from frouros.callbacks import PermutationTestDistanceBased  # noqa: E402
from frouros.detectors.data_drift import MMD  # noqa: E402

import_s = time.perf_counter() - start


def main(path: str, repeats: int) -> None:
    d = load(path)
    ref = d["ref"].astype("float64")

    def run(cur: Any) -> float:
        det = MMD(callbacks=[PermutationTestDistanceBased(num_permutations=100, random_state=0,
                                                          num_jobs=1, name="perm")])
        det.fit(X=ref)
        _, logs = det.compare(X=cur.astype("float64"))
        return float(logs["perm"]["p_value"])

    stats, p_drift = measure(lambda: run(d["drift"]), repeats)
    p_control = run(d["control"])
    methods = [{"method": "mmd", "median_s": stats["median_s"], "p_drift": p_drift,
                "drift": p_drift < 0.05, "p_control": p_control, "control": p_control < 0.05}]
    emit({"tool": "frouros", "import_s": import_s, "peak_rss_mb": peak_mb(), "methods": methods})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
