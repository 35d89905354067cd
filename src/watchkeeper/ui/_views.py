"""What the console's pages show, assembled from the store: statuses, charts, finding links.

Every chart is a Plotly figure as a plain dict (``{"data": [...], "layout": {...}}``) built from
stored findings and metric values, so the console page and the offline report draw the same
figures from the same function.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlencode

import numpy as np

FIRING = "firing"
MAX_FINDINGS = 5_000
MAX_MAP_POINTS = 1_500

_COLOURS = {"ok": "#2e7d32", "drifting": "#ef6c00", "firing": "#c62828"}


def _layout(title: str, **extra: Any) -> dict[str, Any]:
    layout: dict[str, Any] = {
        "title": {"text": title, "font": {"size": 14}},
        "margin": {"l": 50, "r": 20, "t": 40, "b": 40},
        "height": 280,
        "legend": {"orientation": "h", "y": -0.2},
        "xaxis": {"type": "date"},
    }
    layout.update(extra)
    return layout


def _when(ts: Any) -> str | None:
    if not isinstance(ts, int | float) or not math.isfinite(ts):
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


def iso(ts: Any) -> str:
    """A time for people (UTC), '' for none."""
    return _when(ts) or ""


def aliases_of(store: Any, project: str, model: str) -> dict[str, str]:
    """The model's aliases when the store has a registry (``list_aliases``), else none."""
    lister = getattr(store, "list_aliases", None)
    if lister is None:
        return {}
    try:
        return dict(lister(project, model))
    except (KeyError, ValueError):
        return {}


def alias_moves(store: Any, project: str, model: str) -> list[dict[str, Any]]:
    """Recorded alias moves when the store has a registry (``alias_history``), else none."""
    history = getattr(store, "alias_history", None)
    if history is None:
        return []
    try:
        return list(history(project, model))[-200:]
    except (KeyError, ValueError):
        return []


def model_status(
    findings: Sequence[Mapping[str, Any]], alerts: Sequence[Mapping[str, Any]]
) -> tuple[str, float | None]:
    """``("ok" | "drifting" | "firing", end of the last window)`` of a model."""
    last = max((f["window_end"] for f in findings if f.get("window_end") is not None), default=None)
    if any(a.get("status") == FIRING for a in alerts):
        return "firing", last
    latest = [
        f for f in findings if f.get("window_end") == last and f["check"] != "alert.transient"
    ]
    if any(f.get("drift") for f in latest):
        return "drifting", last
    return "ok", last


def overview(store: Any, project: str) -> list[dict[str, Any]]:
    """One row per model of the project: status, last window, its volume, aliases, alerts."""
    rows = []
    alerts = store.list_alerts(project)
    for model in store.list_models(project)[:500]:
        findings = store.list_findings(project, model, limit=200)
        mine = [a for a in alerts if a.get("model") == model]
        status, last = model_status(findings, mine)
        start = max(
            (
                f["window_start"]
                for f in findings
                if f.get("window_end") == last and f.get("window_start") is not None
            ),
            default=None,
        )
        volume = (
            store.count_events(project, model, start=start, end=last)
            if start is not None and last is not None
            else store.count_events(project, model)
        )
        rows.append(
            {
                "model": model,
                "status": status,
                "colour": _COLOURS[status],
                "last_window": iso(last),
                "volume": volume,
                "aliases": aliases_of(store, project, model),
                "firing": [a for a in mine if a.get("status") == FIRING],
            }
        )
    return rows


def samples_link(model: str, finding: Mapping[str, Any], prefix: str = "/ui") -> str:
    """The console address that opens the sample explorer on a finding's samples."""
    return f"{prefix}/models/{model}/findings/{int(finding['id'])}/samples"


def finding_filters(
    store: Any, project: str, model: str, finding: Mapping[str, Any]
) -> list[tuple[str, str]]:
    """Explorer parameters for a finding: its window and its cause.

    The cause: an out-of-band flag count shows the flagged events; a drifted feature (or score)
    the events in the tail it moved to (beyond the reference's 5th or 95th percentile, on the
    side the window's median moved to); a realised performance or calibration drop the labelled
    events the model got wrong; an estimated performance drop the flagged events.
    """
    params: dict[str, str] = {}
    start, end = finding.get("window_start"), finding.get("window_end")
    if start is not None:
        params["start"] = repr(float(start))
    if end is not None:
        params["end"] = repr(float(end))
    check = str(finding.get("check", ""))
    subject = str(finding.get("subject") or "")
    details = finding.get("details") or {}
    if check == "weak_segment" and isinstance(details.get("query"), str):
        from urllib.parse import parse_qsl

        pairs = [(k, v) for k, v in parse_qsl(details["query"])[:20]
                 if k in ("tag", "feature", "flagged", "correct")]  # fmt: skip
        return [*params.items(), *pairs]
    if check == "operating_point":
        params["flagged"] = "yes"
    elif check in ("realised_performance", "calibration") or (
        check.startswith("streaming") and subject == "error"
    ):
        params["correct"] = "no"
    elif check in ("shift_diagnosis", "estimated_performance") or (
        check.startswith("streaming") and subject == "flag"
    ):
        params["flagged"] = "yes"
    elif check in ("feature_drift", "prediction_drift", "training_serving_skew") and subject:
        tail = _tail(store, project, model, subject, start, end)
        if tail is not None:
            low, high = tail
            if subject == "score":
                if low is not None:
                    params["score_min"] = repr(low)
                if high is not None:
                    params["score_max"] = repr(high)
            else:
                params["feature"] = (
                    f"{subject}:{'' if low is None else repr(low)}:"
                    f"{'' if high is None else repr(high)}"
                )
    return list(params.items())


def _column(w: Any, subject: str) -> np.ndarray | None:
    values = w.scores if subject == "score" else w.features.get(subject)
    if values is None or np.asarray(values).dtype.kind not in "fiu":
        return None
    out: np.ndarray = np.asarray(values, dtype=float)
    finite: np.ndarray = out[np.isfinite(out)]
    return finite


def _tail(
    store: Any, project: str, model: str, subject: str, start: Any, end: Any
) -> tuple[float | None, float | None] | None:
    """The reference tail a drifted column moved into, as an inclusive ``(low, high)``."""
    try:
        reference = store.get_reference(project, model)
    except (KeyError, ValueError):
        return None
    ref = _column(reference, subject)
    if ref is None or not ref.size or start is None:
        return None
    window = store.read_window(project, model, start=start, end=end, embeddings=False)
    cur = _column(window, subject)
    if cur is None or not cur.size:
        return None
    q05, q50, q95 = np.quantile(ref, [0.05, 0.5, 0.95])
    if float(np.median(cur)) >= q50:
        return float(q95), None
    return None, float(q05)


def plain_details(details: Mapping[str, Any], limit: int = 40) -> list[tuple[str, str]]:
    """A finding's details as (key, short text) rows for a table (the first ``limit`` keys)."""
    rows = []
    for key in sorted(details)[:limit]:
        text = json.dumps(details[key], default=str)
        rows.append((str(key), text if len(text) <= 300 else text[:297] + "..."))
    return rows


def finding_rows(model: str, findings: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Drifted findings newest first, each with its samples link, for tables."""
    out = []
    for f in reversed(findings):
        if not f.get("drift") or f["check"] == "alert.transient":
            continue
        out.append(
            {
                **f,
                "when": iso(f.get("window_end")),
                "samples": samples_link(model, f),
                "verdict": (f.get("details") or {}).get("verdict"),
            }
        )
        if len(out) >= 200:
            break
    return out


def flags_chart(findings: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Flags per window against the expected band, with each window's verdict."""
    op = [f for f in findings if f["check"] == "operating_point"]
    if not op:
        return None
    x = [_when(f["window_end"]) for f in op]
    d = [f.get("details") or {} for f in op]
    low = [x.get("low") for x in d]
    high = [x.get("high") for x in d]
    expected = [x.get("expected") for x in d]
    verdicts = [x.get("verdict", "") for x in d]
    colours = ["#c62828" if f.get("drift") else "#1565c0" for f in op]
    return {
        "data": [
            {
                "x": x,
                "y": low,
                "mode": "lines",
                "line": {"width": 0},
                "showlegend": False,
                "name": "band low",
                "type": "scatter",
            },
            {
                "x": x,
                "y": high,
                "mode": "lines",
                "fill": "tonexty",
                "line": {"width": 0},
                "fillcolor": "rgba(21,101,192,0.15)",
                "name": "expected band",
                "type": "scatter",
            },
            {
                "x": x,
                "y": expected,
                "mode": "lines",
                "line": {"dash": "dot", "color": "#1565c0"},
                "name": "expected",
                "type": "scatter",
            },
            {
                "x": x,
                "y": [f["statistic"] for f in op],
                "mode": "markers+text",
                "marker": {"color": colours, "size": 9},
                "text": ["" if v in ("as_expected", "", None) else v for v in verdicts],
                "textposition": "top center",
                "name": "flags",
                "type": "scatter",
            },
        ],
        "layout": _layout("Flags per window against the expected band"),
    }


def performance_chart(findings: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Estimated (label-free) against realised performance, with their intervals."""
    traces = []
    colours = {"estimated_performance": "#6a1b9a", "realised_performance": "#2e7d32"}
    for check, colour in colours.items():
        rows = [f for f in findings if f["check"] == check]
        if not rows:
            continue
        details = [f.get("details") or {} for f in rows]
        y = [f["statistic"] for f in rows]
        traces.append(
            {
                "x": [_when(f["window_end"]) for f in rows],
                "y": y,
                "error_y": {
                    "type": "data",
                    "symmetric": False,
                    "array": [
                        None if d.get("high") is None else d["high"] - v
                        for d, v in zip(details, y, strict=True)
                    ],
                    "arrayminus": [
                        None if d.get("low") is None else v - d["low"]
                        for d, v in zip(details, y, strict=True)
                    ],
                },
                "mode": "lines+markers",
                "marker": {"color": colour},
                "line": {"color": colour},
                "name": f"{check.split('_')[0]} {rows[-1].get('subject', '')}",
                "type": "scatter",
            }
        )
        refs = [d.get("reference") for d in details]
        if any(r is not None for r in refs) and check == "estimated_performance":
            traces.append(
                {
                    "x": traces[-1]["x"],
                    "y": refs,
                    "mode": "lines",
                    "name": "reference",
                    "line": {"dash": "dot", "color": "#888"},
                    "type": "scatter",
                }
            )
    if not traces:
        return None
    return {"data": traces, "layout": _layout("Estimated against realised performance")}


def drift_heatmap(findings: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """Features × windows, coloured by -log10 p-value (or the statistic without one)."""
    rows = [
        f for f in findings if f["check"] == "feature_drift" and f.get("subject") not in (None, "*")
    ]
    if not rows:
        return None
    ends = sorted({f["window_end"] for f in rows if f.get("window_end") is not None})[-60:]
    features = sorted({str(f["subject"]) for f in rows})[:60]
    col = {e: i for i, e in enumerate(ends)}
    row = {s: i for i, s in enumerate(features)}
    z: list[list[float | None]] = [[None] * len(ends) for _ in features]
    for f in rows:
        if f.get("window_end") in col and str(f["subject"]) in row:
            p = f.get("p_value")
            value = -math.log10(max(p, 1e-300)) if p is not None else f.get("statistic")
            z[row[str(f["subject"])]][col[f["window_end"]]] = value
    return {
        "data": [
            {
                "z": z,
                "x": [_when(e) for e in ends],
                "y": features,
                "type": "heatmap",
                "colorscale": "YlOrRd",
                "colorbar": {"title": {"text": "-log10 p"}},
            },
        ],
        "layout": _layout(
            "Feature drift (features × windows)",
            margin={"l": 110, "r": 20, "t": 40, "b": 40},
            height=max(220, 40 + 22 * len(features)),
        ),
    }


def series_chart(
    findings: Sequence[Mapping[str, Any]], check: str, title: str, subject: str | None = None
) -> dict[str, Any] | None:
    """One check's statistic per window, drifted windows in red."""
    rows = [
        f
        for f in findings
        if f["check"] == check and (subject is None or f.get("subject") == subject)
    ]
    if not rows:
        return None
    return {
        "data": [
            {
                "x": [_when(f["window_end"]) for f in rows],
                "y": [f["statistic"] for f in rows],
                "mode": "lines+markers",
                "type": "scatter",
                "name": check,
                "marker": {"color": ["#c62828" if f.get("drift") else "#1565c0" for f in rows]},
            },
        ],
        "layout": _layout(title),
    }


def metrics_chart(
    metrics: Sequence[Mapping[str, Any]], names: Sequence[str], title: str
) -> dict[str, Any] | None:
    """Metric values over time, one line per name."""
    traces = []
    for name in names:
        rows = [m for m in metrics if m["name"] == name][-2_000:]
        if rows:
            traces.append(
                {
                    "x": [_when(m["ts"]) for m in rows],
                    "y": [m["value"] for m in rows],
                    "mode": "lines+markers",
                    "type": "scatter",
                    "name": name,
                }
            )
    if not traces:
        return None
    return {"data": traces, "layout": _layout(title)}


def timeline_chart(
    alerts: Sequence[Mapping[str, Any]], moves: Sequence[Mapping[str, Any]]
) -> dict[str, Any] | None:
    """Alerts and alias moves on one time axis."""
    traces = []
    if alerts:
        traces.append(
            {
                "x": [_when(a.get("started_at") or a.get("created_at")) for a in alerts],
                "y": ["alerts"] * len(alerts),
                "text": [f"{a.get('rule', a.get('key'))}: {a.get('status')}" for a in alerts],
                "mode": "markers",
                "type": "scatter",
                "name": "alerts",
                "marker": {
                    "symbol": "triangle-up",
                    "size": 12,
                    "color": ["#c62828" if a.get("status") == FIRING else "#888" for a in alerts],
                },
            }
        )
    if moves:
        traces.append(
            {
                "x": [_when(m.get("at")) for m in moves],
                "y": ["aliases"] * len(moves),
                "text": [
                    f"{m.get('alias')}: {m.get('from') or 'none'} → {m.get('to')}" for m in moves
                ],
                "mode": "markers",
                "type": "scatter",
                "name": "alias moves",
                "marker": {"symbol": "diamond", "size": 11, "color": "#6a1b9a"},
            }
        )
    if not traces:
        return None
    return {"data": traces, "layout": _layout("Alerts and alias moves", height=200)}


def embedding_map(
    store: Any,
    project: str,
    model: str,
    start: float | None,
    end: float | None,
    prefix: str = "/ui",
) -> dict[str, Any] | None:
    """A 2-D PCA of the reference's embeddings against a window's; a click opens the sample.

    Both sides are subsampled (seeded) to at most :data:`MAX_MAP_POINTS` points; the axes are
    the reference's first two principal components.
    """
    try:
        reference = store.get_reference(project, model)
    except (KeyError, ValueError):
        return None
    if reference.embeddings is None or start is None:
        return None
    window = store.read_window(project, model, start=start, end=end)
    if window.embeddings is None or not len(window):
        return None
    rng = np.random.default_rng(0)
    ref = np.asarray(reference.embeddings, dtype=np.float64)
    ref = ref[np.isfinite(ref).all(axis=1)]
    cur_ok = np.flatnonzero(np.isfinite(window.embeddings).all(axis=1))
    if len(ref) < 3 or len(cur_ok) < 1:
        return None
    if len(ref) > MAX_MAP_POINTS:
        ref = ref[rng.choice(len(ref), MAX_MAP_POINTS, replace=False)]
    if len(cur_ok) > MAX_MAP_POINTS:
        cur_ok = np.sort(rng.choice(cur_ok, MAX_MAP_POINTS, replace=False))
    cur = np.asarray(window.embeddings[cur_ok], dtype=np.float64)
    mean = ref.mean(axis=0)
    _, _, vt = np.linalg.svd(ref - mean, full_matrices=False)
    axes = vt[:2].T
    p_ref = (ref - mean) @ axes
    p_cur = (cur - mean) @ axes
    ids = window.ids[cur_ok].tolist()
    scores = None if window.scores is None else window.scores[cur_ok]
    link = f"{prefix}/models/{model}/samples?"
    return {
        "data": [
            {
                "x": p_ref[:, 0].round(4).tolist(),
                "y": p_ref[:, 1].round(4).tolist(),
                "mode": "markers",
                "type": "scatter",
                "name": "reference",
                "marker": {"color": "#9e9e9e", "size": 5, "opacity": 0.5},
            },
            {
                "x": p_cur[:, 0].round(4).tolist(),
                "y": p_cur[:, 1].round(4).tolist(),
                "mode": "markers",
                "type": "scatter",
                "name": "window",
                "text": ids,
                "customdata": [link + urlencode({"id": i}) for i in ids],
                "marker": {
                    "size": 6,
                    "opacity": 0.8,
                    **(
                        {
                            "color": np.nan_to_num(scores).round(3).tolist(),
                            "colorscale": "Viridis",
                            "colorbar": {"title": {"text": "score"}},
                        }
                        if scores is not None
                        else {"color": "#ef6c00"}
                    ),
                },
            },
        ],
        "layout": _layout(
            "Embedding map (PCA of the reference; click a point for its sample)",
            height=420,
            xaxis={"title": {"text": "PC1"}},
            yaxis={"title": {"text": "PC2"}},
        ),
    }


def model_page(store: Any, project: str, model: str, since: float | None = None) -> dict[str, Any]:
    """Everything the model page (and the report) shows."""
    findings = store.list_findings(project, model, since=since)[-MAX_FINDINGS:]
    alerts = store.list_alerts(project, model=model, since=since)
    metrics = store.list_metric_values(project, model, since=since)
    moves = alias_moves(store, project, model)
    status, last = model_status(findings, alerts)
    last_start = max(
        (
            f["window_start"]
            for f in findings
            if f.get("window_end") == last and f.get("window_start") is not None
        ),
        default=None,
    )
    charts = {
        "flags": flags_chart(findings),
        "performance": performance_chart(findings),
        "drift": drift_heatmap(findings),
        "embedding": series_chart(
            findings, "embedding_drift", "Embedding drift (statistic per window)"
        ),
        "calibration": series_chart(findings, "calibration", "Calibration error per window"),
        "system": metrics_chart(
            metrics, ["events", "latency_ms_p99", "flag_rate"], "Volume, latency p99, flag rate"
        ),
        "timeline": timeline_chart(alerts, moves),
    }
    system = store.list_metric_values(project, None, since=since)
    if system:
        names = sorted({m["name"] for m in system})[:8]
        charts["host"] = metrics_chart(system, names, "Server: CPU, memory, GPU")
    return {
        "model": model,
        "status": status,
        "colour": _COLOURS[status],
        "last_window": iso(last),
        "last_start": last_start,
        "last_end": last,
        "versions": store.list_model_versions(project, model),
        "aliases": aliases_of(store, project, model),
        "alias_moves": moves,
        "alerts": [{**a, "when": iso(a.get("updated_at"))} for a in alerts[:100]],
        "findings": finding_rows(model, findings),
        "charts": {k: v for k, v in charts.items() if v is not None},
        "n_findings": len(findings),
    }
