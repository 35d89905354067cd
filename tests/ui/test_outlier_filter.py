"""The sample explorer filters by stored outlier p-value and shows it per sample, over the
HTTP API and in the console's pages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from console_data import MODEL, Seeded, seed

from watchkeeper.store._console import SampleQuery, console


@pytest.fixture
def app(tmp_path: Path) -> Iterator[tuple[Any, Seeded, dict[str, float]]]:
    from fastapi.testclient import TestClient

    from watchkeeper.server import Settings, create_app
    from watchkeeper.store import Store

    store = Store(str(tmp_path / "wk.db"))
    s = seed(store, tmp_path / "payloads", n=60)
    # Score day one's events as the outliers check would (day two stays unscored).
    rows = console(store).sample_page(s.project, MODEL, SampleQuery(order="oldest"), limit=500).rows
    day1 = [r for r in rows if r["id"].startswith("d0-")]
    p = np.random.default_rng(5).uniform(size=len(day1))
    store.add_outlier_scores(
        s.project, MODEL, [r["id"] for r in day1], [r["ts"] for r in day1], 1.0 / p, p,
        method="knn", version="v1",
    )  # fmt: skip
    p_of = {r["id"]: float(q) for r, q in zip(day1, p, strict=True)}
    app = create_app(
        Settings(system_metrics=False, db=str(tmp_path / "wk.db"), payload_url=str(tmp_path),
                 ui_secret="s" * 32),
        store=store,
    )  # fmt: skip
    with TestClient(app, follow_redirects=False) as client:
        yield client, s, p_of
    store.close()


def _all_pages(client: Any, token: str, params: dict[str, str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    cursor = None
    for _ in range(100):
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = client.get(
            f"/v1/models/{MODEL}/samples",
            params=query,
            headers={"Authorization": f"Bearer {token}"},
        )
        assert r.status_code == 200, r.text
        body = r.json()
        out += body["rows"]
        cursor = body["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("paging did not end")


def test_filter_by_outlier_p_over_http(app: tuple[Any, Seeded, dict[str, float]]) -> None:
    client, s, p_of = app
    wanted = {i for i, p in p_of.items() if p <= 0.2}
    assert 3 <= len(wanted) < len(p_of)  # the filter has something to keep and to drop
    rows = _all_pages(client, s.read, {"outlier_p_max": "0.2", "limit": "4"})
    assert [r["id"] for r in rows if r["id"] in wanted] == [r["id"] for r in rows]
    assert {r["id"] for r in rows} == wanted and len(rows) == len(wanted)
    assert all(r["outlier_p"] == pytest.approx(p_of[r["id"]]) for r in rows)
    ts = [r["ts"] for r in rows]
    assert ts == sorted(ts, reverse=True)  # newest first, across pages
    # Combined with another filter: the intersection.
    flagged = _all_pages(client, s.read, {"outlier_p_max": "0.2", "flagged": "yes"})
    assert {r["id"] for r in flagged} == {r["id"] for r in rows if r["flagged"]}
    # Without the filter every row still says its p-value (None when never scored).
    plain = _all_pages(client, s.read, {"limit": "500"})
    assert {r["id"]: r["outlier_p"] for r in plain if r["outlier_p"] is not None} == pytest.approx(
        p_of
    )
    assert all(r["outlier_p"] is None for r in plain if r["id"].startswith("d1-"))
    # Another project's reader sees none of it.
    other = client.get(
        f"/v1/models/{MODEL}/samples", params={"outlier_p_max": "1"},
        headers={"Authorization": f"Bearer {s.other_read}"},
    )  # fmt: skip
    assert other.status_code == 200 and other.json()["rows"] == []


@pytest.mark.parametrize("value", ["0", "1.5", "-0.1", "nan", "abc"])
def test_bad_outlier_p_names_the_field(
    app: tuple[Any, Seeded, dict[str, float]], value: str
) -> None:
    client, s, _ = app
    r = client.get(
        f"/v1/models/{MODEL}/samples", params={"outlier_p_max": value},
        headers={"Authorization": f"Bearer {s.read}"},
    )  # fmt: skip
    assert r.status_code == 422 and "outlier_p_max" in r.text


def test_console_page_filters_and_shows_outlier_p(
    app: tuple[Any, Seeded, dict[str, float]],
) -> None:
    client, s, p_of = app
    r = client.post("/ui/login", data={"token": s.read, "next": "/ui/"})
    assert r.status_code == 303
    page = client.get(f"/ui/models/{MODEL}/samples", params={"outlier_p_max": "0.2"})
    assert page.status_code == 200
    assert 'id="filter-outlier-p"' in page.text and 'value="0.2"' in page.text
    shown = re.findall(r'name="ids" value="([^"]+)"', page.text)
    assert set(shown) == {i for i, p in p_of.items() if p <= 0.2}
    cells = re.findall(r'<td class="outlier-p">([^<]*)</td>', page.text)
    assert len(cells) == len(shown)
    assert [float(c) for c in cells] == pytest.approx([p_of[i] for i in shown], rel=1e-2)
    bad = client.get(f"/ui/models/{MODEL}/samples", params={"outlier_p_max": "2"})
    assert bad.status_code == 422 and "outlier_p_max" in bad.text
