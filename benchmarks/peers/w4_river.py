"""W4 with River: run River's drift detectors over the saved streams, one JSON line out.

Usage: python w4_river.py STREAMS.npz REPEATS KSWIN_SLICE
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np
from river import drift
from river.drift import binary

DETECTORS = {
    "ADWIN": ("gauss", drift.ADWIN),
    "PageHinkley": ("gauss", drift.PageHinkley),
    "KSWIN": ("gauss", lambda: drift.KSWIN(seed=42)),
    "DDM": ("bern", binary.DDM),
    "EDDM": ("bern", binary.EDDM),
    "HDDM_A": ("bern", binary.HDDMA),
    "HDDM_W": ("bern", binary.HDDMW),
}


def run(make, values):  # type: ignore[no-untyped-def]
    det = make()
    found = []
    update = det.update
    for i, x in enumerate(values):
        update(x)
        if det.drift_detected:
            found.append(i)
    return found


def main(path: str, repeats: int, kswin_slice: int) -> None:
    data = np.load(path)
    streams = {k: data[k].tolist() for k in ("gauss", "bern")}
    out = {}
    for name, (stream, make) in DETECTORS.items():
        values = streams[stream]
        if name == "KSWIN":
            values = values[:kswin_slice]
        times, found = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            found = run(make, values)
            times.append(time.perf_counter() - start)
        out[name] = {"n": len(values), "median_s": statistics.median(times), "detections": found}
    print(json.dumps({"tool": "river", "detectors": out}))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
