"""Fixtures of the server tests: a real store (SQLite and PostgreSQL), an app, tokens."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from server_fixtures import Api, unique_project


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
