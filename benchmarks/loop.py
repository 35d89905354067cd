"""The retraining loop: shadow overhead on the champion's latency; sequential versus fixed horizon.

1. **Shadow overhead.** A champion (a numpy two-layer network on batches of 32 × 256 features,
   about a millisecond) serves 2,000 requests at a steady rate, alone and with a
   :class:`watchkeeper.shadow.Shadow` (queue of 1,000) that scores every request with a
   challenger of the same size on a background thread and logs its events into a
   :class:`watchkeeper.LocalClient` on an embedded SQLite file. Figures: the champion's p50 and
   p99 latency per request, medians of ``REPEATS`` runs, and the requests the shadow dropped.
2. **Sequential versus fixed horizon.** The always-valid :class:`SequentialPairedTest`
   (alpha 0.05) against the exact McNemar test at alpha 0.05 with 80% power: discordant events
   each needs to decide, for a challenger winning 60-75% of the discordant events, over
   ``RUNS`` simulated streams; the sequential test's maximum is three fixed horizons.

Run: ``.venv/bin/python -m benchmarks.loop``. No peer offers either: Seldon and KServe mirror
traffic at the infrastructure level and leave the comparison to the user; none decides
sequentially.
"""

from __future__ import annotations

import os

# one BLAS thread: a shared machine with many threads per matmul times its scheduler, not the shadow
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import statistics
import tempfile
import time
from typing import Any

import numpy as np

from benchmarks._common import machine_line, write_section

REPEATS = 3
REQUESTS = 1000
GAP_S = 0.002  # a request every ~2 ms plus its own time: ~300 requests/s
RUNS = 400


def _network(seed: int) -> Any:
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0, 0.05, (256, 256)).astype(np.float32)
    w2 = rng.normal(0, 0.05, (256, 1)).astype(np.float32)

    def predict(x: np.ndarray) -> np.ndarray:
        h = np.maximum(x @ w1, 0)
        h = np.maximum(h @ w1, 0)
        return np.asarray(1 / (1 + np.exp(-(h @ w2)[:, 0])))

    return predict


def _serve(shadow: Any | None) -> list[float]:
    champion = _network(1)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(32, 256)).astype(np.float32)
    lat = []
    for i in range(REQUESTS):
        ids = [f"q{i}-{j}" for j in range(32)]
        t0 = time.perf_counter()
        champion(x)
        if shadow is not None:
            shadow.submit(ids, x)
        lat.append((time.perf_counter() - t0) * 1000.0)
        time.sleep(GAP_S)
    return lat


def shadow_overhead() -> dict[str, Any]:
    from watchkeeper.sdk import LocalClient
    from watchkeeper.shadow import Shadow
    from watchkeeper.store import Store

    rows: dict[str, list[tuple[float, float, int]]] = {"champion alone": [], "with shadow": []}
    for r in range(REPEATS):
        rows["champion alone"].append((*_q(_serve(None)), 0))
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(f"{tmp}/wk.db")
            wk = LocalClient(store, project="bench")
            challenger = _network(3)
            shadow = Shadow(challenger, wk, "bench", "v2", queue_size=1000)
            lat = _serve(shadow)
            shadow.flush(timeout=600)
            shadow.close()
            rows["with shadow"].append((*_q(lat), shadow.stats.dropped))
            assert shadow.stats.scored + shadow.stats.dropped == REQUESTS * 32, shadow.stats
            store.close()
        print(f"  repeat {r + 1}: {rows['champion alone'][-1]} / {rows['with shadow'][-1]}")
    return {
        k: (
            statistics.median(v[0] for v in vals),
            statistics.median(v[1] for v in vals),
            statistics.median(v[2] for v in vals),
        )
        for k, vals in rows.items()
    }


def _q(lat: list[float]) -> tuple[float, float]:
    return float(np.quantile(lat, 0.5)), float(np.quantile(lat, 0.99))


def sequential_vs_fixed() -> list[dict[str, Any]]:
    from watchkeeper.loop import SequentialPairedTest, fixed_horizon_discordant

    rng = np.random.default_rng(4)
    out = []
    for win in (0.5, 0.6, 0.65, 0.7, 0.75):
        fixed = fixed_horizon_discordant(win if win > 0.5 else 0.65)
        cap = 3 * fixed
        stops, calls = [], {"better": 0, "worse": 0, "inconclusive": 0}
        for _ in range(RUNS):
            wins = rng.random(cap) < win
            test = SequentialPairedTest(alpha=0.05, max_events=cap)
            test.update(~wins, wins)  # every event discordant: the test sees only those
            calls[str(test.decision)] += 1
            if test.decision in ("better", "worse"):
                stops.append(test.state.decided_at)
        out.append(
            {"win": win, "fixed": fixed, "cap": cap, "calls": calls,
             "median": statistics.median(stops) if stops else None,
             "mean": statistics.fmean(stops) if stops else None}
        )  # fmt: skip
    return out


def main() -> None:
    t0 = time.perf_counter()
    ov = shadow_overhead()
    seq = sequential_vs_fixed()
    alone, shadow = ov["champion alone"], ov["with shadow"]
    lines = [
        "## Retraining loop: shadow overhead, sequential decisions",
        "",
        machine_line(),
        "Command: `.venv/bin/python -m benchmarks.loop` "
        f"(medians of {REPEATS} runs; {time.perf_counter() - t0:.0f} s in all).",
        "",
        f"Champion latency per request ({REQUESTS:,} requests of 32 events, one every "
        f"~{GAP_S * 1000:.0f} ms; challenger of the same size in shadow, queue 1,000, events "
        "logged to SQLite):",
        "",
        "| | p50 ms | p99 ms | dropped events |",
        "|---|---|---|---|",
        f"| champion alone | {alone[0]:.3f} | {alone[1]:.3f} | - |",
        f"| with shadow | {shadow[0]:.3f} | {shadow[1]:.3f} | {shadow[2]:.0f} |",
        f"| overhead | {100 * (shadow[0] / alone[0] - 1):+.1f}% | "
        f"{100 * (shadow[1] / alone[1] - 1):+.1f}% | |",
        "",
        f"Sequential paired test (alpha 0.05) against the exact McNemar test (alpha 0.05, power "
        f"0.8): discordant events to a decision, {RUNS} simulated streams each; the sequential "
        "maximum is three fixed horizons. Win rate 0.5 is the null (any call is an error; its "
        "fixed horizon is the 0.65 one).",
        "",
        "| challenger win rate | fixed horizon | sequential median | sequential mean | "
        "better / worse / inconclusive |",
        "|---|---|---|---|---|",
    ]
    for r in seq:
        c = r["calls"]
        med = "-" if r["median"] is None else f"{r['median']:.0f}"
        mean = "-" if r["mean"] is None else f"{r['mean']:.0f}"
        lines.append(
            f"| {r['win']:.2f} | {r['fixed']} | {med} | {mean} | "
            f"{c['better']} / {c['worse']} / {c['inconclusive']} |"
        )
    text = "\n".join(lines)
    print(text)
    write_section("loop", text)


if __name__ == "__main__":
    main()
