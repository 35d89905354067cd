"""Retention in the background: delete old raw events every so often, until stopped."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("watchkeeper.store")


def start_retention(
    store: Any, max_age: float, *, every: float = 3600.0, batch: int = 10_000
) -> Callable[[], None]:
    """Start a daemon thread that runs ``store.delete_events_older_than(max_age)`` now and then
    every ``every`` seconds; returns the function that stops it (and waits for it).

    Fits the server's start-up hooks (``settings.startup_hooks``: called with the store, may
    return a stop callable), e.g. ``lambda store: start_retention(store, 30 * 86400)``.
    Failures are logged and retried at the next round; findings and metrics are never deleted.

    Examples
    --------
    >>> from watchkeeper.store import Store
    >>> stop = start_retention(Store("sqlite://"), max_age=86400.0, every=60.0)
    >>> stop()
    """
    if isinstance(max_age, bool) or not isinstance(max_age, int | float) or not max_age >= 0:
        raise ValueError(f"max_age: expected seconds >= 0, got {max_age!r}")
    if isinstance(every, bool) or not isinstance(every, int | float) or not every > 0:
        raise ValueError(f"every: expected seconds > 0, got {every!r}")
    stopping = threading.Event()

    def run() -> None:
        while not stopping.is_set():
            try:
                n = store.delete_events_older_than(float(max_age), batch=batch)
                if n:
                    log.info("retention: deleted %d events older than %.0f s", n, max_age)
            except Exception:  # keep the worker alive; the next round retries
                log.exception("retention failed")
            stopping.wait(every)

    thread = threading.Thread(target=run, name="watchkeeper-retention", daemon=True)
    thread.start()

    def stop() -> None:
        stopping.set()
        thread.join()

    return stop
