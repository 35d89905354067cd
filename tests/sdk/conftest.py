"""Fixtures of the SDK tests: a real store and a live server in a thread on 127.0.0.1."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sdk_fixtures import Live, LiveServer, free_port, open_store


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """The real Store on SQLite and on PostgreSQL."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{tmp_path / 'wk.db'}"
    s = open_store(url)
    yield s
    if hasattr(s, "close"):
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
