"""Fixtures of the server tests: a real store (SQLite and PostgreSQL), an app, tokens."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from server_fixtures import Api, unique_project


@pytest.fixture(params=["sqlite", "postgres"], scope="module")
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """The real Store on SQLite and on PostgreSQL, one per module (tests use fresh projects)."""
    from watchkeeper.store import Store

    if request.param == "postgres":
        url = os.environ.get("WATCHKEEPER_TEST_POSTGRES_URL")
        if not url:
            pytest.skip("WATCHKEEPER_TEST_POSTGRES_URL is not set")
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('store') / 'wk.db'}"
    s = Store(url)
    yield s
    s.close()


@pytest.fixture
def api(store: Any) -> Iterator[Api]:
    """A TestClient over a fresh app, a project with a model ``m``, and one token per scope."""
    from fastapi.testclient import TestClient

    from watchkeeper.server import Settings, create_app

    project = unique_project()
    store.create_project(project)
    store.register_model(project, "m")
    tokens = {s: store.create_token(project, {s}) for s in ("ingest", "read", "admin")}
    app = create_app(Settings(max_batch_events=500, max_body_bytes=2_000_000), store=store)
    with TestClient(app) as client:
        yield Api(client, store, project, tokens["ingest"], tokens["read"], tokens["admin"])
