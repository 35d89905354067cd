"""Fixtures of the server tests: a store (real when it exists), an app, tokens."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from watchkeeper.window import Window


@dataclass
class _Result:
    accepted: int
    duplicates: int


class FakeStore:
    """The CONTRACTS.md Store API in memory, until the real one lands."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.projects: set[str] = set()
        self.tokens: dict[str, tuple[str, set[str]]] = {}
        self.models: set[tuple[str, str]] = set()
        self.versions: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.events: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        self.labels: dict[tuple[str, str], dict[str, Any]] = {}
        self.envs: list[dict[str, Any]] = []
        self.metric_values: list[Any] = []

    def create_project(self, name: str) -> None:
        self.projects.add(name)

    def create_token(self, project: str, scopes: set[str]) -> str:
        token = secrets.token_urlsafe(16)
        self.tokens[hashlib.sha256(token.encode()).hexdigest()] = (project, set(scopes))
        return token

    def authenticate(self, token: str) -> tuple[str, set[str]] | None:
        return self.tokens.get(hashlib.sha256(token.encode()).hexdigest())

    def register_model(self, project: str, model: str) -> None:
        self.models.add((project, model))

    def has_model(self, project: str, model: str) -> bool:
        return (project, model) in self.models

    def list_models(self, project: str) -> list[str]:
        return sorted(m for p, m in self.models if p == project)

    def register_model_version(self, project: str, model: str, version: str, **kw: Any) -> None:
        self.versions[(project, model, version)] = {"version": version, **kw}

    def get_model_version(self, project: str, model: str, version: str) -> dict[str, Any]:
        return self.versions[(project, model, version)]

    def log_events(
        self, project: str, model: str, events: Window, *, environment: Any = None
    ) -> _Result:
        with self.lock:
            table = self.events.setdefault((project, model), {})
            new = 0
            for i, id_ in enumerate(events.ids):
                if id_ in table:
                    continue
                new += 1
                table[id_] = {
                    "ts": float(events.ts[i]),
                    "score": None if events.scores is None else float(events.scores[i]),
                    "features": {k: v[i] for k, v in events.features.items()},
                }
            if environment:
                self.envs.append(environment)
            return _Result(new, len(events) - new)

    def log_labels(self, project: str, model: str, ids: Any, labels: Any) -> int:
        with self.lock:
            table = self.labels.setdefault((project, model), {})
            for i, lab in zip(ids, labels, strict=True):
                table[i] = lab
            return len(ids)

    def count_events(self, project: str, model: str, **kw: Any) -> int:
        return len(self.events.get((project, model), {}))

    def read_window(self, project: str, model: str, **kw: Any) -> Window:
        rows = self.events.get((project, model), {})
        labels = self.labels.get((project, model), {})
        ids = list(rows)
        return Window.from_columns(
            ids=ids,
            ts=[rows[i]["ts"] for i in ids],
            scores=[np.nan if rows[i]["score"] is None else rows[i]["score"] for i in ids],
            labels=[labels.get(i) for i in ids],
        )

    def ingest_stats(self, project: str, model: str, since: float) -> dict[str, Any]:
        return {"accepted": self.count_events(project, model), "rejected": 0}

    def serving_environments(self, project: str, model: str, since: Any = None) -> list[Any]:
        return list(self.envs)

    def add_metric_values(self, *args: Any, **kw: Any) -> None:
        self.metric_values.append((args, kw))


def _real_store(url: str) -> Any:
    try:
        from watchkeeper.store import Store
    except ImportError:
        return None
    return Store(url)


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """The real Store on SQLite and on PostgreSQL (a fake until the real one exists)."""
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        real = _real_store(url)
        if real is None:
            pytest.skip("watchkeeper.store not available yet")
    else:
        real = _real_store(f"sqlite:///{tmp_path / 'wk.db'}")
    s = real if real is not None else FakeStore()
    yield s
    if hasattr(s, "close"):
        s.close()


@dataclass
class Api:
    client: Any
    store: Any
    project: str
    ingest: str
    read: str
    admin: str

    def h(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


def unique_project() -> str:
    return f"p{secrets.token_hex(4)}"


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
