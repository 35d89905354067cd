"""Fixtures of the SDK tests: a real store and a live server in a thread on 127.0.0.1."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from sdk_fixtures import Live, LiveServer, free_port


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
