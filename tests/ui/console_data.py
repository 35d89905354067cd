"""A small monitored model for the console tests: events with thumbnails, findings, an alert."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from watchkeeper.payloads import PayloadStore, thumbnail
from watchkeeper.window import Window

DAY = 86_400.0
T0 = 1_790_000_000.0
MODEL = "fraud"


@dataclass
class Seeded:
    project: str
    other: str
    read: str
    other_read: str
    ingest: str
    day2: tuple[float, float]
    op_finding: int
    drift_finding: int
    alert_id: int


def seed(store: Any, payload_dir: Path, n: int = 400) -> Seeded:
    """Two days of a model: a normal day, then faded scans (brightness up, more flags)."""
    rng = np.random.default_rng(3)
    project = f"p{uuid.uuid4().hex[:8]}"
    other = f"q{uuid.uuid4().hex[:8]}"
    for p in (project, other):
        store.create_project(p)
        store.register_model(p, MODEL)
    store.register_model_version(
        project, MODEL, "v1", operating_point={"threshold": 0.5, "tpr": 0.9, "fpr": 0.02}
    )
    payloads = PayloadStore(payload_dir)
    ref = Window.from_columns(
        ids=[f"r{i}" for i in range(300)],
        scores=rng.random(300) * 0.6,
        features={"brightness": rng.normal(0.5, 0.1, 300)},
        embeddings=rng.normal(size=(300, 4)),
        labels=(rng.random(300) < 0.1).astype(int),
    )
    store.put_reference(project, MODEL, "v1", ref)
    for day in range(2):
        faded = day == 1
        brightness = rng.normal(0.8 if faded else 0.5, 0.1, n)
        scores = np.clip(rng.random(n) * 0.6 + (0.3 if faded else 0.0), 0, 1)
        source = np.where(rng.random(n) < 0.5, "scanner-a", "scanner-b" if faded else "scanner-c")
        refs = []
        for i in range(n):
            level = float(np.clip(brightness[i], 0, 1))
            img = np.full((40, 30), level)
            img[10:20, 5:25] = 0.1
            refs.append(payloads.put(project, thumbnail(img), "image/jpeg") if i % 4 == 0 else None)
        ids = [f"d{day}-{i}" for i in range(n)]
        store.log_events(
            project,
            MODEL,
            Window.from_columns(
                ids=ids,
                ts=T0 + day * DAY + np.sort(rng.random(n)) * DAY * 0.9,
                scores=scores,
                features={"brightness": brightness},
                embeddings=rng.normal(1.5 if faded else 0.0, 1, size=(n, 4)),
                tags={"source": source, "payload_ref": np.array(refs, dtype=object)},
                versions=["v1"] * n,
            ),
        )
        labelled = ids[: n // 4]
        store.log_labels(project, MODEL, labelled, (rng.random(len(labelled)) < 0.3).astype(int))
    start, end = T0 + DAY, T0 + 2 * DAY
    store.add_findings(
        project,
        MODEL,
        [
            {"check": "operating_point", "subject": "flags", "method": "flag_count",
             "statistic": 160.0, "p_value": 1e-6, "drift": True, "severity": "critical",
             "window_start": start, "window_end": end,
             "details": {"expected": 108.0, "low": 90.0, "high": 126.0,
                         "verdict": "model_change"}},
            {"check": "feature_drift", "subject": "brightness", "method": "ks",
             "statistic": 0.8, "p_value": 1e-9, "drift": True, "severity": "warning",
             "window_start": start, "window_end": end},
            {"check": "operating_point", "subject": "flags", "method": "flag_count",
             "statistic": 110.0, "p_value": 0.6, "drift": False,
             "window_start": T0, "window_end": T0 + DAY,
             "details": {"expected": 108.0, "low": 90.0, "high": 126.0,
                         "verdict": "as_expected"}},
        ],
    )  # fmt: skip
    store.add_metric_values(project, MODEL, end, {"events": float(n), "flag_rate": 0.4})
    findings = store.list_findings(project, MODEL)
    op = next(f["id"] for f in findings if f["check"] == "operating_point" and f["drift"])
    drift = next(f["id"] for f in findings if f["check"] == "feature_drift")
    alert = store.upsert_alert(
        project,
        {"key": f"{project}/{MODEL}/operating_point", "rule": "operating_point", "model": MODEL,
         "status": "firing", "severity": "critical", "updated_at": end,
         "summary": f"operating_point on {MODEL}: 1 subject(s) drifted (flags)",
         "findings": [{"check": "operating_point", "subject": "flags", "drift": True}]},
    )  # fmt: skip
    return Seeded(
        project=project,
        other=other,
        read=store.create_token(project, {"read"}),
        other_read=store.create_token(other, {"read"}),
        ingest=store.create_token(project, {"ingest"}),
        day2=(start, end),
        op_finding=op,
        drift_finding=drift,
        alert_id=alert["id"],
    )
