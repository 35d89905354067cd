"""Monitors over HTTP: configuration GET/PUT, run-now, findings, metric values, alerts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from watchkeeper.profiles import profile
from watchkeeper.window import Window

HOUR = 3600.0
T0 = 1_700_000_000.0 - (1_700_000_000.0 % HOUR)


@pytest.fixture
def api(tmp_path: Path, rng: np.random.Generator) -> Iterator[tuple[Any, dict[str, str]]]:
    from fastapi.testclient import TestClient

    from watchkeeper.server import Settings, create_app
    from watchkeeper.store import Store

    store = Store(str(tmp_path / "wk.db"))
    store.create_project("p")
    store.register_model_version(
        "p", "m", "v1", operating_point={"threshold": 0.5, "tpr": 0.9, "fpr": 0.05}
    )
    n = 2000
    s = rng.uniform(size=n)
    ref = Window.from_columns(
        features={"x": rng.normal(size=n)}, scores=s, labels=(rng.uniform(size=n) < s).astype(int)
    )
    store.put_reference("p", "m", "v1", ref, profile=profile(ref).to_dict())
    w = Window.from_columns(
        ids=[f"e{i}" for i in range(300)],
        ts=T0 + np.linspace(0, HOUR - 1, 300),
        features={"x": rng.normal(3, 1, 300)},
        scores=rng.uniform(size=300),
    )
    store.log_events("p", "m", w)
    tokens = {sc: store.create_token("p", {sc}) for sc in ("read", "admin")}
    app = create_app(Settings(), store=store)
    with TestClient(app) as client:
        yield client, {k: f"Bearer {v}" for k, v in tokens.items()}
    store.close()


def test_config_defaults_put_and_errors(api: tuple[Any, dict[str, str]]) -> None:
    client, tok = api
    read, admin = {"Authorization": tok["read"]}, {"Authorization": tok["admin"]}
    got = client.get("/v1/models/m/monitors", headers=read)
    assert got.status_code == 200, got.text
    assert got.json()["source"] == "default"
    cfg = got.json()["config"]
    assert cfg["checks"]["feature_drift"]["enabled"] is True
    cfg["window"] = {"kind": "time", "size": "30m"}
    put = client.put("/v1/models/m/monitors", json=cfg, headers=admin)
    assert put.status_code == 200, put.text
    assert client.get("/v1/models/m/monitors", headers=read).json()["source"] == "stored"
    assert client.put("/v1/models/m/monitors", json=cfg, headers=read).status_code == 403
    bad = client.put("/v1/models/m/monitors", json={**cfg, "checks": {"nope": {}}}, headers=admin)
    assert bad.status_code == 422 and "checks.nope" in bad.text
    bad = client.put(
        "/v1/models/m/monitors",
        json={**cfg, "rules": [{"name": "r", "k": 3, "n": 2}]},
        headers=admin,
    )
    assert bad.status_code == 422 and "rules[0]" in bad.text
    assert client.get("/v1/models/zz/monitors", headers=read).status_code == 404


def test_run_now_then_read_findings_metrics_alerts(api: tuple[Any, dict[str, str]]) -> None:
    client, tok = api
    read, admin = {"Authorization": tok["read"]}, {"Authorization": tok["admin"]}
    run = client.post(f"/v1/models/m/monitors:run?now={T0 + HOUR + 1}", headers=admin)
    assert run.status_code == 200, run.text
    body = run.json()
    assert body["windows"][0]["events"] == 300 and not body["adhoc"]
    # The feature moved far out of range: data quality fires at once (k = 1).
    assert any(e["alert"]["rule"] == "data_quality" for e in body["events"])
    found = client.get("/v1/models/m/findings?check=feature_drift&drift=true", headers=read)
    assert [f["subject"] for f in found.json()["findings"]] == ["x", "*"]
    values = client.get("/v1/models/m/metrics?name=events", headers=read).json()["values"]
    assert values[-1]["value"] == 300
    alerts = client.get("/v1/alerts?status=firing", headers=read).json()["alerts"]
    assert {a["rule"] for a in alerts} >= {"data_quality"}
    assert client.get("/v1/alerts?status=weird", headers=read).status_code == 422
    n_findings = len(client.get("/v1/models/m/findings", headers=read).json()["findings"])
    peek = client.post(
        f"/v1/models/m/monitors:run?now={T0 + HOUR + 1}&trailing=true", headers=admin
    ).json()
    assert peek["adhoc"] and 250 < peek["windows"][0]["events"] <= 300 and peek["findings"]
    assert len(client.get("/v1/models/m/findings", headers=read).json()["findings"]) == n_findings
