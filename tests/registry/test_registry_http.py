"""The registry over HTTP: alias moves need the admin scope and record the token; rollback,
history, verification and lineage; another project's token sees nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from watchkeeper import registry
from watchkeeper.registry import ArtifactStore
from watchkeeper.store import Store


@pytest.fixture
def api(tmp_path: Path) -> Iterator[dict[str, Any]]:
    from fastapi.testclient import TestClient

    from watchkeeper.server import Settings, create_app

    arts = tmp_path / "arts"
    store = Store(str(tmp_path / "wk.db"))
    store.create_project("p")
    store.create_project("q")
    for v in ("v1", "v2"):
        (tmp_path / f"{v}.bin").write_bytes(v.encode() * 1000)
        registry.register_artifact(store, "p", "m", v, tmp_path / f"{v}.bin", artifacts=arts)
    registry.record_lineage(store, "p", "m", "v2", parent="v1", params={"lr": 0.1}, code=None)
    tokens = {s: store.create_token("p", {s}) for s in ("read", "admin")}
    tokens["other"] = store.create_token("q", {"admin"})
    app = create_app(Settings(artifacts=str(arts)), store=store)
    with TestClient(app) as client:
        yield {
            "client": client,
            "store": store,
            "arts": arts,
            **{k: {"Authorization": f"Bearer {t}"} for k, t in tokens.items()},
            "admin_token": tokens["admin"],
        }
    store.close()


def test_alias_moves_history_and_rollback(api: dict[str, Any]) -> None:
    c, read, admin = api["client"], api["read"], api["admin"]
    url = "/v1/models/m/aliases/champion"
    assert c.put(url, json={"version": "v1"}, headers=read).status_code == 403
    r = c.put(url, json={"version": "v1", "reason": "first"}, headers=admin)
    assert r.status_code == 200, r.text
    assert r.json()["actor"] == "token:" + api["admin_token"][:10]
    r = c.put(url, json={"version": "v2", "reason": "better"}, headers=admin)
    assert (r.json()["from"], r.json()["to"]) == ("v1", "v2")
    listed = c.get("/v1/models/m/versions", headers=read).json()
    assert [(v["version"], v["aliases"]) for v in listed["versions"]] == [
        ("v1", []),
        ("v2", ["champion"]),
    ]
    assert c.get("/v1/models/m/aliases", headers=read).json() == {"aliases": {"champion": "v2"}}
    assert c.post(url + "/rollback", json={"reason": "x"}, headers=read).status_code == 403
    r = c.post(url + "/rollback", json={"reason": "alerts"}, headers=admin)
    assert r.status_code == 200 and r.json()["to"] == "v1" and r.json()["kind"] == "rollback"
    r = c.post(url + "/rollback", headers=admin)
    assert r.status_code == 409 and "no earlier version" in r.text
    moves = c.get(url + "/history", headers=read).json()["moves"]
    assert [(m["kind"], m["to"], m["reason"]) for m in moves] == [
        ("set", "v1", "first"),
        ("set", "v2", "better"),
        ("rollback", "v1", "alerts"),
    ]
    assert len(c.get(url + "/history?limit=1", headers=read).json()["moves"]) == 1


def test_bad_input_and_other_projects(api: dict[str, Any]) -> None:
    c, admin, other = api["client"], api["admin"], api["other"]
    r = c.put("/v1/models/m/aliases/champion", json={"version": "v9"}, headers=admin)
    assert r.status_code == 422 and "version: model 'm' has no version 'v9'" in r.text
    r = c.put("/v1/models/m/aliases/bad%20name", json={"version": "v1"}, headers=admin)
    assert r.status_code == 422
    r = c.put("/v1/models/m/aliases/champion", json={"version": "v1", "x": 1}, headers=admin)
    assert r.status_code == 422
    r = c.put("/v1/models/m/aliases/champion", json={"version": "v1", "reason": "x" * 2001},
              headers=admin)  # fmt: skip
    assert r.status_code == 422
    assert c.get("/v1/models/m/aliases/champion/history?limit=0", headers=admin).status_code == 422
    assert c.get("/v1/models/m/versions", headers={}).status_code == 401
    # another project's admin token finds no such model
    assert c.get("/v1/models/m/versions", headers=other).status_code == 404
    r = c.put("/v1/models/m/aliases/champion", json={"version": "v1"}, headers=other)
    assert r.status_code == 404
    assert api["store"].list_aliases("p", "m") == {}


def test_verify_and_lineage(api: dict[str, Any]) -> None:
    c, read, admin, store = api["client"], api["read"], api["admin"], api["store"]
    assert c.post("/v1/models/m/versions/v1/verify", headers=read).status_code == 403
    r = c.post("/v1/models/m/versions/v1/verify", headers=admin)
    assert r.status_code == 200 and r.json()["ok"] is True and r.json()["bytes"] == 2000
    sha = store.get_model_version("p", "m", "v1")["manifest"]["files"][0]["sha256"]
    blob = api["arts"] / ArtifactStore.blob_key(sha)
    blob.write_bytes(b"X" + blob.read_bytes()[1:])
    r = c.post("/v1/models/m/versions/v1/verify", headers=admin)
    assert r.status_code == 200 and r.json()["ok"] is False and "SHA-256" in r.json()["problems"][0]
    assert store.list_findings("p", "m", check="integrity")[0]["subject"] == "version:v1"
    assert c.post("/v1/models/m/versions/v7/verify", headers=admin).status_code == 404
    chain = c.get("/v1/models/m/versions/v2/lineage", headers=read).json()["chain"]
    assert [(x["version"], x["lineage"] and x["lineage"]["parent"]) for x in chain] == [
        ("v2", "v1"),
        ("v1", None),
    ]
    assert chain[0]["lineage"]["params"] == {"lr": 0.1}
    assert c.get("/v1/models/m/versions/v7/lineage", headers=read).status_code == 404
