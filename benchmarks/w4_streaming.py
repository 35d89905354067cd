"""W4: streaming change detectors, Watchkeeper and River side by side in one run.

Streams of 1,000,000 values that change at index 500,000: Bernoulli errors p=0.1 -> 0.3 for
DDM, EDDM, HDDM_A, HDDM_W (and BernoulliRate); Gaussian mean 0 -> 0.5 (sd 1) for ADWIN,
Page-Hinkley, KSWIN, CUSUM. For each detector: updates per second (median of 3 runs), detection
delay (first detection at or after the change), false alarms before the change, for River with
its defaults, Watchkeeper at River's parameters (detections must be identical) and Watchkeeper
with its own defaults. River's KSWIN runs on a slice (it manages a few thousand updates/s).

Cold: the first ``update_many`` over the 1,000,000 values in a fresh process (after the import,
timed apart), median of ``--cold-runs`` processes, with the kernels in use (the C extension
when built) and with the numba kernels forced (``WATCHKEEPER_KERNELS=numba``). A CLI run or a
cron job always pays the cold figure.

    .venv/bin/python -m benchmarks.w4_streaming [--repeats 3] [--kswin-slice 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import machine_line, median_time, peer_python, run_json, write_section
from watchkeeper import detectors as wk

HERE = Path(__file__).resolve().parent / "peers"
N, CHANGE = 1_000_000, 500_000

# The detectors that run a compiled sequential kernel at the parameters timed cold (the others
# are vectorised numpy; Page-Hinkley at River's parameters forgets, so it runs a kernel).
KERNELLED = ("ADWIN", "PageHinkley", "KSWIN", "EDDM", "HDDM_A", "HDDM_W")

# Watchkeeper at River 0.26's default parameters (names as in River where they differ).
RIVER_PARAMS: dict[str, dict[str, Any]] = {
    "ADWIN": {},
    "PageHinkley": {"delta": 0.005, "threshold": 50.0, "alpha": 1 - 0.0001},
    "KSWIN": {"alpha": 0.005, "window_size": 100, "stat_size": 30, "seed": 42},
    "DDM": {"warm_start": 30},
    "EDDM": {"warm_start": 30, "alpha": 0.95, "beta": 0.9},
    "HDDM_A": {},
    "HDDM_W": {"drift_confidence": 0.001, "warning_confidence": 0.005, "lambda_": 0.05},
}
STREAM_OF = {
    "ADWIN": "gauss",
    "PageHinkley": "gauss",
    "KSWIN": "gauss",
    "CUSUM": "gauss",
    "DDM": "bern",
    "EDDM": "bern",
    "HDDM_A": "bern",
    "HDDM_W": "bern",
    "BernoulliRate": "bern",
}


def streams(seed: int = 2026) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    gauss = np.r_[rng.normal(0.0, 1.0, CHANGE), rng.normal(0.5, 1.0, N - CHANGE)]
    p = np.r_[np.full(CHANGE, 0.1), np.full(N - CHANGE, 0.3)]
    bern = (rng.random(N) < p).astype(np.float64)
    return {"gauss": gauss, "bern": bern}


def outcome(found: list[int] | np.ndarray) -> tuple[int, int | None]:
    arr = np.asarray(found, dtype=np.int64)
    after = arr[arr >= CHANGE]
    return int((arr < CHANGE).sum()), (int(after[0] - CHANGE) if after.size else None)


def time_wk(make: Callable[[], wk.Detector], values: np.ndarray, repeats: int) -> dict[str, Any]:
    make().update_many(values[:2000])  # compile or load the cached kernel outside the timing
    seconds, found = median_time(lambda: make().update_many(values), repeats)
    return {"n": values.size, "median_s": seconds, "detections": np.asarray(found).tolist()}


COLD = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from watchkeeper import detectors as wk
from watchkeeper.detectors import _backend
imported = time.perf_counter() - t0
values = np.load(sys.argv[1])[sys.argv[2]]
det = wk.DETECTORS[sys.argv[3]](**json.loads(sys.argv[4]))
t0 = time.perf_counter()
found = det.update_many(values)
cold = time.perf_counter() - t0
print(json.dumps({"import_s": imported, "cold_s": cold, "backend": _backend.name(),
                  "detections": found.tolist()}))
"""


def time_cold(npz: Path, stream: str, name: str, params: dict[str, Any], runs: int,
              backend: str | None) -> dict[str, Any]:
    """The first call in a fresh process: median over ``runs`` processes."""
    env = dict(os.environ)
    env.pop("WATCHKEEPER_KERNELS", None)
    if backend is not None:
        env["WATCHKEEPER_KERNELS"] = backend
    outs = []
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, "-c", COLD, str(npz), stream, name, json.dumps(params)],
            capture_output=True, text=True, env=env, check=True, timeout=1800,
        )
        outs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return {
        "cold_s": statistics.median(o["cold_s"] for o in outs),
        "import_s": statistics.median(o["import_s"] for o in outs),
        "backend": outs[0]["backend"],
        "detections": outs[0]["detections"],
    }


def time_wk_update(make: Callable[[], wk.Detector], values: np.ndarray, repeats: int) -> float:
    """Updates/s of the one-value ``update()`` loop (for comparison with River's loop)."""

    def loop() -> None:
        det = make()
        for x in values.tolist():
            det.update(x)

    seconds, _ = median_time(loop, repeats)
    return values.size / seconds


def _fmt_rate(r: float | None) -> str:
    if r is None:
        return "–"
    return f"{r / 1e6:.2f} M" if r >= 1e5 else f"{r / 1e3:.1f} k"


def _fmt_delay(d: int | None) -> str:
    return "not found" if d is None else str(d)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--kswin-slice", type=int, default=20_000)
    parser.add_argument("--update-slice", type=int, default=100_000)
    parser.add_argument("--cold-runs", type=int, default=3, help="fresh processes per cold figure")
    args = parser.parse_args()

    load_start = os.getloadavg()[0]
    data = streams()
    river: dict[str, Any] = {}
    cold: dict[str, dict[str, Any]] = {}
    cold_numba: dict[str, dict[str, Any]] = {}
    python = peer_python("river")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w4.npz"
        np.savez(path, **data)
        if python is not None:
            started = time.perf_counter()
            river = run_json(
                python, HERE / "w4_river.py", str(path), str(args.repeats), str(args.kswin_slice)
            )["detectors"]
            print(f"river done in {time.perf_counter() - started:.0f} s")
        for name in wk.DETECTORS:
            params = RIVER_PARAMS.get(name, {})
            cold[name] = time_cold(path, STREAM_OF[name], name, params, args.cold_runs, None)
            if name in KERNELLED:  # the others are numpy only: no backend to compare
                cold_numba[name] = time_cold(path, STREAM_OF[name], name, params,
                                             args.cold_runs, "numba")
            print(name, "cold", cold[name]["cold_s"], flush=True)

    rows = []
    for name, cls in wk.DETECTORS.items():
        values = data[STREAM_OF[name]]
        row: dict[str, Any] = {"name": name, "stream": STREAM_OF[name]}
        own = time_wk(cls, values, args.repeats)
        row["wk_rate"] = N / own["median_s"]
        row["wk_fa"], row["wk_delay"] = outcome(own["detections"])
        row["wk_update_rate"] = time_wk_update(cls, values[: args.update_slice], args.repeats)
        if name in RIVER_PARAMS:
            params = RIVER_PARAMS[name]
            same = time_wk(lambda cls=cls, params=params: cls(**params), values, args.repeats)
            row["wkr_rate"] = N / same["median_s"]
            row["wkr_fa"], row["wkr_delay"] = outcome(same["detections"])
            if name in river:
                r = river[name]
                row["river_rate"] = r["n"] / r["median_s"]
                if r["n"] == N:
                    row["river_fa"], row["river_delay"] = outcome(r["detections"])
                    row["identical"] = "yes" if r["detections"] == same["detections"] else "NO"
                else:
                    # KSWIN: River ran on a slice; compare rates only (different random draws).
                    row["river_fa"], row["river_delay"] = None, None
                    row["identical"] = "n/a (own sampler; same decisions given River's samples)"
        row["cold_rate"] = N / cold[name]["cold_s"]
        row["cold_import_s"] = cold[name]["import_s"]
        row["backend"] = cold[name]["backend"]
        if name in cold_numba:
            row["cold_numba_rate"] = N / cold_numba[name]["cold_s"]
            row["cold_same"] = cold[name]["detections"] == cold_numba[name]["detections"]
        rows.append(row)
        print(name, {k: v for k, v in row.items() if k != "name"}, flush=True)

    lines = [
        "## W4: streaming change detectors (Watchkeeper vs River 0.26.1)",
        "",
        f"Streams of {N:,} values changing at {CHANGE:,}: Gaussian mean 0 → 0.5 (sd 1) for "
        "ADWIN, Page-Hinkley, KSWIN, CUSUM; Bernoulli errors 0.1 → 0.3 for DDM, EDDM, HDDM_A, "
        "HDDM_W, BernoulliRate. Updates/s are medians of "
        f"{args.repeats} runs (Watchkeeper: `update_many` over the whole stream; River: its "
        f"`update` loop; River's KSWIN on the first {args.kswin_slice:,} values). "
        "FA = detections before the change; delay = first detection at or after it. "
        "'WK @ River params' runs Watchkeeper with River's default parameters; 'identical' "
        "compares its detection indices with River's.",
        "",
        "| detector | River upd/s | WK upd/s @ River params | speed-up | identical | "
        "River FA | WK FA @ River params | River delay | WK delay @ River params | "
        "WK defaults upd/s | WK defaults FA | WK defaults delay | WK `update()` loop upd/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        rr, wr = row.get("river_rate"), row.get("wkr_rate")
        speed = f"{wr / rr:.0f}×" if rr and wr else "–"
        lines.append(
            f"| {row['name']} | {_fmt_rate(rr)} | {_fmt_rate(wr)} | {speed} | "
            f"{row.get('identical', '– (not in River)')} | "
            f"{row.get('river_fa', '–') if row.get('river_fa') is not None else '–'} | "
            f"{row.get('wkr_fa', '–')} | "
            f"{_fmt_delay(row['river_delay']) if row.get('river_delay') is not None else '–'} | "
            f"{_fmt_delay(row['wkr_delay']) if 'wkr_fa' in row else '–'} | "
            f"{_fmt_rate(row['wk_rate'])} | {row['wk_fa']} | {_fmt_delay(row['wk_delay'])} | "
            f"{_fmt_rate(row['wk_update_rate'])} |"
        )
    lines += [
        "",
        machine_line() + " The machine is shared (2 cores); ratios within one run are the "
        f"meaningful figures. Load average (1 min) at the start {load_start:.1f}, at the end "
        f"{os.getloadavg()[0]:.1f}.",
        "",
        "Reproduce: `.venv/bin/python -m benchmarks.w4_streaming` (River from "
        "`/work/.peers/river`, see `benchmarks/peers/setup.sh`).",
    ]
    backend = rows[0]["backend"] if rows else "?"
    lines += [
        "",
        "### Cold: the first call in a fresh process (what a CLI run or a cron job pays)",
        "",
        f"`update_many` over the {N:,} values, first call after `import watchkeeper.detectors`"
        f" (the import itself in its own column), median of {args.cold_runs} fresh processes, at"
        " River's parameters where River has the detector (defaults otherwise). Kernels in use:"
        f" `{backend}`; 'numba' forces the numba fallback (`WATCHKEEPER_KERNELS=numba`), which"
        " loads numba and its cached machine code on the first call. River's rate is its"
        " median (River has no compilation, so its first call is its typical one).",
        "",
        "| detector | River upd/s | WK cold upd/s | cold ÷ River | WK cold upd/s (numba) | "
        "WK warm upd/s | import (s) | same detections both backends |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        rr = row.get("river_rate")
        warm = row.get("wkr_rate", row["wk_rate"])
        ratio = f"{row['cold_rate'] / rr:.1f}×" if rr else "–"
        lines.append(
            f"| {row['name']} | {_fmt_rate(rr)} | {_fmt_rate(row['cold_rate'])} | {ratio} | "
            f"{_fmt_rate(row.get('cold_numba_rate'))} | {_fmt_rate(warm)} | "
            f"{row['cold_import_s']:.2f} | "
            f"{('yes' if row['cold_same'] else 'NO') if 'cold_same' in row else '– (numpy)'} |"
        )
    write_section("w4_streaming", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
