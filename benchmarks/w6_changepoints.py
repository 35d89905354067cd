"""W6 streaming: margin-F1 of the streaming detectors on series with trends, seasonality and
autocorrelation, annotated real series and generated ones.

Score: the margin-F1 of van den Burg & Williams (2020), "An evaluation of change point detection
algorithms": a detection within ``margin`` values of an annotated change is a true positive
(each annotation matched at most once, to its closest detection), the start of the series
counts as a change in both sets, precision = true positives / detections, recall = matched
annotations / annotations, F1 their harmonic mean. So a detector that never fires scores
2 / (2 + k) on a series with k changes (1.0 on a series without any) — the baseline to beat.

Every detector sees the series as a stream, one value at a time (detections are the positions
at which it signalled, so detection delay counts against it), standardised by the median and
MAD of its first 30 values (what a user knows when the stream starts). Each detector runs with
its defaults; the seasonal detector is told the period of each series. Defaults of ``BOCPD`` and
``SeasonalCUSUM`` were chosen on generated series with seeds 0–99 (``--dev``); the table
reports seeds 1000–1199 and the annotated series, which were not used to choose anything.

Run: ``.venv/bin/python -m benchmarks.w6_changepoints [--dev]``
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import machine_line, write_section

DATA = Path(__file__).resolve().parent / "data" / "changepoints.json"
MARGIN = 5


def margin_f1(changes: list[int], detections: list[int], margin: int = MARGIN) -> float:
    """van den Burg & Williams (2020) F1 for one annotation set (index 0 counts in both)."""
    truth = sorted({0, *changes})
    found = sorted({0, *(int(d) for d in detections)})
    free = list(found)
    hits = 0
    for tau in truth:
        near = [(abs(tau - x), x) for x in free if abs(tau - x) <= margin]
        if near:
            hits += 1
            free.remove(min(near)[1])
    precision = hits / len(found)
    recall = hits / len(truth)
    return 0.0 if hits == 0 else 2 * precision * recall / (precision + recall)


def generated(seed: int) -> dict[str, Any]:
    """A daily-like series: weekly pattern, trend, AR(1) noise, 0–3 level shifts."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(300, 730))
    phi = float(rng.choice([0.0, 0.3, 0.6, 0.8]))
    sd = 1.0
    noise = np.empty(n)
    noise[0] = rng.normal(0, sd / np.sqrt(1 - phi**2))
    eps = rng.normal(0, sd, n)
    for t in range(1, n):
        noise[t] = phi * noise[t - 1] + eps[t]
    marginal = sd / np.sqrt(1 - phi**2)
    days = np.arange(n)
    season = float(rng.uniform(0, 3)) * marginal * np.sin(2 * np.pi * days / 7 + rng.uniform(0, 7))
    trend = float(rng.normal(0, 2)) * marginal * days / n
    k = int(rng.integers(0, 4))
    changes: list[int] = []
    level = np.zeros(n)
    for _ in range(50):
        if len(changes) == k:
            break
        c = int(rng.integers(60, n - 30))
        if all(abs(c - o) >= 60 for o in changes):
            changes.append(c)
    for c in sorted(changes):
        level[c:] += float(rng.choice([-1, 1]) * rng.uniform(2, 4)) * marginal
    values = 10 + season + trend + noise + level
    return {"name": f"gen-{seed}", "values": values, "changes": sorted(changes), "period": 7}


def annotated() -> list[dict[str, Any]]:
    series = json.loads(DATA.read_text())["series"]
    keys = ("name", "changes", "period")
    return [{**{k: s[k] for k in keys}, "values": np.asarray(s["values"], float)} for s in series]


def standardise(values: np.ndarray) -> np.ndarray:
    head = values[:30]
    scale = 1.4826 * np.median(np.abs(head - np.median(head)))
    return (values - np.median(head)) / (scale if scale > 0 else 1.0)


def detectors(period: int) -> dict[str, Callable[[], Any]]:
    from watchkeeper import detectors as wk

    return {
        "never": lambda: None,
        "ADWIN": wk.ADWIN,
        "PageHinkley": wk.PageHinkley,
        "CUSUM": wk.CUSUM,
        "KSWIN": wk.KSWIN,
        "BOCPD": wk.BOCPD,
        "SeasonalCUSUM": lambda: wk.SeasonalCUSUM(period=period),
    }


def score(series: list[dict[str, Any]]) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for s in series:
        z = standardise(s["values"])
        for name, make in detectors(s["period"]).items():
            det = make()
            found = [] if det is None else det.update_many(z).tolist()
            out.setdefault(name, []).append(margin_f1(s["changes"], found))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dev", action="store_true", help="the tuning seeds 0-99 only")
    args = parser.parse_args()
    if args.dev:
        res = score([generated(i) for i in range(100)])
        for name, f in res.items():
            print(f"{name:14s} {np.mean(f):.3f}")
        return
    start = time.perf_counter()
    gen = [generated(1000 + i) for i in range(200)]
    real = annotated()
    res_gen = score(gen)
    res_real = score(real)
    seconds = time.perf_counter() - start
    names = list(res_gen)
    lines = [
        "## W6 streaming: margin-F1 on series with trends, seasonality and autocorrelation",
        "",
        machine_line(),
        "Reproduce: `.venv/bin/python -m benchmarks.w6_changepoints` (no network; the "
        "annotated series are committed in `benchmarks/data/changepoints.json` with their "
        f"sources). Margin {MARGIN}; F1 as in van den Burg & Williams (2020) (the start "
        "of a series counts as a change); detections are where the stream detector signalled, "
        "so delay counts. *never* is a detector that never fires. Defaults of BOCPD and "
        "SeasonalCUSUM were chosen on generated seeds 0–99; none of the series below was used "
        "to choose anything.",
        "",
        "| series | changes | n | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for i, s in enumerate(real):
        lines.append(
            f"| {s['name']} | {s['changes'] or '–'} | {s['values'].size} | "
            + " | ".join(f"{res_real[n][i]:.2f}" for n in names)
            + " |"
        )
    lines.append(
        f"| **mean, annotated ({len(real)})** | | | "
        + " | ".join(f"**{np.mean(res_real[n]):.3f}**" for n in names)
        + " |"
    )
    lines.append(
        f"| **mean, generated ({len(gen)})** | 0–3 | 300–729 | "
        + " | ".join(f"**{np.mean(res_gen[n]):.3f}**" for n in names)
        + " |"
    )
    real_mean = {n: float(np.mean(res_real[n])) for n in names}
    gen_mean = {n: float(np.mean(res_gen[n])) for n in names}
    above = [n for n in names if n != "never" and gen_mean[n] > gen_mean["never"]]
    lines += [
        "",
        f"**Reading.** On the generated series only {', '.join(above) or 'none'} beat the "
        f"detector that never fires ({gen_mean['never']:.3f}); the detectors that assume "
        "independent values around one mean fire on the weekly swing, the trend and the "
        "autocorrelation. On the annotated series BOCPD scores "
        f"{real_mean['BOCPD']:.3f} and SeasonalCUSUM {real_mean['SeasonalCUSUM']:.3f} "
        f"(never: {real_mean['never']:.3f}: two of the four series have no annotated change, "
        "where silence scores 1). Neither new detector signals the Nile's drop (about two "
        "standard deviations of the yearly noise, after 28 values of warm-up and history): "
        "BOCPD's rule needs the evidence within six values, SeasonalCUSUM's residuals shrink "
        "as its level follows; the GDP break is a change of variance only, which BOCPD "
        "(unknown variance per run) signals late and SeasonalCUSUM not at all. "
        "Both new detectors ran with their defaults; only the seasonal period was given.",
        "",
        f"Took {seconds:.0f} s.",
    ]
    text = "\n".join(lines)
    print(text)
    write_section("W6-streaming", text)


if __name__ == "__main__":
    main()
