"""One BLAS thread for the statistics tests: their matrices are small, and on a shared
machine multithreaded BLAS spends more time waiting for cores than computing."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _single_blas_thread() -> Iterator[None]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        yield
