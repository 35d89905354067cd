"""Shared fixtures: seeded generators and the optional PostgreSQL URL."""

from __future__ import annotations

import os

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
