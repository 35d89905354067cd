"""/v1/tools: the flag band of docs/design.md's worked example, and drift between two tables."""

from __future__ import annotations

import numpy as np
import pytest
from server_fixtures import Api


def test_expect_worked_example(api: Api) -> None:
    body = {"tpr": 0.9, "fpr": 0.02, "prevalence": 0.1, "volume": 1000}
    r = api.client.post("/v1/tools/expect", json=body, headers=api.h(api.read))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["expected"] == 108.0
    assert out["mix"] == "random" and (out["low"], out["high"]) == (89, 128)
    assert (out["alternative"]["low"], out["alternative"]["high"]) == (98, 118)
    r = api.client.post("/v1/tools/expect", json={**body, "observed": 160}, headers=api.h(api.read))
    assert r.json()["verdict"] == "prior_shift"
    r = api.client.post("/v1/tools/expect", json={**body, "mix": "fixed"}, headers=api.h(api.read))
    assert (r.json()["low"], r.json()["high"]) == (98, 118)
    history = {"flags": [100, 130, 90, 120, 85, 140], "volumes": [1000] * 6}
    r = api.client.post(
        "/v1/tools/expect", json={**body, "history": history}, headers=api.h(api.read)
    )
    assert r.status_code == 200, r.text
    assert r.json()["history"]["dispersion"] > 0 and r.json()["method"] == "beta-binomial"
    bad = {**body, "history": {"flags": [1, 2, 3], "volumes": [10, 10]}}
    r = api.client.post("/v1/tools/expect", json=bad, headers=api.h(api.read))
    assert r.status_code == 422 and "history.volumes" in r.json()["detail"]
    r = api.client.post(
        "/v1/tools/expect", json={**body, "dispersion": 2.0}, headers=api.h(api.read)
    )
    assert r.status_code == 422


def test_expect_bad_input_names_the_field(api: Api) -> None:
    body = {"tpr": 0.01, "fpr": 0.02, "prevalence": 0.1, "volume": 1000}
    r = api.client.post("/v1/tools/expect", json=body, headers=api.h(api.read))
    assert r.status_code == 422
    assert "tpr" in r.json()["detail"]
    r = api.client.post("/v1/tools/expect", json={**body, "tpr": 1.5}, headers=api.h(api.read))
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "tpr"
    r = api.client.post("/v1/tools/expect", json=body)
    assert r.status_code == 401


def test_drift_tool(api: Api) -> None:
    rng = np.random.default_rng(3)
    ref = {"x": rng.normal(size=400).tolist(), "c": rng.choice(["a", "b"], 400).tolist()}
    cur = {"x": rng.normal(1.0, size=400).tolist(), "c": rng.choice(["a", "b"], 400).tolist()}
    r = api.client.post(
        "/v1/tools/drift", json={"reference": ref, "current": cur}, headers=api.h(api.read)
    )
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["drift"] is True
    assert out["columns"]["x"]["drift"] is True
    r = api.client.post(
        "/v1/tools/drift",
        json={"reference": ref, "current": {"x": cur["x"]}},
        headers=api.h(api.read),
    )
    assert r.status_code == 422
    assert "['c']" in r.json()["detail"]


@pytest.mark.parametrize(
    "current, field",
    [
        ({"x": [], "c": []}, "current.x"),
        ({"x": [1.0, 2.0], "c": [None, None]}, "current.c"),
    ],
)
def test_drift_tool_refuses_columns_without_data(
    api: Api, current: dict[str, list[object]], field: str
) -> None:
    ref = {"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]}
    r = api.client.post(
        "/v1/tools/drift", json={"reference": ref, "current": current}, headers=api.h(api.read)
    )
    assert r.status_code == 422, r.text
    assert field in r.text
