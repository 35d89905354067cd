"""The console over HTTP: sign-in, isolation between projects, pages, samples, datasets."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from console_data import MODEL, Seeded, seed

from watchkeeper.store._console import console


@pytest.fixture(scope="module")
def seeded(store: Any, tmp_path_factory: pytest.TempPathFactory) -> tuple[Seeded, Path]:
    payloads = tmp_path_factory.mktemp("payloads")
    return seed(store, payloads), payloads


@pytest.fixture
def client(store: Any, seeded: tuple[Seeded, Path]) -> Iterator[Any]:
    from fastapi.testclient import TestClient

    from watchkeeper.server import Settings, create_app

    app = create_app(
        Settings(system_metrics=False, payload_url=str(seeded[1]), ui_secret="s" * 32),
        store=store,
    )
    with TestClient(app, follow_redirects=False) as c:
        yield c


def _login(client: Any, token: str) -> None:
    r = client.post("/ui/login", data={"token": token, "next": "/ui/"})
    assert r.status_code == 303, r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie
    assert token not in cookie


def _csrf(html: str) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)


def test_pages_need_a_session(client: Any, seeded: tuple[Seeded, Path]) -> None:
    r = client.get(f"/ui/models/{MODEL}")
    assert r.status_code == 303 and r.headers["location"].startswith("/ui/login?next=")
    assert client.post("/ui/login", data={"token": "wk_nope"}).status_code == 401
    ingest_only = client.post("/ui/login", data={"token": seeded[0].ingest})
    assert ingest_only.status_code == 401  # an ingest token cannot read
    client.cookies.set("wk_session", "forged.value", path="/ui")
    assert client.get("/ui/").status_code == 303


def test_login_never_redirects_off_site(client: Any, seeded: tuple[Seeded, Path]) -> None:
    r = client.post("/ui/login", data={"token": seeded[0].read, "next": "https://evil.example"})
    assert r.headers["location"] == "/ui/"
    r = client.post("/ui/login", data={"token": seeded[0].read, "next": "/ui//evil.example"})
    assert r.headers["location"] == "/ui/"


def test_overview_and_model_page(client: Any, seeded: tuple[Seeded, Path]) -> None:
    s = seeded[0]
    _login(client, s.read)
    home = client.get("/ui/")
    assert home.status_code == 200
    assert MODEL in home.text and "firing" in home.text
    assert f"/ui/alerts/{s.alert_id}" in home.text
    page = client.get(f"/ui/models/{MODEL}")
    assert page.status_code == 200
    assert 'id="chart-flags"' in page.text and 'id="chart-drift"' in page.text
    assert "model_change" in page.text  # the verdict is drawn and listed
    assert f"/ui/models/{MODEL}/findings/{s.op_finding}/samples" in page.text
    assert page.headers["content-security-policy"].startswith("default-src 'self'")
    static = client.get("/ui/static/plotly-cartesian.min.js")
    assert static.status_code == 200 and len(static.content) > 1_000_000


def test_another_projects_token_sees_nothing(client: Any, seeded: tuple[Seeded, Path]) -> None:
    s = seeded[0]
    _login(client, s.other_read)
    home = client.get("/ui/")
    assert s.project not in home.text and "status firing" not in home.text
    # the other project has a model of the same name: its own, empty
    assert "model_change" not in client.get(f"/ui/models/{MODEL}").text
    assert client.get(f"/ui/alerts/{s.alert_id}").status_code == 404
    assert client.get(f"/ui/models/{MODEL}/findings/{s.op_finding}/samples").status_code == 404
    assert client.get("/ui/models/nosuchmodel").status_code == 404
    rows = client.get(f"/ui/models/{MODEL}/samples")
    assert 'class="sample"' not in rows.text
    ref = console(client.app.state.store).sample_page(s.project, MODEL, limit=1).rows
    digest = next(
        r["tags"]["payload_ref"][7:]
        for r in console(client.app.state.store).sample_page(s.project, MODEL, limit=500).rows
        if "payload_ref" in r["tags"]
    )
    assert ref  # the first project has samples
    assert client.get(f"/ui/payloads/{digest}").status_code == 404


def test_from_alert_to_its_samples_in_two_clicks(client: Any, seeded: tuple[Seeded, Path]) -> None:
    s = seeded[0]
    _login(client, s.read)
    alert = client.get(f"/ui/alerts/{s.alert_id}")
    assert alert.status_code == 200
    link = re.search(r'class="samples-link" href="([^"]+)"', alert.text).group(1)
    assert link == f"/ui/models/{MODEL}/findings/{s.op_finding}/samples"
    hop = client.get(link)
    assert hop.status_code == 303
    query = parse_qs(urlparse(hop.headers["location"]).query)
    assert query["flagged"] == ["yes"] and float(query["start"][0]) == s.day2[0]
    page = client.get(hop.headers["location"])
    assert page.status_code == 200
    scores = [float(x) for x in re.findall(r"<td>(0\.\d{3}|1\.000)</td>", page.text)]
    assert scores and min(scores) >= 0.5  # flagged only
    assert '<img class="thumb"' in page.text


def test_a_drifted_feature_opens_the_tail_it_moved_to(
    client: Any, seeded: tuple[Seeded, Path]
) -> None:
    s = seeded[0]
    _login(client, s.read)
    hop = client.get(f"/ui/models/{MODEL}/findings/{s.drift_finding}/samples")
    query = parse_qs(urlparse(hop.headers["location"]).query)
    name, low, high = query["feature"][0].split(":")
    assert name == "brightness" and float(low) > 0.6 and high == ""  # brightened: upper tail


def test_filters_paging_and_bad_input(client: Any, seeded: tuple[Seeded, Path]) -> None:
    s = seeded[0]
    _login(client, s.read)
    base = f"/ui/models/{MODEL}/samples"
    first = client.get(base, params={"limit": "50", "tag": "source=scanner-b"})
    assert first.status_code == 200 and first.text.count('class="sample"') == 50
    assert "scanner-c" not in first.text
    more = re.search(r'id="more" href="([^"]+)"', first.text).group(1).replace("&amp;", "&")
    second = client.get(more, headers={"HX-Request": "true"})
    assert second.status_code == 200 and "<html" not in second.text
    ids1 = set(re.findall(r'name="ids" value="([^"]+)"', first.text))
    ids2 = set(re.findall(r'name="ids" value="([^"]+)"', second.text))
    assert ids2 and not ids1 & ids2
    wrong = client.get(base, params={"correct": "no"})
    assert "wrong" in wrong.text and 'class="right"' not in wrong.text
    empty = client.get(base, params={"tag": "", "feature": "", "flagged": "any"})
    assert empty.status_code == 200 and 'class="sample"' in empty.text  # an empty form field
    bad = client.get(base, params={"score_min": "abc"})
    assert bad.status_code == 422 and "score_min" in bad.text
    bad = client.get(base, params={"limit": "100000"})
    assert bad.status_code == 422 and "limit" in bad.text
    bad = client.get(base, params={"cursor": "garbage"})
    assert bad.status_code == 422 and "cursor" in bad.text


def test_add_to_dataset_needs_the_csrf_token(client: Any, seeded: tuple[Seeded, Path]) -> None:
    s = seeded[0]
    _login(client, s.read)
    page = client.get(f"/ui/models/{MODEL}/samples", params={"flagged": "yes", "limit": "5"})
    ids = re.findall(r'name="ids" value="([^"]+)"', page.text)
    url = f"/ui/models/{MODEL}/datasets"
    forged = client.post(url, data={"csrf": "0" * 32, "name": "faded", "ids": ids})
    assert forged.status_code == 403
    assert console(client.app.state.store).get_curated_set(s.project, MODEL, "faded") is None
    r = client.post(url, data={"csrf": _csrf(page.text), "name": "faded", "ids": ids})
    assert r.status_code == 303
    stored = console(client.app.state.store).get_curated_set(s.project, MODEL, "faded")
    assert stored["ids"] == ids
    bad = client.post(url, data={"csrf": _csrf(page.text), "name": "", "ids": ids})
    assert bad.status_code == 422 and "name" in bad.text
    listing = client.get(url)
    assert "faded" in listing.text


def test_segments_embedding_and_logout(client: Any, seeded: tuple[Seeded, Path]) -> None:
    s = seeded[0]
    _login(client, s.read)
    seg = client.get(f"/ui/models/{MODEL}/segments")
    assert seg.status_code == 200 and "scanner-b" in seg.text
    emb = client.get(f"/ui/models/{MODEL}/embedding")
    assert emb.status_code == 200 and 'id="chart-embedding-map"' in emb.text
    page = client.get("/ui/")
    out = client.post("/ui/logout", data={"csrf": _csrf(page.text)})
    assert out.status_code == 303
    client.cookies.clear()
    assert client.get("/ui/").status_code == 303


def test_revoking_the_token_ends_the_session(store: Any, seeded: tuple[Seeded, Path]) -> None:
    from fastapi.testclient import TestClient

    from watchkeeper.server import Settings, create_app

    s = seeded[0]
    token = store.create_token(s.project, {"read"})
    app = create_app(Settings(system_metrics=False, payload_url=str(seeded[1])), store=store)
    with TestClient(app, follow_redirects=False) as c:
        _login(c, token)
        assert c.get("/ui/").status_code == 200
        store.revoke_token(token)
        app.state.ui_tokens._seen.clear()  # skip the few seconds' cache
        assert c.get("/ui/").status_code == 303


def test_aliases_on_the_overview_and_the_time_line(
    client: Any, store: Any, seeded: tuple[Seeded, Path]
) -> None:
    s = seeded[0]
    store.set_alias(s.project, MODEL, "champion", "v1", actor="ci", reason="first release")
    _login(client, s.read)
    assert "champion → v1" in client.get("/ui/").text
    page = client.get(f"/ui/models/{MODEL}")
    assert "alias moves" in page.text and "champion: none" in page.text
