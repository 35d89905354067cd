"""Shared fixtures: seeded generators, the optional PostgreSQL URL, a store on both databases."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261122)


@pytest.fixture
def postgres_url() -> str:
    """URL of the real PostgreSQL that CI provides; tests that need it skip without it."""
    url = os.environ.get("WATCHKEEPER_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("WATCHKEEPER_TEST_POSTGRES_URL is not set")
    return url


@pytest.fixture(params=["sqlite", "postgres"], scope="module")
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """The real Store on SQLite and on PostgreSQL, one per module (tests use fresh projects).

    The PostgreSQL half skips without ``WATCHKEEPER_TEST_POSTGRES_URL``; a directory may
    override this fixture with its own ``store``.
    """
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
