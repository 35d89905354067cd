"""Store fixtures: every test runs on SQLite, and on PostgreSQL when CI provides it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from watchkeeper.store import Store


def _drop_schema(url: str, schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh store with project ``p`` and model ``m``; on PostgreSQL in its own schema (the
    ``test`` database is shared by every engineer's tests, in parallel)."""
    if request.param == "sqlite":
        s = Store(str(tmp_path / "wk.db"))
        schema = None
        url = ""
    else:
        url = request.getfixturevalue("postgres_url")
        schema = f"wk_store_{uuid.uuid4().hex[:12]}"
        s = Store(url, schema=schema)
    s.create_project("p")
    s.register_model("p", "m")
    try:
        yield s
    finally:
        s.close()
        if schema is not None:
            _drop_schema(url, schema)
