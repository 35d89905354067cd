"""Console: server time of the sample explorer and the model page with 1,000,000 events.

A SQLite store holds one model with 1,000,000 events (10 numeric features, a score, a version,
two tags of which one is rare, a payload reference on every tenth event, labels on a tenth) in
batches of 5,000, 30 daily windows of findings (an operating-point finding and one drift finding
per feature each) and their metric values. Through the real app (``create_app`` and a signed-in
console session, FastAPI's TestClient, so the figure is the server's time: routing, session
check, the store query, the template), we time the median of several requests of:

- **explorer, first page**: 100 samples, newest first, no filter;
- **explorer, deep page**: 100 samples from a cursor in the middle of the table;
- **explorer, flagged**: 100 flagged samples of one day (about a third match);
- **explorer, rare**: 100 samples of a rare tag value (1% of events) with a score range;
- **model page**: every chart of 30 windows of findings;
- **report**: ``watchkeeper report``'s HTML (``render_report``), charts and Plotly embedded.

The baseline a tool without keyset pages has: load the range into memory
(``Store.read_window`` of the whole table, a pandas frame), filter, sort, take 100.

Run: ``.venv/bin/python -m benchmarks.console`` (``--events 100000`` for a quicker run).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import machine_line, median_time, write_section

T0 = 1_700_000_000.0
DAY = 86_400.0
BATCH = 5_000
N_FEATURES = 10


def fill(store: Any, project: str, model: str, n: int, days: int) -> float:
    """Log ``n`` events spread over ``days`` days; returns the ingest time."""
    from watchkeeper.window import Window

    rng = np.random.default_rng(0)
    span = days * DAY
    began = time.perf_counter()
    for start in range(0, n, BATCH):
        k = min(BATCH, n - start)
        ts = T0 + (start + np.arange(k)) * span / n
        source = np.where(rng.random(k) < 0.01, "rare", rng.choice(["a", "b", "c"], k))
        refs = np.full(k, None, dtype=object)
        refs[::10] = "sha256:" + "0" * 64
        store.log_events(
            project,
            model,
            Window.from_columns(
                ids=[f"e{i}" for i in range(start, start + k)],
                ts=ts,
                scores=rng.random(k),
                features={f"x{j}": rng.normal(size=k) for j in range(N_FEATURES)},
                tags={"source": source, "payload_ref": refs},
                versions=["v1"] * k,
            ),
        )
        labelled = [f"e{i}" for i in range(start, start + k, 10)]
        store.log_labels(project, model, labelled, rng.integers(0, 2, len(labelled)))
    return time.perf_counter() - began


def findings(store: Any, project: str, model: str, days: int) -> None:
    rng = np.random.default_rng(1)
    rows = []
    for d in range(days):
        start, end = T0 + d * DAY, T0 + (d + 1) * DAY
        observed = float(rng.normal(110, 10))
        rows.append(
            {"check": "operating_point", "subject": "flags", "method": "flag_count",
             "statistic": observed, "p_value": 0.5, "drift": observed > 126,
             "window_start": start, "window_end": end,
             "details": {"expected": 108.0, "low": 90.0, "high": 126.0,
                         "verdict": "as_expected"}}
        )  # fmt: skip
        for j in range(N_FEATURES):
            p = float(rng.random())
            rows.append(
                {"check": "feature_drift", "subject": f"x{j}", "method": "ks",
                 "statistic": float(rng.random()), "p_value": p, "drift": p < 0.01,
                 "window_start": start, "window_end": end}
            )  # fmt: skip
        store.add_metric_values(project, model, end, {"events": 1.0e6 / days, "flag_rate": 0.5})
    store.add_findings(project, model, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    from fastapi.testclient import TestClient

    from watchkeeper.server import Settings, create_app
    from watchkeeper.store import Store
    from watchkeeper.store._console import SampleQuery, console
    from watchkeeper.ui import render_report

    days = 30
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(f"sqlite:///{Path(tmp) / 'console.db'}", synchronous="NORMAL")
        project, model = "bench", "m"
        store.create_project(project)
        store.register_model_version(project, model, "v1", operating_point={"threshold": 0.5})
        ingest = fill(store, project, model, args.events, days)
        findings(store, project, model, days)
        token = store.create_token(project, {"read"})
        app = create_app(Settings(system_metrics=False, monitor_metrics=False), store=store)
        figures: dict[str, float] = {}
        with TestClient(app, follow_redirects=False) as client:
            assert client.post("/ui/login", data={"token": token}).status_code == 303
            base = f"/ui/models/{model}/samples"
            mid = console(store).sample_page(
                project, model, SampleQuery(end=T0 + days * DAY / 2), limit=1
            )
            cases: dict[str, tuple[str, dict[str, str]]] = {
                "explorer, first page": (base, {}),
                "explorer, deep page": (base, {"cursor": str(mid.next_cursor)}),
                "explorer, flagged, one day": (
                    base, {"flagged": "yes", "start": repr(T0 + 3 * DAY),
                           "end": repr(T0 + 4 * DAY)},
                ),
                "explorer, rare tag (1%) and score ≥ 0.5": (
                    base, {"tag": "source=rare", "score_min": "0.5"},
                ),
                "model page": (f"/ui/models/{model}", {}),
            }  # fmt: skip
            for name, (url, params) in cases.items():
                r = client.get(url, params=params)
                assert r.status_code == 200, (name, r.status_code, r.text[:300])
                if name.startswith("explorer"):
                    assert r.text.count('class="sample"') == 100, name
                figures[name], _ = median_time(
                    lambda u=url, p=params: client.get(u, params=p), args.repeats
                )
        figures["report (render_report)"], html = median_time(
            lambda: render_report(store, project, model), 3
        )

        def naive() -> Any:
            w = store.read_window(project, model, embeddings=False)
            frame = w.to_frame() if hasattr(w, "to_frame") else None
            if frame is None:
                import pandas as pd

                frame = pd.DataFrame({"id": w.ids, "ts": w.ts, "score": w.scores,
                                      "source": w.tags["source"]})  # fmt: skip
            hit = frame[(frame["source"] == "rare") & (frame["score"] >= 0.5)]
            return hit.sort_values("ts", ascending=False).head(100)

        baseline, _ = median_time(naive, 3)
        store.close()

    lines = [
        f"{args.events:,} events in one SQLite store (stored in {ingest:.0f} s through "
        "`Store.log_events`), 30 daily windows of findings; the server's time for one request "
        f"through the app (median of {args.repeats}), signed in.",
        "",
        "| request | server time (ms) | target |",
        "|---|---:|---:|",
    ]
    for name, seconds in figures.items():
        target = "< 300" if name.startswith("explorer") else ""
        lines.append(f"| {name} | {seconds * 1000:.0f} | {target} |")
    lines.append(
        f"| baseline: load all events (`read_window`), filter the rare tag, sort, take 100 | "
        f"{baseline * 1000:.0f} | |"
    )
    load = os.getloadavg()[0]
    lines += [
        "",
        f"Load average {load:.1f} on the machine at the end of the run (other jobs shared its "
        "cores: the figures are upper bounds). "
        f"The report is one file of {len(html) / 1e6:.1f} MB (Plotly.js embedded). "
        f"{machine_line()} Run: `.venv/bin/python -m benchmarks.console`.",
    ]
    text = "\n".join(lines)
    print(text)
    write_section("console", "## Console: explorer and model page with 1M events\n\n" + text)


if __name__ == "__main__":
    main()
