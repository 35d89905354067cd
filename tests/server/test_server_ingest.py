"""Ingest endpoints: both batch forms, idempotency, validation naming field and index, limits."""

from __future__ import annotations

import base64

import numpy as np
from server_fixtures import Api


def _rows(n: int, prefix: str = "e") -> list[dict[str, object]]:
    return [
        {
            "id": f"{prefix}{i}",
            "ts": 1_700_000_000.0 + i,
            "features": {"x": float(i), "country": "FR" if i % 2 else "DE"},
            "score": (i % 10) / 10,
            "latency_ms": 5.0 + i,
            "embedding": [0.5, float(i)],
            "tags": {"source": "web"},
            "version": "v1",
        }
        for i in range(n)
    ]


def test_row_batch_is_stored_and_readable(api: Api) -> None:
    r = api.client.post(
        "/v1/models/m/events:batch", json={"events": _rows(5)}, headers=api.h(api.ingest)
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 5, "duplicates": 0}
    w = api.store.read_window(api.project, "m", last_n=10)
    assert sorted(w.ids.tolist()) == [f"e{i}" for i in range(5)]
    order = np.argsort(w.ids.astype(str))
    assert w.scores[order].tolist() == [0.0, 0.1, 0.2, 0.3, 0.4]


def test_resent_batch_counts_duplicates_not_events(api: Api) -> None:
    body = {"events": _rows(4)}
    first = api.client.post("/v1/models/m/events:batch", json=body, headers=api.h(api.ingest))
    again = api.client.post("/v1/models/m/events:batch", json=body, headers=api.h(api.ingest))
    assert first.json() == {"accepted": 4, "duplicates": 0}
    assert again.json() == {"accepted": 0, "duplicates": 4}
    assert api.store.count_events(api.project, "m") == 4


def test_columnar_batch_with_base64_embeddings(api: Api) -> None:
    emb = np.arange(6, dtype="<f4").reshape(3, 2)
    body = {
        "columns": {
            "ids": ["a", "b", "c"],
            "ts": [1.0, 2.0, None],
            "features": {"x": [1.0, None, 3.0], "c": ["u", "v", None]},
            "scores": [0.9, 0.1, None],
            "embeddings_b64": base64.b64encode(emb.tobytes()).decode(),
            "embedding_dim": 2,
            "version": "v2",
        },
        "environment": {"python": "3.11.7", "packages": {"numpy": "2.4.6"}},
    }
    r = api.client.post("/v1/models/m/events:batch", json=body, headers=api.h(api.ingest))
    assert r.status_code == 200, r.text
    w = api.store.read_window(api.project, "m", last_n=10)
    assert len(w) == 3


def test_wrong_type_names_field_and_index_and_stores_nothing(api: Api) -> None:
    rows = _rows(3)
    rows[2]["score"] = "high"
    r = api.client.post(
        "/v1/models/m/events:batch", json={"events": rows}, headers=api.h(api.ingest)
    )
    assert r.status_code == 422
    assert "events[2].score" in r.json()["detail"]
    assert api.store.count_events(api.project, "m") == 0


def test_nan_and_missing_id_are_rejected_with_field(api: Api) -> None:
    body = b'{"events": [{"id": "a", "score": NaN}]}'
    r = api.client.post("/v1/models/m/events:batch", content=body, headers=api.h(api.ingest))
    assert r.status_code == 422
    assert "events[0].score" in r.json()["detail"]
    r = api.client.post(
        "/v1/models/m/events:batch", json={"events": [{"score": 0.1}]}, headers=api.h(api.ingest)
    )
    assert r.status_code == 422
    assert "events[0].id" in r.json()["detail"]


def test_column_length_mismatch_and_ragged_embeddings(api: Api) -> None:
    r = api.client.post(
        "/v1/models/m/events:batch",
        json={"columns": {"ids": ["a", "b"], "scores": [0.1]}},
        headers=api.h(api.ingest),
    )
    assert r.status_code == 422
    assert r.json()["detail"] == "columns.scores: 1 values, but 2 ids"
    rows = _rows(3)
    rows[1]["embedding"] = [1.0]
    r = api.client.post(
        "/v1/models/m/events:batch", json={"events": rows}, headers=api.h(api.ingest)
    )
    assert r.status_code == 422
    assert "events[1].embedding" in r.json()["detail"]
    assert api.store.count_events(api.project, "m") == 0


def test_malformed_json_and_both_forms(api: Api) -> None:
    r = api.client.post("/v1/models/m/events:batch", content=b"{oops", headers=api.h(api.ingest))
    assert r.status_code == 422
    assert "Invalid JSON" in r.json()["detail"]
    r = api.client.post("/v1/models/m/events:batch", json={}, headers=api.h(api.ingest))
    assert r.status_code == 422
    assert "exactly one of 'events'" in r.json()["detail"]


def test_batch_size_limit_is_413(api: Api) -> None:
    ids = [f"i{k}" for k in range(501)]
    r = api.client.post(
        "/v1/models/m/events:batch", json={"columns": {"ids": ids}}, headers=api.h(api.ingest)
    )
    assert r.status_code == 413
    assert "501 events exceeds the limit of 500" in r.json()["detail"]
    assert api.store.count_events(api.project, "m") == 0


def test_body_size_limit_is_413(api: Api) -> None:
    big = b'{"events": [' + b" " * 2_100_000 + b"]}"
    r = api.client.post("/v1/models/m/events:batch", content=big, headers=api.h(api.ingest))
    assert r.status_code == 413
    assert "exceeds the limit of 2000000 bytes" in r.json()["detail"]

    def chunks():  # no Content-Length: the limit holds while streaming
        for _ in range(30):
            yield b" " * 100_000

    r = api.client.post("/v1/models/m/events:batch", content=chunks(), headers=api.h(api.ingest))
    assert r.status_code == 413


def test_unknown_model_is_404(api: Api) -> None:
    r = api.client.post(
        "/v1/models/nope/events:batch", json={"events": _rows(1)}, headers=api.h(api.ingest)
    )
    assert r.status_code == 404
    assert "model 'nope' is not registered" in r.json()["detail"]
    r = api.client.post(
        "/v1/models/bad name!/events:batch", json={"events": _rows(1)}, headers=api.h(api.ingest)
    )
    assert r.status_code == 422


def test_auto_registration(store: object) -> None:
    from fastapi.testclient import TestClient
    from server_fixtures import unique_project

    from watchkeeper.server import Settings, create_app

    project = unique_project()
    store.create_project(project)  # type: ignore[attr-defined]
    token = store.create_token(project, {"ingest"})  # type: ignore[attr-defined]
    app = create_app(Settings(auto_register_models=True), store=store)
    with TestClient(app) as client:
        r = client.post(
            "/v1/models/fresh/events:batch",
            json={"events": _rows(2)},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert r.status_code == 200, r.text
    assert store.has_model(project, "fresh")  # type: ignore[attr-defined]


def test_labels_join_before_and_after_events(api: Api) -> None:
    h = api.h(api.ingest)
    r = api.client.post("/v1/models/m/labels:batch", json={"ids": ["e1"], "labels": [1]}, headers=h)
    assert r.status_code == 200, r.text
    api.client.post("/v1/models/m/events:batch", json={"events": _rows(3)}, headers=h)
    r = api.client.post("/v1/models/m/labels:batch", json={"ids": ["e2"], "labels": [0]}, headers=h)
    assert r.json() == {"accepted": 1}
    w = api.store.read_window(api.project, "m", last_n=10)
    got = dict(zip(w.ids.tolist(), w.labels.tolist(), strict=True))
    assert str(got["e1"]) == "1" and str(got["e2"]) == "0" and got["e0"] is None


def test_labels_validation(api: Api) -> None:
    h = api.h(api.ingest)
    r = api.client.post(
        "/v1/models/m/labels:batch", json={"ids": ["a", "b"], "labels": [1]}, headers=h
    )
    assert r.status_code == 422
    assert "labels: 1 values, but 2 ids" in r.json()["detail"]
    r = api.client.post(
        "/v1/models/m/labels:batch", json={"ids": ["a"], "labels": [[1]]}, headers=h
    )
    assert r.status_code == 422
    assert "labels[0]" in r.json()["detail"]


def test_store_refusal_is_422_and_rejections_are_counted(api: Api) -> None:
    h = api.h(api.ingest)
    first = {"columns": {"ids": ["a"], "embeddings": [[1.0, 2.0]]}}
    assert api.client.post("/v1/models/m/events:batch", json=first, headers=h).status_code == 200
    wider = {"columns": {"ids": ["b"], "embeddings": [[1.0, 2.0, 3.0]]}}
    r = api.client.post("/v1/models/m/events:batch", json=wider, headers=h)
    assert r.status_code == 422
    assert "embedding" in r.json()["detail"]
    bad = {"events": [{"id": "c", "score": "x"}]}
    assert api.client.post("/v1/models/m/events:batch", json=bad, headers=h).status_code == 422
    r = api.client.get("/v1/models/m/stats", headers=api.h(api.read))
    assert r.status_code == 200, r.text
    stats = r.json()
    assert stats["events"] == 1
    assert stats["rejected"] == 2


def test_label_lag_is_measured(api: Api) -> None:
    import time

    h = api.h(api.ingest)
    now = time.time()
    events = [{"id": "old", "ts": now - 3600.0, "score": 0.5}]
    api.client.post("/v1/models/m/events:batch", json={"events": events}, headers=h)
    r = api.client.post(
        "/v1/models/m/labels:batch", json={"ids": ["old"], "labels": [1]}, headers=h
    )
    assert r.status_code == 200
    text = api.client.get("/metrics", headers=api.h(api.read)).text
    line = next(
        ln for ln in text.splitlines()
        if ln.startswith("watchkeeper_label_lag_seconds_sum") and api.project in ln
    )  # fmt: skip
    assert 3590 < float(line.rsplit(" ", 1)[1]) < 3700


def test_numeric_features_as_base64(api: Api) -> None:
    x = np.array([1.5, np.nan, -2.0])
    good = {
        "columns": {
            "ids": ["a", "b", "c"],
            "features_b64": {"x": base64.b64encode(x.astype("<f8").tobytes()).decode()},
            "features": {"c": ["u", None, "v"]},
        }
    }
    r = api.client.post("/v1/models/m/events:batch", json=good, headers=api.h(api.ingest))
    assert r.status_code == 200, r.text
    w = api.store.read_window(api.project, "m", last_n=10)
    got = dict(zip(w.ids.tolist(), w.features["x"].tolist(), strict=True))
    assert got["a"] == 1.5 and np.isnan(got["b"]) and got["c"] == -2.0
    short = {
        "columns": {"ids": ["d", "e"], "features_b64": {"x": good["columns"]["features_b64"]["x"]}}
    }
    r = api.client.post("/v1/models/m/events:batch", json=short, headers=api.h(api.ingest))
    assert r.status_code == 422
    assert r.json()["detail"] == "columns.features_b64.x: 24 bytes, but 2 ids x 8 bytes = 16"
