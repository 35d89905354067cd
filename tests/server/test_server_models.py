"""Models, versions, reads of events, stats and serving environments over HTTP."""

from __future__ import annotations

from server_fixtures import Api


def test_register_list_and_versions(api: Api) -> None:
    admin = api.h(api.admin)
    r = api.client.post("/v1/models", json={"name": "fraud"}, headers=admin)
    assert r.status_code == 201
    assert (
        api.client.post("/v1/models", json={"name": "fraud"}, headers=api.h(api.read)).status_code
        == 403
    )
    r = api.client.get("/v1/models", headers=api.h(api.read))
    assert set(r.json()["models"]) >= {"m", "fraud"}
    body = {
        "version": "v3",
        "sha256": "ab" * 32,
        "operating_point": {"threshold": 0.62, "tpr": 0.9, "fpr": 0.02},
        "expected_prevalence": 0.1,
        "expected_volume": 1000,
    }
    r = api.client.post("/v1/models/fraud/versions", json=body, headers=admin)
    assert r.status_code == 201, r.text
    r = api.client.get("/v1/models/fraud/versions/v3", headers=api.h(api.read))
    assert r.status_code == 200
    assert r.json()["operating_point"]["threshold"] == 0.62
    assert (
        api.client.get("/v1/models/fraud/versions/v9", headers=api.h(api.read)).status_code == 404
    )
    r = api.client.post("/v1/models/fraud/versions", json={**body, "sha256": "xyz"}, headers=admin)
    assert r.status_code == 422
    assert "sha256" in r.json()["detail"]
    r = api.client.post("/v1/models/ghost/versions", json=body, headers=admin)
    assert r.status_code == 404


def test_read_window_stats_and_environments(api: Api) -> None:
    events = [
        {"id": f"e{i}", "ts": 1000.0 + i, "score": i / 10, "embedding": [1.0, 2.0]}
        for i in range(5)
    ]
    env = {"python": "3.11.7", "packages": {"torch": "2.13.0"}}
    r = api.client.post(
        "/v1/models/m/events:batch",
        json={"events": events, "environment": env},
        headers=api.h(api.ingest),
    )
    assert r.status_code == 200
    read = api.h(api.read)
    r = api.client.get("/v1/models/m/events", params={"start": 1001, "end": 1003}, headers=read)
    assert r.status_code == 200
    assert sorted(r.json()["ids"]) == ["e1", "e2"]
    r = api.client.get(
        "/v1/models/m/events", params={"last_n": 2, "embeddings": True}, headers=read
    )
    out = r.json()
    assert len(out["ids"]) == 2 and out["embeddings"] == [[1.0, 2.0], [1.0, 2.0]]
    r = api.client.get("/v1/models/m/stats", headers=read)
    assert r.json()["events"] == 5 and r.json()["accepted"] == 5
    r = api.client.get("/v1/models/m/environments", headers=read)
    assert "2.13.0" in str(r.json()["environments"])
    assert api.client.get("/v1/models/ghost/events", headers=read).status_code == 404
