"""The console's data over HTTP and through the SDK: payloads, samples, curated datasets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from console_data import MODEL, Seeded, seed

from watchkeeper.payloads import thumbnail


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Any, Seeded, Any]]:
    from fastapi.testclient import TestClient

    from watchkeeper.server import Settings, create_app
    from watchkeeper.store import Store

    store = Store(str(tmp_path / "wk.db"))
    s = seed(store, tmp_path / "payloads", n=80)
    app = create_app(Settings(system_metrics=False, db=str(tmp_path / "wk.db")), store=store)
    with TestClient(app) as client:
        yield client, s, store
    store.close()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_payload_upload_and_read_back(api: tuple[Any, Seeded, Any]) -> None:
    client, s, _ = api
    image = thumbnail(np.zeros((50, 50)))
    put = client.put(
        "/v1/payloads", content=image, headers={**_auth(s.ingest), "Content-Type": "image/jpeg"}
    )
    assert put.status_code == 201, put.text
    ref = put.json()["payload_ref"]
    got = client.get(f"/v1/payloads/{ref[7:]}", headers=_auth(s.read))
    assert got.status_code == 200 and got.content == image
    assert client.get(f"/v1/payloads/{ref[7:]}", headers=_auth(s.other_read)).status_code == 404
    assert client.put("/v1/payloads", content=image).status_code == 401
    big = client.put(
        "/v1/payloads", content=b"x" * 300_000,
        headers={**_auth(s.ingest), "Content-Type": "image/jpeg"},
    )  # fmt: skip
    assert big.status_code == 413
    odd = client.put(
        "/v1/payloads", content=b"#!/bin/sh", headers={**_auth(s.ingest), "Content-Type": "x/y"}
    )
    assert odd.status_code == 422 and "media_type" in odd.text


def test_samples_and_datasets_over_http(api: tuple[Any, Seeded, Any]) -> None:
    client, s, _ = api
    url = f"/v1/models/{MODEL}/samples"
    page = client.get(url, params={"flagged": "yes", "limit": "5"}, headers=_auth(s.read))
    assert page.status_code == 200
    body = page.json()
    assert len(body["rows"]) == 5 and all(r["flagged"] for r in body["rows"])
    nxt = client.get(
        url, params={"flagged": "yes", "limit": "5", "cursor": body["next_cursor"]},
        headers=_auth(s.read),
    ).json()  # fmt: skip
    assert not {r["id"] for r in nxt["rows"]} & {r["id"] for r in body["rows"]}
    bad = client.get(url, params={"score_max": "x"}, headers=_auth(s.read))
    assert bad.status_code == 422 and "score_max" in bad.text
    assert client.get(url, headers=_auth(s.ingest)).status_code == 403
    ids = [r["id"] for r in body["rows"]]
    made = client.post(
        f"/v1/models/{MODEL}/datasets", json={"name": "picked", "ids": ids}, headers=_auth(s.read)
    )
    assert made.status_code == 201 and made.json()["ids"] == ids
    got = client.get(f"/v1/models/{MODEL}/datasets/picked", headers=_auth(s.read))
    assert got.json()["ids"] == ids
    other = client.get(f"/v1/models/{MODEL}/datasets/picked", headers=_auth(s.other_read))
    assert other.status_code == 404
    empty = client.post(
        f"/v1/models/{MODEL}/datasets", json={"name": "x", "ids": []}, headers=_auth(s.read)
    )
    assert empty.status_code == 422


def test_sdk_attaches_payloads(tmp_path: Path) -> None:
    from watchkeeper.sdk import LocalClient
    from watchkeeper.store import Store

    db = tmp_path / "wk.db"
    with LocalClient(str(db), project="p") as wk:
        ref = wk.put_payload(thumbnail(np.ones((30, 30))))
        wk.log_batch("m", ids=["a"], scores=[0.9], payload_refs=[ref])
    store = Store(str(db))
    row = store.sample_page("p", "m").rows[0]
    assert row["tags"]["payload_ref"] == ref
    assert (tmp_path / "payloads" / "p" / ref[7:9] / ref[7:]).exists()
    store.close()


def test_http_client_uploads_a_payload(tmp_path: Path) -> None:
    from watchkeeper.demo.server import start_server
    from watchkeeper.sdk import Client
    from watchkeeper.store import Store

    store = Store(str(tmp_path / "wk.db"))
    running = start_server(store, project="p")
    try:
        client = Client(running.url, running.ingest_token, spool_dir=tmp_path / "spool")
        ref = client.put_payload(b"a text snippet", "text/plain")
        with pytest.raises(ValueError, match="media_type"):
            client.put_payload(b"x", "application/x-sh")
        client.close()
    finally:
        running.stop()
    from watchkeeper.payloads import PayloadStore, default_root

    assert PayloadStore(default_root(str(tmp_path / "wk.db"))).get("p", ref) == (
        b"a text snippet",
        "text/plain",
    )
    store.close()
