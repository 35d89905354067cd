"""The audit log end to end over HTTP and the CLI: tokens, monitor configurations, plans,
sinks and alias moves, each with its actor, target and a digest (never a secret)."""

from __future__ import annotations

from typing import Any

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
    assert entries[2]["details"] == {"scopes": ["read"], "expires_at": None}
    assert entries[0]["details"]["changed"] and len(entries[0]["details"]["digest"]) == 16
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


def _audit(client: Any, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    reply = client.get("/v1/audit", params=params, headers=headers)
    assert reply.status_code == 200, reply.text
    return list(reply.json()["audit"])


def test_plan_sink_and_alias_changes_are_audited_over_http(store: Any) -> None:
    from fastapi.testclient import TestClient
    from server_fixtures import unique_project

    from watchkeeper.server import Settings, create_app

    project = unique_project()
    store.create_project(project)
    for v in ("v1", "v2"):
        store.register_model_version(project, "m", v)
    token = store.create_token(project, {"admin"})
    admin = {"Authorization": f"Bearer {token}"}
    secret_url = "https://hooks.example.org/services/T000/B000/very-secret-path"
    sink = {"type": "webhook", "name": "ops", "url": secret_url}
    config = {"window": {"kind": "count", "size": 100}, "sinks": [sink]}
    settings = Settings(system_metrics=False, sink_hosts="hooks.example.org")
    with TestClient(create_app(settings, store=store)) as client:
        put = client.put("/v1/models/m/monitors", json=config, headers=admin)
        assert put.status_code == 200, put.text
        # the same sinks again: a monitors.set entry, no sinks.set entry
        config2 = {**put.json()["config"], "window": {"kind": "count", "size": 200}}
        assert client.put("/v1/models/m/monitors", json=config2, headers=admin).status_code == 200
        plan = client.get("/v1/models/m/plan", headers=admin).json()["plan"]
        plan["retraining"]["cooldown"] = "3d"
        plan["sinks"] = []
        put_plan = client.put("/v1/models/m/plan", json=plan, headers=admin)
        assert put_plan.status_code == 200, put_plan.text
        # a refused plan leaves no entry
        bad = {**plan, "retraining": {**plan["retraining"], "cooldown": "nope"}}
        assert client.put("/v1/models/m/plan", json=bad, headers=admin).status_code == 422
        for version in ("v1", "v2"):
            moved = client.put(
                "/v1/models/m/aliases/champion", json={"version": version}, headers=admin
            )
            assert moved.status_code == 200, moved.text
        back = client.post("/v1/models/m/aliases/champion/rollback", headers=admin)
        assert back.status_code == 200, back.text
        entries = _audit(client, admin)
        actions = [e["action"] for e in entries][::-1]  # oldest first
        assert actions == [
            "monitors.set", "sinks.set", "monitors.set", "plan.set", "sinks.set",
            "alias.move", "alias.move", "alias.rollback",
        ]  # fmt: skip
        assert {e["actor"] for e in entries} == {f"token:{token[:10]}"}
        assert all(e["at"] > 0 and e["project"] == project for e in entries)
        assert {e["target"] for e in entries} == {"model:m"}
        sinks_set = _audit(client, admin, action="sinks.set")
        assert sinks_set[1]["details"]["sinks"] == [{"type": "webhook", "name": "ops"}]
        assert sinks_set[0]["details"]["sinks"] == []
        assert sinks_set[0]["details"]["previous"] == [{"type": "webhook", "name": "ops"}]
        assert sinks_set[0]["details"]["via"] == "plan.set"
        plan_set = _audit(client, admin, action="plan.set")[0]["details"]
        assert "retraining" in plan_set["changed"] and plan_set["previous_digest"]
        assert plan_set["digest"] != plan_set["previous_digest"]
        rollback = _audit(client, admin, action="alias.rollback")[0]["details"]
        assert (rollback["alias"], rollback["from"], rollback["to"]) == ("champion", "v2", "v1")
        assert "very-secret-path" not in str(entries) and token not in str(entries)


def test_cli_changes_are_audited(tmp_path: Any) -> None:
    import json

    from typer.testing import CliRunner

    from watchkeeper.cli import create_app
    from watchkeeper.store import Store

    db = str(tmp_path / "wk.db")
    with Store(db) as store:
        store.create_project("default")
        for v in ("v1", "v2"):
            store.register_model_version("default", "m", v)
    cli = create_app()

    def run(*args: str) -> str:
        out = CliRunner().invoke(cli, [*args, "--db", db])
        assert out.exit_code == 0, out.output
        return str(out.output)

    token = run("token", "create", "default", "--scope", "read").strip().splitlines()[-1]
    run("token", "revoke", token)
    config = tmp_path / "monitors.json"
    config.write_text(json.dumps({"window": {"kind": "count", "size": 100}}))
    run("monitors", "set", "m", str(config))
    plan = json.loads(run("plan", "show", "m", "--format", "json"))["plan"]
    plan["retraining"]["cooldown"] = "2d"
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    run("plan", "set", "m", str(plan_file))
    run("model", "alias", "m", "champion", "v1")
    rows = json.loads(run("audit", "--format", "json"))
    actions = [e["action"] for e in rows][::-1]
    assert actions == ["token.create", "token.revoke", "monitors.set", "plan.set", "alias.move"]
    assert all(str(e["actor"]).startswith("cli:") for e in rows)
    assert rows[-1]["target"] == f"token:{token[:10]}" and token not in str(rows)
    assert rows[-1]["project"] == "default" and rows[-2]["project"] == "default"
