"""The retraining loop: shadow overhead on the champion's latency; sequential versus fixed horizon.

1. **Shadow overhead.** Two CPU champions serve batches of 32 at a steady rate (a request
   every ``GAP_S`` plus its own time): an MLP (256-256-256-1, under a millisecond) and the
   document-fraud demo's CNN on 64x64 RGB images (milliseconds). Every run alternates blocks
   of ``BLOCK`` requests between two arms, mirrored to the shadow and not mirrored (the
   shadow caught up first), so the machine's slow spells fall on both arms alike; the
   overhead is the mirrored arm's p99 against the same run's unmirrored arm. Modes
   (``MODES``), run in a shuffled order in every repeat: **alone** in both arms (the noise of
   the measurement); the challenger in a **thread**; in a **process** at niceness 10 (the
   default); in a process with a challenger that computes and logs nothing (the serving
   path's own cost); in a process under ``SCHED_IDLE``; **deferred** (it computes only
   between requests); and pinned, the champion on CPU 0 and the challenger on CPU 1. The
   challenger is the same network with other weights (a
   :class:`~watchkeeper.integrations.torch.TorchChallenger`), its events logged into a
   ``LocalClient`` on an SQLite file; queue of 1,000 batches; one torch thread on each side.
   Figures: p50 and p99 per request of both arms (forward pass plus ``submit``), the paired
   p99 overhead (median, min and max over the repeats), ``submit``'s own time, CPU per
   request of both processes, and the events the shadow shed.
2. **Sequential versus fixed horizon.** The always-valid :class:`SequentialPairedTest`
   (alpha 0.05) against the exact McNemar test at alpha 0.05 with 80% power: discordant events
   each needs to decide, for a challenger winning 60-75% of the discordant events, over
   ``RUNS`` simulated streams; the sequential test's maximum is three fixed horizons.

Run: ``.venv/bin/python -m benchmarks.loop`` (both parts, about 25 minutes idle);
``--only overhead --quick`` for the overhead alone in about 10 minutes (5 repeats, 500 CNN
requests an arm, no thread mode); ``--repeats N``, ``--models mlp``, ``--modes deferred,alone``,
``--requests N``. No peer offers either:
Seldon and KServe mirror traffic at the infrastructure level and leave the comparison to the
user; none decides sequentially.
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

REPEATS = int(os.environ.get("WK_BENCH_REPEATS", "7"))
REQUESTS = {"mlp": 2000, "cnn": 1000}  # a run's requests in each arm (shadow on, shadow off)
QUICK_REQUESTS = {"mlp": 1000, "cnn": 500}
QUICK_REPEATS = 5
BLOCK = 50  # requests a block; the blocks alternate between the arms
GAP_S = 0.002  # a request every ~2 ms plus its own time
BATCH = 32
RUNS = 400
# every mode of one repeat runs in a shuffled order; "alone" mirrors nothing in either arm: its
# "overhead" is the measurement's own noise
MODES = ("alone", "thread", "process", "no-op", "idle", "deferred", "pinned")
QUICK_MODES = tuple(m for m in MODES if m != "thread")
LABELS = {
    "alone": "alone in both arms (the noise)",
    "thread": "thread",
    "process": "process (niceness 10)",
    "no-op": "process, no-op challenger",
    "idle": "process, SCHED_IDLE",
    "deferred": "process, deferred (computes between requests)",
    "pinned": "process, champion on CPU 0, challenger on CPU 1",
}
CHAMPION_CPU, CHALLENGER_CPU = 0, 1


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


def _cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of a live process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _serve(
    champion: Any, x: np.ndarray, shadow: Any | None, tag: str, requests: int
) -> dict[str, float]:
    """Serve ``requests`` batches in blocks of ``BLOCK`` that alternate between two arms: the
    request mirrored to ``shadow`` (marked as served, as :meth:`Shadow.wrap` does) and not
    mirrored, after the shadow has caught up (untimed). A slow minute of a shared machine then
    falls on both arms alike, which runs one after the other would not give. Latency per
    request: forward pass plus ``submit``; ``submit``'s own time; CPU per mirrored request of
    the serving process and of the child."""
    import torch

    xt = torch.from_numpy(x)
    lat = {True: np.empty(requests), False: np.empty(requests)}
    sub = np.zeros(requests)
    done = {True: 0, False: 0}
    base = np.arange(BATCH).astype(str)
    pid = None if shadow is None else shadow.pid
    cpu = child = 0.0
    with torch.no_grad():
        champion(xt)  # warm-up
        for block in range(2 * -(-requests // BLOCK)):
            mirrored = block % 2 == 0
            i0 = done[mirrored]
            count = min(BLOCK, requests - i0)
            if shadow is not None and not mirrored:
                shadow.flush(timeout=600)  # the challenger idle: this arm is the champion alone
            if mirrored:
                cpu0, child0 = time.process_time(), 0.0 if pid is None else _cpu_s(pid)
            for i in range(i0, i0 + count):
                ids = np.char.add(f"{tag}-{i}-", base)  # the request ids arrive with the request
                t0 = time.perf_counter()
                if shadow is None or not mirrored:
                    champion(xt)
                    t1 = time.perf_counter()
                else:
                    shadow.begin_serving()
                    champion(xt)
                    t1 = time.perf_counter()
                    shadow.submit(ids, x)
                    shadow.end_serving()
                t2 = time.perf_counter()
                lat[mirrored][i] = (t2 - t0) * 1000.0
                if mirrored:
                    sub[i] = (t2 - t1) * 1e6
                time.sleep(GAP_S)
            if mirrored:  # what the challenger spent while serving went on (not the drain)
                cpu += time.process_time() - cpu0
                child += 0.0 if pid is None else _cpu_s(pid) - child0
            done[mirrored] += count
    on, off = lat[True], lat[False]
    return {
        "p50": float(np.quantile(on, 0.5)), "p99": float(np.quantile(on, 0.99)),
        "p50_off": float(np.quantile(off, 0.5)), "p99_off": float(np.quantile(off, 0.99)),
        "submit_p50_us": float(np.quantile(sub, 0.5)),
        "submit_p99_us": float(np.quantile(sub, 0.99)),
        "cpu_ms": cpu / requests * 1000.0, "child_cpu_ms": child / requests * 1000.0,
    }  # fmt: skip


def _shadow(mode: str, challenger: Any, client: Any) -> Any:
    from watchkeeper.shadow import Shadow

    if mode == "no-op":  # process mode, nothing computed nor logged
        return Shadow(noop_challenger, NullClient(), "bench", "v2", queue_size=1000,
                      mode="process")  # fmt: skip
    kwargs: dict[str, Any] = {"queue_size": 1000}
    if mode == "thread":
        kwargs["mode"] = "thread"
    else:
        kwargs["mode"] = "process"
        kwargs["idle"] = mode == "idle"
        kwargs["defer"] = mode == "deferred"
        if mode == "pinned":
            kwargs["cpus"] = {CHALLENGER_CPU}
    return Shadow(challenger, client, "bench", "v2", **kwargs)


def _run(mode: str, kind: str, champion: Any, challenger: Any, x: np.ndarray, tag: str,
         requests: int) -> dict[str, float]:  # fmt: skip
    from watchkeeper.sdk import LocalClient

    every = os.sched_getaffinity(0)
    if mode == "pinned":
        os.sched_setaffinity(0, {CHAMPION_CPU})
    try:
        if mode == "alone":
            return {**_serve(champion, x, None, tag, requests), "dropped": 0.0}
        with tempfile.TemporaryDirectory() as tmp:
            wk = LocalClient(f"{tmp}/wk.db", project="bench")
            shadow = _shadow(mode, challenger, wk)
            # let the child start (it imports torch) before timing
            shadow.submit(["warm"], x[:1])
            shadow.flush(timeout=600)
            run = _serve(champion, x, shadow, tag, requests)
            shadow.flush(timeout=600)
            shadow.close()
            st = shadow.stats
            assert st.scored + st.dropped + st.lost == requests * BATCH + 1, st
            wk.close()
            return {**run, "dropped": float(st.dropped + st.lost)}
    finally:
        os.sched_setaffinity(0, every)


def shadow_overhead(
    kinds: tuple[str, ...], modes: tuple[str, ...], repeats: int, requests: dict[str, int]
) -> dict[str, dict[str, list[dict[str, float]]]]:
    """Every mode of every repeat, in a shuffled order per repeat; each run's load average."""
    import random

    import torch

    from watchkeeper.integrations.torch import TorchChallenger

    torch.set_num_threads(1)
    order = random.Random(7)
    out: dict[str, dict[str, list[dict[str, float]]]] = {}
    for kind in kinds:
        build = _mlp if kind == "mlp" else _cnn
        champion, x = build(1), _inputs(kind)
        challenger = TorchChallenger(build(3), output="logits")
        rows: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
        for r in range(repeats):
            shuffled = list(modes)
            order.shuffle(shuffled)
            for mode in shuffled:
                run = _run(mode, kind, champion, challenger, x, f"{kind}{r}{mode}",
                           requests[kind])  # fmt: skip
                rows[mode].append({**run, "load": os.getloadavg()[0]})
            print(f"  {kind} repeat {r + 1}/{repeats}: " + ", ".join(
                f"{m} p99 {rows[m][-1]['p99']:.3f}/{rows[m][-1]['p99_off']:.3f}" for m in modes
            ), f"(load {os.getloadavg()[0]:.1f})", flush=True)  # fmt: skip
        out[kind] = rows
    return out


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs)


def _paired(runs: list[dict[str, float]], key: str) -> list[float]:
    """Each run's mirrored arm against its own unmirrored arm (same run, blocks interleaved),
    in %."""
    return [100.0 * (r[key] / r[f"{key}_off"] - 1.0) for r in runs]


def overhead_section(ov: dict[str, dict[str, list[dict[str, float]]]], repeats: int,
                     requests: dict[str, int], command: str, seconds: float,
                     loads: tuple[Any, Any]) -> str:  # fmt: skip
    names = {"mlp": "MLP 256-256-256-1", "cnn": "demo CNN, 64x64 RGB"}
    run_loads = [r["load"] for rows in ov.values() for runs in rows.values() for r in runs]
    lines = [
        "## Retraining loop: shadow overhead on the champion's latency",
        "",
        machine_line(),
        f"Command: `{command}` ({repeats} repeats, {seconds:.0f} s in all). Load average "
        f"(1/5/15 min) {' / '.join(f'{v:.1f}' for v in loads[0])} before, "
        f"{' / '.join(f'{v:.1f}' for v in loads[1])} after; the 1-minute load during the runs "
        f"{min(run_loads):.1f} to {max(run_loads):.1f} (median "
        f"{statistics.median(run_loads):.1f}). Latencies measured on a loaded machine are "
        "indicative only.",
        "",
        f"Each champion serves batches of {BATCH}, one every ~{GAP_S * 1000:.0f} ms plus its own "
        "time; the challenger in shadow is the same network with other weights, queue of 1,000 "
        "batches, its events logged to SQLite; one torch thread on each side. A run serves "
        + ", ".join(f"{requests[k]:,} requests for the {names[k]}" for k in ov)
        + f" in each of two arms, in blocks of {BLOCK} that alternate: mirrored to the shadow "
        "(and marked as served, as `Shadow.wrap` does), and not mirrored, the shadow caught up "
        "beforehand. The overhead is each run's mirrored p99 against the same run's unmirrored "
        "p99, median [min, max] over the repeats: a slow spell of the shared machine falls on "
        "both arms alike. *alone in both arms* mirrors nothing: its overhead is the noise of "
        "the measurement. In every repeat the modes run in a shuffled order; *pinned* serves "
        "on CPU 0 in both arms. `submit` is the serving thread's whole cost of mirroring a "
        "batch (µs, median of the repeats' p50 / p99); its p50 over the unmirrored p99 is "
        "what the shadow adds even when the challenger takes no CPU from the champion. CPU "
        "per mirrored request: the serving process, and the challenger's process while "
        "serving went on. Dropped: events the shadow shed (counted, never waited for).",
        "",
        "| champion | mode | p50 ms mirrored / not | p99 ms mirrored / not | p99 overhead, median "
        "[min, max] | `submit` µs p50 / p99 | `submit` p50 / p99 | serving CPU ms / req | "
        "challenger CPU ms / req | dropped events (median) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind, rows in ov.items():
        for mode, runs in rows.items():
            paired = _paired(runs, "p99")
            over = f"{statistics.median(paired):+.1f}% [{min(paired):+.1f}, {max(paired):+.1f}]"
            shadowed = mode != "alone"
            floor = "-"
            if shadowed:
                cost = [r["submit_p50_us"] / 1000 / r["p99_off"] * 100 for r in runs]
                floor = f"{statistics.median(cost):.1f}%"
            lines.append(
                f"| {names[kind]} | {LABELS[mode]} | {_median(runs, 'p50'):.3f} / "
                f"{_median(runs, 'p50_off'):.3f} | {_median(runs, 'p99'):.3f} / "
                f"{_median(runs, 'p99_off'):.3f} | {over} | "
                + (f"{_median(runs, 'submit_p50_us'):.1f} / {_median(runs, 'submit_p99_us'):.1f}"
                   if shadowed else "-")
                + f" | {floor} | {_median(runs, 'cpu_ms'):.3f} | "
                + (f"{_median(runs, 'child_cpu_ms'):.3f}" if shadowed and mode != "thread"
                   else "-")
                + (f" | {_median(runs, 'dropped'):.0f} |" if shadowed else " | - |")
            )  # fmt: skip
    return "\n".join(lines)


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


def sequential_section(seq: list[dict[str, Any]]) -> str:
    lines = [
        "## Retraining loop: sequential versus fixed-horizon decisions",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} (simulation: no timing). Command: "
        "`.venv/bin/python -m benchmarks.loop --only sequential`.",
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
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    import argparse
    import sys

    parser = argparse.ArgumentParser(prog="python -m benchmarks.loop", description=__doc__)
    parser.add_argument("--only", choices=("overhead", "sequential"),
                        help="run one part (default: both)")  # fmt: skip
    parser.add_argument(
        "--quick",
        action="store_true",
        help="overhead: 5 repeats, 500 CNN requests an arm, no thread mode (about 10 minutes)",
    )
    parser.add_argument("--repeats", type=int, help=f"overhead: repeats ({REPEATS}; quick 5)")
    parser.add_argument("--models", default="mlp,cnn", help="overhead: mlp, cnn or both")
    parser.add_argument("--modes", help="overhead: these modes only, comma-separated: "
                        + ", ".join(MODES))
    parser.add_argument("--requests", type=int,
                        help="overhead: requests a run for each model (default "
                        f"{REQUESTS['cnn']:,}; quick: CNN {QUICK_REQUESTS['cnn']})")
    args = parser.parse_args(argv)
    kinds = tuple(k.strip() for k in args.models.split(",") if k.strip())
    if not kinds or not set(kinds) <= {"mlp", "cnn"}:
        parser.error(f"--models: expected mlp, cnn or mlp,cnn, got {args.models!r}")
    if args.repeats is None:
        args.repeats = QUICK_REPEATS if args.quick else REPEATS
    if args.repeats < 1:
        parser.error(f"--repeats: expected at least 1, got {args.repeats}")
    if len(os.sched_getaffinity(0)) < 2 or not {CHAMPION_CPU, CHALLENGER_CPU} <= set(
        os.sched_getaffinity(0)
    ):
        parser.error(f"the pinned modes need CPUs {CHAMPION_CPU} and {CHALLENGER_CPU}")
    if args.only in (None, "overhead"):
        t0 = time.perf_counter()
        modes = QUICK_MODES if args.quick else MODES
        if args.modes:
            asked = {m.strip() for m in args.modes.split(",") if m.strip()}
            if not asked or not asked <= set(MODES):
                parser.error(f"--modes: expected some of {', '.join(MODES)}, got {args.modes!r}")
            modes = tuple(m for m in MODES if m in asked)
        requests = QUICK_REQUESTS if args.quick else REQUESTS
        if args.requests is not None:
            if args.requests < 100:
                parser.error(f"--requests: expected at least 100, got {args.requests}")
            requests = dict.fromkeys(requests, args.requests)
        before = os.getloadavg()
        ov = shadow_overhead(kinds, modes, args.repeats, requests)
        command = " ".join([".venv/bin/python -m benchmarks.loop", *sys.argv[1:]]).strip()
        text = overhead_section(ov, args.repeats, requests, command, time.perf_counter() - t0,
                                (before, os.getloadavg()))  # fmt: skip
        print(text)
        write_section("loop", text)
    if args.only in (None, "sequential"):
        text = sequential_section(sequential_vs_fixed())
        print(text)
        write_section("loop_sequential", text)


if __name__ == "__main__":
    main()
