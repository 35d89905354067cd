"""The audit log end to end over HTTP: token creation and revocation, monitor changes."""

from __future__ import annotations

import pytest
from server_fixtures import Api


def test_admin_actions_are_audited(api: Api) -> None:
    admin = api.h(api.admin)
    made = api.client.post("/v1/tokens", json={"scopes": ["read"]}, headers=admin)
    assert made.status_code == 201
    token = made.json()["token"]
    revoked = api.client.post("/v1/tokens:revoke", json={"token": token}, headers=admin)
    assert revoked.status_code == 200
    config = {"window": {"kind": "count", "size": 100}}
    put = api.client.put("/v1/models/m/monitors", json=config, headers=admin)
    assert put.status_code == 200, put.text
    entries = api.client.get("/v1/audit", headers=admin).json()["audit"]
    actions = [e["action"] for e in entries]
    assert actions == ["monitors.set", "token.revoke", "token.create"]  # newest first
    assert all(e["actor"] == f"token:{api.admin[:10]}" for e in entries)
    assert all(e["project"] == api.project for e in entries)
    assert entries[2]["details"] == {"scopes": ["read"]}
    assert token not in str(entries)  # never the secret, only its public prefix
    only = api.client.get("/v1/audit", params={"action": "token.create"}, headers=admin)
    assert [e["action"] for e in only.json()["audit"]] == ["token.create"]
    assert api.client.get("/v1/audit", headers=api.h(api.read)).status_code == 403
    assert api.client.get("/v1/audit").status_code == 401


def test_audit_store_refuses_unknown_actions(api: Api) -> None:
    with pytest.raises(ValueError, match="action: unknown audit action"):
        api.store.audit("token.steal", project=api.project)
    with pytest.raises(ValueError, match="limit"):
        api.store.audit_log(api.project, limit=0)


def test_audit_cli(tmp_path: object) -> None:
    import json

    from typer.testing import CliRunner

    from watchkeeper.cli import create_app
    from watchkeeper.store import Store

    db = str(tmp_path / "wk.db")  # type: ignore[operator]
    with Store(db) as store:
        store.create_project("default")
        store.audit("token.create", project="default", actor="token:abc", target="token:xyz")
    out = CliRunner().invoke(create_app(), ["audit", "--db", db, "--format", "json"])
    assert out.exit_code == 0, out.output
    assert [e["action"] for e in json.loads(out.output)] == ["token.create"]
