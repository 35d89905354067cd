"""Nothing is silently changed on the way in: a NaN label, a boolean score, a NaN threshold are
refused with the field named, and nothing is stored."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from server_fixtures import Api

from watchkeeper.window import Window


def _post(api: Api, path: str, raw: str) -> Any:
    headers = {**api.h(api.admin if "versions" in path else api.ingest),
               "Content-Type": "application/json"}  # fmt: skip
    return api.client.post(path, content=raw, headers=headers)


def test_nan_label_is_refused(api: Api) -> None:
    ok = _post(api, "/v1/models/m/events:batch", '{"events": [{"id": "a", "score": 0.5}]}')
    assert ok.status_code == 200, ok.text
    for label in ("NaN", "Infinity"):
        reply = _post(api, "/v1/models/m/labels:batch", f'{{"ids": ["a"], "labels": [{label}]}}')
        assert reply.status_code == 422 and "labels[0]" in reply.text, reply.text
    assert api.store.read_window(api.project, "m", last_n=5).labels.tolist() == [None]
    # The real labels still go through: strings, integers, booleans.
    reply = _post(api, "/v1/models/m/labels:batch", '{"ids": ["a"], "labels": [true]}')
    assert reply.status_code == 200, reply.text


@pytest.mark.parametrize(
    "body, field",
    [
        ('{"events": [{"id": "a", "score": true}]}', "events[0].score"),
        ('{"columns": {"ids": ["a"], "scores": [false]}}', "columns.scores[0]"),
        ('{"columns": {"ids": ["a"], "features": {"x": [NaN]}}}', "columns.features.x[0]"),
        ('{"events": [{"id": "a", "latency_ms": true}]}', "events[0].latency_ms"),
    ],
)
def test_boolean_and_nan_numbers_are_refused(api: Api, body: str, field: str) -> None:
    reply = _post(api, "/v1/models/m/events:batch", body)
    assert reply.status_code == 422, reply.text
    assert field in reply.text, reply.text
    assert api.store.count_events(api.project, "m") == 0


@pytest.mark.parametrize(
    "op, field",
    [
        ('{"threshold": NaN, "tpr": 0.9, "fpr": 0.1}', "threshold"),
        ('{"threshold": true, "tpr": 0.9, "fpr": 0.1}', "threshold"),
        ('{"threshold": 0.5, "tpr": 1.5, "fpr": 0.1}', "tpr"),
        ('{"threshold": 0.5, "tpr": 0.9, "fpr": 0.1, "n_positive": 2.5}', "n_positive"),
    ],
)
def test_operating_point_numbers_are_checked(api: Api, op: str, field: str) -> None:
    reply = _post(api, "/v1/models/m/versions", f'{{"version": "v1", "operating_point": {op}}}')
    assert reply.status_code == 422 and field in reply.text, reply.text
    good = '{"version": "v1", "operating_point": {"threshold": 0.5, "tpr": 0.9, "fpr": 0.1}}'
    reply = _post(api, "/v1/models/m/versions", good)
    assert reply.status_code == 201, reply.text
    assert reply.json()["operating_point"]["threshold"] == 0.5


def test_the_python_api_refuses_the_same(api: Api) -> None:
    store = api.store
    for op, field in (({"threshold": float("nan"), "tpr": 0.9, "fpr": 0.1}, "threshold"),
                      ({"threshold": True, "tpr": 0.9, "fpr": 0.1}, "threshold")):  # fmt: skip
        with pytest.raises(ValueError, match=f"operating_point.{field}"):
            store.register_model_version(api.project, "m", "v9", operating_point=op)
    with pytest.raises(ValueError, match="scores: expected numbers, got booleans"):
        Window.from_columns(ids=["a", "b"], scores=[True, False])
    with pytest.raises(ValueError, match="scores: expected numbers, got booleans"):
        Window.from_columns(ids=["a"], scores=np.array([True], dtype=object))
    with pytest.raises(ValueError, match=r"labels\[0\]"):
        store.log_labels(api.project, "m", ["a"], [float("nan")])


def test_the_sdk_refuses_at_the_call() -> None:
    from watchkeeper.sdk import Client

    c = Client("http://127.0.0.1:1", "t")
    with pytest.raises(ValueError, match="score"):
        c.log("m", id="a", score=True)
    with pytest.raises(ValueError, match="scores: expected numbers, got booleans"):
        c.log_batch("m", ids=["a", "b"], scores=np.array([True, False]))
    with pytest.raises(ValueError, match=r"labels\[1\]: a label is required"):
        c.log_labels("m", ["a", "b"], [1, float("nan")])
