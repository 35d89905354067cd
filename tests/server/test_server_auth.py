"""Tokens: 401 without, 403 with the wrong scope, never another project's data."""

from __future__ import annotations

from server_fixtures import Api


def test_missing_and_bad_tokens_are_401(api: Api) -> None:
    url = "/v1/models/m/events:batch"
    r = api.client.post(url, json={"events": []})
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    r = api.client.post(url, json={"events": []}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    r = api.client.post(url, json={"events": []}, headers={"Authorization": api.ingest})
    assert r.status_code == 401
    assert "Bearer <token>" in r.json()["detail"]


def test_wrong_scope_is_403(api: Api) -> None:
    r = api.client.post("/v1/models/m/events:batch", json={"events": []}, headers=api.h(api.read))
    assert r.status_code == 403
    assert "lacks the 'ingest' scope" in r.json()["detail"]
    r = api.client.get("/v1/models/m/events", headers=api.h(api.ingest))
    assert r.status_code == 403
    r = api.client.post("/v1/tokens", json={"scopes": ["read"]}, headers=api.h(api.read))
    assert r.status_code == 403


def test_admin_implies_every_scope(api: Api) -> None:
    r = api.client.post(
        "/v1/models/m/events:batch",
        json={"events": [{"id": "a", "score": 0.5}]},
        headers=api.h(api.admin),
    )
    assert r.status_code == 200
    r = api.client.get("/v1/models/m/events", headers=api.h(api.admin))
    assert r.status_code == 200


def test_projects_are_isolated(api: Api) -> None:
    other = "other-" + api.project
    api.store.create_project(other)
    api.store.register_model(other, "m")
    other_token = api.store.create_token(other, {"ingest", "read"})
    api.client.post(
        "/v1/models/m/events:batch",
        json={"events": [{"id": "secret", "score": 0.9}]},
        headers=api.h(api.ingest),
    )
    r = api.client.get("/v1/models/m/events", headers=api.h(other_token))
    assert r.status_code == 200
    assert r.json()["ids"] == []
    # the same id in the other project is a new event there, not a duplicate of ours
    r = api.client.post(
        "/v1/models/m/events:batch",
        json={"events": [{"id": "secret", "score": 0.1}]},
        headers=api.h(other_token),
    )
    assert r.json() == {"accepted": 1, "duplicates": 0}
    assert api.store.count_events(api.project, "m") == 1
    r = api.client.get("/v1/models/m/events", headers=api.h(api.read))
    assert r.json()["scores"] == [0.9]


def test_admin_mints_tokens_for_its_own_project(api: Api) -> None:
    r = api.client.post("/v1/tokens", json={"scopes": ["read"]}, headers=api.h(api.admin))
    assert r.status_code == 201
    token = r.json()["token"]
    assert api.store.authenticate(token)[0] == api.project
    r = api.client.post("/v1/tokens", json={"scopes": ["root"]}, headers=api.h(api.admin))
    assert r.status_code == 422
    assert "scopes[0]" in r.json()["detail"]


def test_revoked_token_is_refused_at_once(api: Api) -> None:
    h = api.h(api.ingest)
    ok = {"events": [{"id": "a", "score": 0.5}]}
    assert api.client.post("/v1/models/m/events:batch", json=ok, headers=h).status_code == 200
    r = api.client.post("/v1/tokens:revoke", json={"token": api.ingest}, headers=api.h(api.admin))
    assert r.status_code == 200, r.text
    assert api.client.post("/v1/models/m/events:batch", json=ok, headers=h).status_code == 401
    r = api.client.post("/v1/tokens:revoke", json={"token": api.ingest}, headers=api.h(api.admin))
    assert r.status_code == 404
    other = "other-" + api.project
    api.store.create_project(other)
    foreign = api.store.create_token(other, {"read"})
    r = api.client.post("/v1/tokens:revoke", json={"token": foreign}, headers=api.h(api.admin))
    assert r.status_code == 404  # not this project's: untouched
    assert api.store.authenticate(foreign) is not None
