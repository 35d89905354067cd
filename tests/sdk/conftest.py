"""Fixtures of the SDK tests: a real store and a live server in a thread on 127.0.0.1."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from sdk_fixtures import Live, LiveServer, free_port


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
def live(store: Any) -> Iterator[Live]:
    """A running server over ``store``, a project with model ``m`` and an ingest+read token."""
    project = f"p{secrets.token_hex(4)}"
    store.create_project(project)
    store.register_model(project, "m")
    token = store.create_token(project, {"ingest", "read"})
    server = LiveServer(store, free_port())
    server.start()
    yield Live(server, store, project, token)
    server.stop()
