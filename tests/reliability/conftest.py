"""Real server processes on 127.0.0.1 over a real database (SQLite file or PostgreSQL)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
from reliability_fixtures import Setup


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{tmp_path / 'wk.db'}"


@pytest.fixture
def setup(db_url: str, tmp_path: Path) -> Iterator[Setup]:
    """A project with model ``m`` and an ingest+read token, in the database under test."""
    store_mod = pytest.importorskip("watchkeeper.store")
    store = store_mod.Store(db_url)
    project = f"rel-{secrets.token_hex(4)}"
    store.create_project(project)
    store.register_model(project, "m")
    token = store.create_token(project, {"ingest", "read"})
    yield Setup(db_url, store, project, token, tmp_path)
    if hasattr(store, "close"):
        store.close()
