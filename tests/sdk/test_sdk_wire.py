"""The SDK's wire format read back by the server gives the same window, NaN and None included."""

from __future__ import annotations

import json

import numpy as np
import pytest

from watchkeeper.sdk import _columns
from watchkeeper.server.schemas import EventsBatch, batch_to_window
from watchkeeper.window import Window


def _random_columns(rng: np.random.Generator, n: int) -> _columns.Columns:
    x = rng.normal(size=n)
    x[rng.random(n) < 0.2] = np.nan
    cat = rng.choice(np.array(["a", "b", None], dtype=object), n)
    emb = rng.normal(size=(n, 5)).astype(np.float32)
    emb[rng.random(n) < 0.3] = np.nan
    probs = rng.dirichlet([1, 1, 1], n)
    probs[rng.random(n) < 0.3] = np.nan
    scores = rng.random(n)
    scores[rng.random(n) < 0.1] = np.nan
    return _columns.build(
        ids=[f"i{k}" for k in range(n)],
        ts=1_700_000_000 + rng.random(n),
        features={"x": x, "cat": cat},
        scores=scores,
        probs=probs,
        predicted=rng.choice(["yes", "no"], n),
        embeddings=emb,
        latency_ms=rng.gamma(2, 3, n),
        tags={"country": rng.choice(["FR", "DE"], n)},
        version="v1",
        payload_refs=[f"s3://b/{k}" for k in range(n)],
    )


def _same(a: Window, b: Window) -> None:
    assert a.ids.tolist() == b.ids.tolist()
    for name in ("ts", "scores", "latency_ms", "probs", "embeddings"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    np.testing.assert_array_equal(a.features["x"], b.features["x"])

    # a category column that is all missing in a batch reads back as NaN: the Window rule
    # "numeric-looking columns become float64" applies to all-None columns too
    def missing_as_none(values: np.ndarray) -> list[object]:
        return [None if v is None or v != v else v for v in values.tolist()]

    assert missing_as_none(a.features["cat"]) == missing_as_none(b.features["cat"])
    assert a.predicted.tolist() == b.predicted.tolist()  # type: ignore[union-attr]
    assert a.versions.tolist() == b.versions.tolist()  # type: ignore[union-attr]
    assert {k: v.tolist() for k, v in a.tags.items()} == {k: v.tolist() for k, v in b.tags.items()}


@pytest.mark.parametrize("seed", range(5))
def test_payload_round_trip(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cols = _random_columns(rng, int(rng.integers(1, 60)))
    body = json.dumps({"columns": _columns.to_payload(cols)}, allow_nan=False)
    window = batch_to_window(EventsBatch.model_validate_json(body), now=0.0)
    _same(_columns.to_window(cols), window)


@pytest.mark.parametrize("at", [1, 7, 19])
def test_split_payload_halves_make_the_whole(at: int) -> None:
    cols = _random_columns(np.random.default_rng(at), 20)
    payload = _columns.to_payload(cols)
    head, tail = _columns.split_payload(payload, at)
    whole = _columns.to_window(cols)
    for part, index in ((head, np.arange(at)), (tail, np.arange(at, 20))):
        body = json.dumps({"columns": part}, allow_nan=False)
        _same(whole.take(index), batch_to_window(EventsBatch.model_validate_json(body), 0.0))
