"""Leases: one holder at a time, across processes sharing the database."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from watchkeeper.store import Store


def test_one_holder_renewal_release_and_expiry(store: Store) -> None:
    assert store.acquire_lease("p", "runner:m", "a", ttl=60)
    assert store.acquire_lease("p", "runner:m", "a", ttl=60)  # renewal by the holder
    assert not store.acquire_lease("p", "runner:m", "b", ttl=60)
    assert store.acquire_lease("p", "runner:other", "b", ttl=60)  # leases are per key
    store.release_lease("p", "runner:m", "b")  # not b's: nothing happens
    assert not store.acquire_lease("p", "runner:m", "b", ttl=60)
    store.release_lease("p", "runner:m", "a")
    assert store.acquire_lease("p", "runner:m", "b", ttl=0.3)
    assert not store.acquire_lease("p", "runner:m", "a", ttl=0.01)  # b's ttl decides
    time.sleep(0.4)  # b stopped renewing: the lease lapses
    assert store.acquire_lease("p", "runner:m", "a", ttl=60)
    assert store.get_state("p", "runner:m") is None  # leases do not touch the runner's state


def test_concurrent_takers_get_it_once(store: Store) -> None:
    """Eight threads with their own connections race for one lease: exactly one wins."""
    url, schema = store.url, store.schema
    wins: list[str] = []
    barrier = threading.Barrier(8)

    def take(name: str) -> None:
        other = Store(url, schema=schema) if schema else Store(url)
        try:
            barrier.wait()
            if other.acquire_lease("p", "race", name, ttl=60):
                wins.append(name)
        finally:
            other.close()

    threads = [threading.Thread(target=take, args=(f"t{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"key": ""}, "key"),
        ({"holder": ""}, "holder"),
        ({"ttl": 0}, "ttl"),
        ({"ttl": float("nan")}, "ttl"),
    ],
)
def test_bad_arguments_name_the_field(store: Store, kwargs: dict[str, Any], field: str) -> None:
    args: dict[str, Any] = {"key": "k", "holder": "h", "ttl": 10.0, **kwargs}
    with pytest.raises(ValueError, match=field):
        store.acquire_lease("p", args["key"], args["holder"], ttl=args["ttl"])
