"""The retraining loop: shadow overhead on the champion's latency; sequential versus fixed horizon.

1. **Shadow overhead.** Two realistic CPU champions serve ``REQUESTS`` batches of 32 at a steady
   rate (a request every ``GAP_S`` plus its own time), each three ways, interleaved in every
   repeat: alone; with a :class:`watchkeeper.shadow.Shadow` in **thread** mode; and in
   **process** mode (the default); and in process mode with a challenger that computes and
   logs nothing (what is left is the serving path's own cost: packing the batch into the
   shared-memory ring). The challenger is the same network with other weights
   (a :class:`~watchkeeper.integrations.torch.TorchChallenger`), its events logged into a
   ``LocalClient`` on an SQLite file; queue of 1,000 batches. Champions: an MLP (256-256-256-1,
   under a millisecond) and the document-fraud demo's CNN on 64x64 RGB images (a few ms).
   Figures: the champion's p50 and p99 latency per request (forward pass plus ``submit``),
   medians of ``REPEATS`` runs, and the events the shadow dropped. One torch thread in the
   serving process; the shadow's child has one too, at niceness 10.
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

REPEATS = int(os.environ.get("WK_BENCH_REPEATS", "5"))
REQUESTS = 1000
GAP_S = 0.002  # a request every ~2 ms plus its own time
BATCH = 32
RUNS = 400
MODES = ("alone", "thread", "process", "no-op")


def noop_challenger(x: Any) -> np.ndarray:
    """A challenger that computes nothing: what is left is the serving path's own cost."""
    return np.zeros(len(x))


class NullClient:
    def log_batch(self, model: str, **columns: Any) -> None:
        return None


def _mlp(seed: int) -> Any:
    import torch

    torch.manual_seed(seed)
    nn = torch.nn
    return nn.Sequential(
        nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 1)
    ).eval()


def _cnn(seed: int) -> Any:
    from watchkeeper.demo.model import build_model

    return build_model(seed).eval()


def _inputs(kind: str) -> np.ndarray:
    rng = np.random.default_rng(2)
    if kind == "mlp":
        return rng.normal(size=(BATCH, 256)).astype(np.float32)
    return rng.uniform(0, 1, (BATCH, 3, 64, 64)).astype(np.float32)


def _serve(champion: Any, x: np.ndarray, shadow: Any | None, tag: str) -> tuple[list[float], float]:
    """Latencies per request (ms), and CPU ms per request of the whole serving process (every
    thread: the queue's feeder, and in thread mode the challenger)."""
    import torch

    xt = torch.from_numpy(x)
    lat = []
    base = np.arange(BATCH).astype(str)
    with torch.no_grad():
        champion(xt)  # warm-up
        cpu = time.process_time()
        for i in range(REQUESTS):
            ids = np.char.add(f"{tag}-{i}-", base)  # the request ids arrive with the request
            t0 = time.perf_counter()
            champion(xt)
            if shadow is not None:
                shadow.submit(ids, x)
            lat.append((time.perf_counter() - t0) * 1000.0)
            time.sleep(GAP_S)
        if shadow is not None:
            shadow.flush(timeout=600)  # the serving process's part of the shadow's work
        cpu = time.process_time() - cpu
    return lat, cpu / REQUESTS * 1000.0


def _q(run: tuple[list[float], float]) -> tuple[float, float, float]:
    lat, cpu = run
    return float(np.quantile(lat, 0.5)), float(np.quantile(lat, 0.99)), cpu


def shadow_overhead() -> dict[str, dict[str, tuple[float, ...]]]:
    import torch

    from watchkeeper.integrations.torch import TorchChallenger
    from watchkeeper.sdk import LocalClient
    from watchkeeper.shadow import Shadow

    torch.set_num_threads(1)
    out: dict[str, dict[str, tuple[float, ...]]] = {}
    for kind, build in (("mlp", _mlp), ("cnn", _cnn)):
        champion, x = build(1), _inputs(kind)
        challenger = TorchChallenger(build(3), output="logits")
        rows: dict[str, list[tuple[float, ...]]] = {m: [] for m in MODES}
        for r in range(REPEATS):
            for mode in MODES:
                if mode == "alone":
                    rows[mode].append((*_q(_serve(champion, x, None, f"{kind}{r}")), 0))
                    continue
                with tempfile.TemporaryDirectory() as tmp:
                    wk = LocalClient(f"{tmp}/wk.db", project="bench")
                    if mode == "no-op":  # process mode, nothing computed nor logged
                        shadow = Shadow(noop_challenger, NullClient(), "bench", "v2",
                                        queue_size=1000, mode="process")  # fmt: skip
                    else:
                        shadow = Shadow(challenger, wk, "bench", "v2", queue_size=1000, mode=mode)
                    # process mode: let the child start (imports torch) before timing
                    shadow.submit(["warm"], x[:1])
                    shadow.flush(timeout=600)
                    run = _serve(champion, x, shadow, f"{kind}{r}{mode}")
                    shadow.close()
                    st = shadow.stats
                    assert st.scored + st.dropped == REQUESTS * BATCH + 1, st
                    rows[mode].append((*_q(run), st.dropped))
                    wk.close()
            print(f"  {kind} repeat {r + 1}: " + ", ".join(
                f"{m} p50 {rows[m][-1][0]:.3f} p99 {rows[m][-1][1]:.3f} cpu {rows[m][-1][2]:.3f}"
                for m in MODES
            ), f"(load {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip

        out[kind] = {
            m: tuple(statistics.median(v[j] for v in vals) for j in range(4))
            for m, vals in rows.items()
        }
    return out


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
    load_before = os.getloadavg()
    ov = shadow_overhead()
    load_after = os.getloadavg()
    seq = sequential_vs_fixed()
    lines = [
        "## Retraining loop: shadow overhead, sequential decisions",
        "",
        machine_line(),
        "Command: `.venv/bin/python -m benchmarks.loop` "
        f"(medians of {REPEATS} runs; {time.perf_counter() - t0:.0f} s in all). Load average "
        f"(1/5/15 min) {' / '.join(f'{v:.1f}' for v in load_before)} before the shadow runs, "
        f"{' / '.join(f'{v:.1f}' for v in load_after)} after.",
        "",
        f"Champion latency per request (forward pass plus `submit`; {REQUESTS:,} requests of "
        f"{BATCH}, one every ~{GAP_S * 1000:.0f} ms plus their own time; challenger of the "
        "same size in shadow, queue 1,000 batches, its events logged to SQLite; one torch "
        "thread; every mode interleaved with the champion alone in every repeat). The no-op row "
        "is process mode with a challenger that computes and logs nothing: the serving path's "
        "own cost. On two cores the challenger's compute competes with the champion's for the "
        "same cores (and caches), which the process row includes and the no-op row does not:",
        "",
        "| champion | mode | p50 ms | p99 ms | p50 overhead | p99 overhead | serving process "
        "CPU ms / request | dropped events |",
        "|---|---|---|---|---|---|---|---|",
    ]
    names = {"mlp": "MLP 256-256-256-1", "cnn": "demo CNN, 64x64 RGB"}
    labels = {"alone": "alone", "thread": "thread", "process": "process",
              "no-op": "process, no-op challenger"}  # fmt: skip
    for kind, rows in ov.items():
        alone = rows["alone"]
        for mode in MODES:
            p50, p99, cpu, dropped = rows[mode]
            over = (
                ("-", "-")
                if mode == "alone"
                else (f"{100 * (p50 / alone[0] - 1):+.1f}%", f"{100 * (p99 / alone[1] - 1):+.1f}%")
            )
            lines.append(
                f"| {names[kind]} | {labels[mode]} | {p50:.3f} | {p99:.3f} | {over[0]} | "
                f"{over[1]} | {cpu:.3f} | {'-' if mode == 'alone' else f'{dropped:.0f}'} |"
            )
    lines += [
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
