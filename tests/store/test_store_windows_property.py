"""Windows against a plain-Python model of the store, on random batches and random queries."""

from __future__ import annotations

import uuid
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from watchkeeper.store import Store
from watchkeeper.window import Window

ids = st.sampled_from([f"e{i}" for i in range(12)])
event = st.tuples(ids, st.integers(0, 6), st.sampled_from(["v1", "v2"]))
batches = st.lists(st.lists(event, min_size=1, max_size=6), min_size=1, max_size=5)
labels = st.lists(st.tuples(ids, st.integers(0, 1)), max_size=8)
query = st.fixed_dictionaries(
    {
        "start": st.none() | st.integers(0, 6),
        "end": st.none() | st.integers(0, 7),
        "last_n": st.none() | st.integers(1, 15),
        "version": st.none() | st.sampled_from(["v1", "v2"]),
    }
)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(batches=batches, early=labels, late=labels, q=query)
def test_window_matches_a_simple_model(
    store: Store,
    batches: list[list[tuple[str, int, str]]],
    early: list[tuple[str, int]],
    late: list[tuple[str, int]],
    q: dict[str, Any],
) -> None:
    model = f"m{uuid.uuid4().hex[:8]}"  # one fresh model per example, on SQLite and PostgreSQL
    store.register_model("p", model)
    stored: dict[str, tuple[float, str, float, int]] = {}  # id -> ts, version, score, order
    known: dict[str, int] = {}
    if early:
        store.log_labels("p", model, [i for i, _ in early], [v for _, v in early])
        known.update(dict(early))
    arrival = 0
    for b, batch in enumerate(batches):
        scores = [b + k / 10 for k in range(len(batch))]
        store.log_events(
            "p",
            model,
            Window.from_columns(
                ids=[e[0] for e in batch],
                ts=[float(e[1]) for e in batch],
                versions=[e[2] for e in batch],
                scores=scores,
            ),
        )
        # first occurrence of an id in the batch, then the first write of an id, wins; the
        # store keeps a batch's rows in time order (stable), which breaks ties in time
        first = [k for k in range(len(batch)) if batch[k][0] not in {e[0] for e in batch[:k]}]
        for k in sorted(first, key=lambda k: batch[k][1]):
            i, t, v = batch[k]
            if i not in stored:
                stored[i] = (float(t), v, scores[k], arrival)
            arrival += 1
    if late:
        store.log_labels("p", model, [i for i, _ in late], [v for _, v in late])
        known.update(dict(late))

    expected = sorted(
        (
            (ts, order, i, score)
            for i, (ts, v, score, order) in stored.items()
            if (q["start"] is None or ts >= q["start"])
            and (q["end"] is None or ts < q["end"])
            and (q["version"] is None or v == q["version"])
        ),
    )
    if q["last_n"] is not None:
        expected = expected[-q["last_n"] :]
    got = store.read_window("p", model, **q)
    assert got.ids.tolist() == [e[2] for e in expected]
    assert got.ts.tolist() == [e[0] for e in expected]
    np.testing.assert_array_equal(got.scores, np.array([e[3] for e in expected]))
    assert got.labels.tolist() == [known.get(e[2]) for e in expected]
    assert store.count_events("p", model) == len(stored)
