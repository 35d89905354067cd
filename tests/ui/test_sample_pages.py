"""Pages of samples equal a brute-force filter of the whole window, page after page, for both
scan paths (index rows, and whole chunks for filters on what chunks hold)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from watchkeeper.store import Store
from watchkeeper.store._console import SampleQuery
from watchkeeper.window import Window


@pytest.fixture(scope="module")
def filled() -> tuple[Store, Window]:
    rng = np.random.default_rng(9)
    store = Store("sqlite://")
    store.create_project("p")
    store.register_model_version("p", "m", "v1", operating_point={"threshold": 0.7})
    for b in range(6):
        n = 300
        # batches overlap in time, and the last re-sends ids of the first (dropped at insert)
        ids = [f"e{b}-{i}" for i in range(n)] if b < 5 else [f"e0-{i}" for i in range(n)]
        ts = rng.uniform(0, 1000, n).round(0)  # ties in time on purpose
        store.log_events(
            "p", "m",
            Window.from_columns(
                ids=ids, ts=ts, scores=rng.random(n),
                features={"x": rng.normal(size=n)},
                tags={"src": rng.choice(["a", "b", "rare"], n, p=[0.5, 0.45, 0.05])},
                versions=["v1"] * n,
            ),
        )  # fmt: skip
    store.log_labels("p", "m", [f"e1-{i}" for i in range(100)], [1] * 100)
    return store, store.read_window("p", "m")


def _expected(w: Window, keep: np.ndarray, newest: bool) -> list[str]:
    ids = w.ids[keep].astype(str)
    ts = w.ts[keep]
    order = np.lexsort((ids, ts))
    return (ids[order][::-1] if newest else ids[order]).tolist()


def _all_pages(store: Store, query: SampleQuery, limit: int, max_scan: int) -> list[str]:
    out: list[str] = []
    cursor = None
    for _ in range(1000):
        page = store.sample_page("p", "m", query, cursor=cursor, limit=limit, max_scan=max_scan)
        out += [r["id"] for r in page.rows]
        cursor = page.next_cursor
        if cursor is None:
            return out
    raise AssertionError("pages never ended")


@pytest.mark.parametrize("order", ["newest", "oldest"])
@pytest.mark.parametrize("max_scan", [200, 200_000])
@pytest.mark.parametrize(
    "name",
    ["all", "rare", "flagged", "score_and_x", "window_and_tag", "labelled"],
)
def test_pages_equal_brute_force(
    filled: tuple[Store, Window], order: str, max_scan: int, name: str
) -> None:
    store, w = filled
    src = w.tags["src"].astype(str)
    queries: dict[str, tuple[SampleQuery, Any]] = {
        "all": (SampleQuery(order=order), np.ones(len(w), bool)),
        "rare": (SampleQuery(tags={"src": "rare"}, order=order), src == "rare"),
        "flagged": (SampleQuery(flagged=True, order=order), w.scores >= 0.7),
        "score_and_x": (
            SampleQuery(score_min=0.2, score_max=0.5, features={"x": (0.0, None)}, order=order),
            (w.scores >= 0.2) & (w.scores <= 0.5) & (w.features["x"] >= 0),
        ),
        "window_and_tag": (
            SampleQuery(start=100.0, end=400.0, tags={"src": "b"}, order=order),
            (w.ts >= 100) & (w.ts < 400) & (src == "b"),
        ),
        "labelled": (
            SampleQuery(labelled=True, order=order),
            np.array([v is not None for v in w.labels], bool),
        ),
    }
    query, keep = queries[name]
    got = _all_pages(store, query, limit=37, max_scan=max_scan)
    assert got == _expected(w, keep, order == "newest")


def test_bad_queries_name_the_field(filled: tuple[Store, Window]) -> None:
    store, _ = filled
    with pytest.raises(ValueError, match="limit"):
        store.sample_page("p", "m", limit=0)
    with pytest.raises(ValueError, match="max_scan"):
        store.sample_page("p", "m", max_scan=10**9)
    with pytest.raises(ValueError, match="order"):
        store.sample_page("p", "m", SampleQuery(order="random"))
    with pytest.raises(ValueError, match=r"features\.x"):
        store.sample_page("p", "m", SampleQuery(features={"x": (1, 2, 3)}))
    with pytest.raises(ValueError, match="cursor"):
        store.sample_page("p", "m", cursor="!!")
