"""Token expiry, last-used time and the revocation delay (CLI, Python and HTTP)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import Api
from typer.testing import CliRunner

from watchkeeper.cli import create_app as create_cli


def test_cli_token_expires_and_lists(tmp_path: Path) -> None:
    from watchkeeper.store import Store

    db = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    args = ["token", "create", "team", "--scope", "read", "--expires", "90d", "--db", db]
    out = runner.invoke(create_cli(), args)
    assert out.exit_code == 0, out.output
    token = out.output.strip().splitlines()[-1]
    store = Store(db)
    assert store.authenticate(token) == ("team", frozenset({"read"}))
    (row,) = store.list_tokens("team")
    assert row["expires_at"] == pytest.approx(time.time() + 90 * 86400, abs=60)
    assert row["last_used_at"] is not None and "token" not in row
    out = runner.invoke(create_cli(), ["token", "list", "team", "--db", db])
    assert out.exit_code == 0 and token[:10] in out.output and "read" in out.output
    for bad in ("soon", "-3d", "0"):
        out = runner.invoke(create_cli(), [*args[:5], "--expires", bad, "--db", db])
        assert out.exit_code != 0 and "--expires" in out.output, out.output
    store.close()


def test_an_expired_token_is_refused(store: Any) -> None:
    from fastapi.testclient import TestClient

    from watchkeeper.server import Settings, create_app

    project = f"p{time.monotonic_ns()}"
    store.create_project(project)
    app = create_app(Settings(system_metrics=False, token_cache_seconds=0), store=store)
    with TestClient(app) as client:
        expires_at = time.time() + 2.0
        token = store.create_token(project, {"read"}, expires_at=expires_at)
        h = {"Authorization": f"Bearer {token}"}
        assert client.get("/v1/models", headers=h).status_code == 200
        time.sleep(max(0.0, expires_at - time.time()) + 0.1)
        r = client.get("/v1/models", headers=h)
        assert r.status_code == 401 and "expired" in r.json()["detail"]
    with pytest.raises(ValueError, match="expires_at"):
        store.create_token(project, {"read"}, expires_at=time.time() - 1)
    with pytest.raises(ValueError, match="expires_at"):
        store.create_token(project, {"read"}, expires_at=float("nan"))


def test_last_used_is_written_at_most_once_a_minute(
    store: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import watchkeeper.store._projects as projects

    project = f"p{time.monotonic_ns()}"
    store.create_project(project)
    token = store.create_token(project, {"ingest"})
    assert store.list_tokens(project)[0]["last_used_at"] is None
    clock = [1_800_000_000.0]
    monkeypatch.setattr(projects, "timestamp", lambda: clock[0])
    store.authenticate(token)
    assert store.list_tokens(project)[0]["last_used_at"] == clock[0]
    first = clock[0]
    clock[0] += 30
    store.authenticate(token)
    assert store.list_tokens(project)[0]["last_used_at"] == first
    clock[0] += 31
    store.authenticate(token)
    assert store.list_tokens(project)[0]["last_used_at"] == clock[0]


def test_http_tokens_with_expiry_and_list(api: Api) -> None:
    h = api.h(api.admin)
    r = api.client.post("/v1/tokens", json={"scopes": ["read"], "expires_in": 3600}, headers=h)
    assert r.status_code == 201
    assert r.json()["expires_at"] == pytest.approx(time.time() + 3600, abs=60)
    listed = api.client.get("/v1/tokens", headers=h).json()["tokens"]
    assert any(t["prefix"] == r.json()["token"][:10] for t in listed)
    assert all("token" not in t and "token_hash" not in t for t in listed)
    for bad in (0, 1e12, "nan"):
        r = api.client.post("/v1/tokens", json={"scopes": ["read"], "expires_in": bad}, headers=h)
        assert r.status_code == 422 and "expires_in" in r.json()["detail"]
    assert api.client.get("/v1/tokens", headers=api.h(api.read)).status_code == 403


def test_the_revocation_delay_is_the_cache_setting(store: Any) -> None:
    from fastapi.testclient import TestClient

    from watchkeeper.server import Settings, create_app

    project = f"p{time.monotonic_ns()}"
    store.create_project(project)
    token = store.create_token(project, {"read"})
    h = {"Authorization": f"Bearer {token}"}
    replica = create_app(Settings(system_metrics=False, token_cache_seconds=0.5), store=store)
    with TestClient(replica) as client:
        assert client.get("/v1/models", headers=h).status_code == 200
        store.revoke_token(token)  # on another replica: this one has it cached
        assert client.get("/v1/models", headers=h).status_code == 200
        time.sleep(0.6)
        assert client.get("/v1/models", headers=h).status_code == 401
