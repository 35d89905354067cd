"""A Grafana dashboard for the series the server exposes (ingestion and monitors).

>>> d = grafana_dashboard()
>>> d["title"], len(d["panels"]) > 8
('Watchkeeper', True)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SEL = 'project=~"$project", model=~"$model"'


def _panel(
    pid: int,
    title: str,
    exprs: list[tuple[str, str]],
    *,
    x: int,
    y: int,
    w: int = 12,
    h: int = 8,
    unit: str = "short",
    kind: str = "timeseries",
    description: str = "",
) -> dict[str, Any]:
    return {
        "id": pid,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": [
            {"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(exprs)
        ],
    }


def grafana_dashboard(title: str = "Watchkeeper") -> dict[str, Any]:
    """The dashboard as a dict (Grafana's JSON model, importable as is)."""
    mv = "watchkeeper_monitor_value"
    panels = [
        _panel(
            1,
            "Events accepted per second",
            [
                (
                    f"sum by (model) (rate(watchkeeper_events_accepted_total{{{SEL}}}[5m]))",
                    "{{model}}",
                ),
            ],
            x=0,
            y=0,
            unit="reqps",
        ),
        _panel(
            2,
            "Rejected events per second, by reason",
            [
                ("sum by (reason) (rate(watchkeeper_events_rejected_total[5m]))", "{{reason}}"),
            ],
            x=12,
            y=0,
            unit="reqps",
        ),
        _panel(
            3,
            "Flag rate (last scored events)",
            [
                (f"watchkeeper_model_flag_rate{{{SEL}}}", "{{model}}"),
            ],
            x=0,
            y=8,
            unit="percentunit",
            description="Compare with the band the operating point promises (alerts).",
        ),
        _panel(
            4,
            "Score distribution",
            [
                (
                    "sum by (le) (increase(watchkeeper_model_score_bucket"
                    f"{{{SEL}}}[$__rate_interval]))",
                    "{{le}}",
                ),
            ],
            x=12,
            y=8,
            kind="heatmap",
        ),
        _panel(
            5,
            "Model latency p50 / p99",
            [
                (
                    "histogram_quantile(0.5, sum by (model, le) "
                    f"(rate(watchkeeper_model_latency_seconds_bucket{{{SEL}}}[5m])))",
                    "p50 {{model}}",
                ),
                (
                    "histogram_quantile(0.99, sum by (model, le) "
                    f"(rate(watchkeeper_model_latency_seconds_bucket{{{SEL}}}[5m])))",
                    "p99 {{model}}",
                ),
            ],
            x=0,
            y=16,
            unit="s",
        ),
        _panel(
            6,
            "Label lag p50",
            [
                (
                    "histogram_quantile(0.5, sum by (model, le) "
                    f"(rate(watchkeeper_label_lag_seconds_bucket{{{SEL}}}[1h])))",
                    "{{model}}",
                ),
            ],
            x=12,
            y=16,
            unit="s",
        ),
        _panel(
            7,
            "Drifted subjects per check (latest window)",
            [
                (f"watchkeeper_monitor_drifted_subjects{{{SEL}}}", "{{model}} {{check}}"),
            ],
            x=0,
            y=24,
        ),
        _panel(
            8,
            "Share of features drifted",
            [
                (f'{mv}{{{SEL}, metric="feature_drift.share"}}', "{{model}}"),
            ],
            x=12,
            y=24,
            unit="percentunit",
        ),
        _panel(
            9,
            "Performance: estimated (no labels) and realised",
            [
                (f'{mv}{{{SEL}, metric=~"estimated_performance.*"}}', "estimated {{metric}}"),
                (f'{mv}{{{SEL}, metric=~"realised_performance.*"}}', "realised {{metric}}"),
            ],
            x=0,
            y=32,
            unit="percentunit",
        ),
        _panel(
            10,
            "Expected calibration error",
            [
                (f'{mv}{{{SEL}, metric="ece"}}', "{{model}}"),
            ],
            x=12,
            y=32,
            unit="percentunit",
            description="Calibration drift: no peer tracks this one.",
        ),
        _panel(
            11,
            "Events per window and labelled share",
            [
                (f'{mv}{{{SEL}, metric="events"}}', "events {{model}}"),
                (f'{mv}{{{SEL}, metric="labelled_share"}}', "labelled {{model}}"),
            ],
            x=0,
            y=40,
        ),
        _panel(
            12,
            "Alerts firing",
            [
                (f"watchkeeper_alerts_firing{{{SEL}}}", "{{model}} {{rule}} ({{severity}})"),
            ],
            x=12,
            y=40,
            kind="table",
        ),
        _panel(
            13,
            "Batch ingest time p99",
            [
                (
                    "histogram_quantile(0.99, sum by (kind, le) "
                    "(rate(watchkeeper_ingest_duration_seconds_bucket[5m])))",
                    "{{kind}}",
                ),
            ],
            x=0,
            y=48,
            unit="s",
        ),
        _panel(
            14,
            "Monitors: age of the latest evaluated window",
            [
                (
                    f"time() - watchkeeper_monitor_last_window_end_timestamp_seconds{{{SEL}}}",
                    "{{model}}",
                ),
            ],
            x=12,
            y=48,
            unit="s",
        ),
    ]

    def var(name: str, query: str) -> dict[str, Any]:
        return {
            "name": name,
            "type": "query",
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "query": {"query": query, "refId": name},
            "definition": query,
            "includeAll": True,
            "multi": True,
            "allValue": ".*",
            "refresh": 2,
            "current": {"text": "All", "value": "$__all"},
        }

    return {
        "title": title,
        "uid": "watchkeeper",
        "tags": ["watchkeeper", "ml-monitoring"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-24h", "to": "now"},
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "type": "datasource",
                    "query": "prometheus",
                    "current": {},
                },
                var("project", "label_values(watchkeeper_events_accepted_total, project)"),
                var(
                    "model",
                    'label_values(watchkeeper_events_accepted_total{project=~"$project"}, model)',
                ),
            ]
        },
        "annotations": {"list": []},
        "panels": panels,
    }


def export_dashboard(directory: str | Path) -> Path:
    """Write ``watchkeeper-dashboard.json`` into ``directory``."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "watchkeeper-dashboard.json"
    path.write_text(json.dumps(grafana_dashboard(), indent=2) + "\n")
    return path
