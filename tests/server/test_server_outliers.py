"""GET /v1/models/{model}/outliers and `watchkeeper outliers`: stored per-event outlier scores."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from server_fixtures import Api


def _seed(store: Any, project: str) -> None:
    p = np.array([0.5, 0.001, 0.02, 0.0004, 0.3])
    store.add_outlier_scores(
        project, "m", [f"e{i}" for i in range(5)], 1000.0 + np.arange(5), 10 - 10 * p, p,
        method="knn", version="v1", window_end=2000.0,
    )


def test_outliers_over_http(api: Api) -> None:
    _seed(api.store, api.project)
    url = "/v1/models/m/outliers"
    r = api.client.get(url, params={"max_p_value": 0.01}, headers=api.h(api.read))
    assert r.status_code == 200
    assert [e["id"] for e in r.json()["outliers"]] == ["e3", "e1"]
    assert api.client.get(url, headers=api.h(api.ingest)).status_code == 403
    assert api.client.get(url).status_code == 401
    bad = api.client.get(url, params={"max_p_value": 2}, headers=api.h(api.read))
    assert bad.status_code == 422 and "max_p_value" in bad.text
    big = api.client.get(url, params={"limit": 10**6}, headers=api.h(api.read))
    assert big.status_code == 422 and "limit" in big.text
    missing = api.client.get("/v1/models/nope/outliers", headers=api.h(api.read))
    assert missing.status_code == 404


def test_outliers_cli(tmp_path: Any) -> None:
    from typer.testing import CliRunner

    from watchkeeper.cli import create_app
    from watchkeeper.store import Store

    db = str(tmp_path / "wk.db")
    with Store(db) as store:
        store.create_project("default")
        store.register_model("default", "m")
        import time

        p = np.array([0.5, 0.001])
        store.add_outlier_scores(
            "default", "m", ["a", "b"], [time.time()] * 2, [1.0, 9.0], p, method="knn"
        )
    out = CliRunner().invoke(create_app(), ["outliers", "m", "--db", db, "--format", "json"])
    assert out.exit_code == 0, out.output
    assert [e["id"] for e in json.loads(out.output)] == ["b"]
    bad = CliRunner().invoke(create_app(), ["outliers", "m", "--db", db, "--max-p-value", "0"])
    assert bad.exit_code != 0 and "max_p_value" in bad.output
