"""The scheduler the server starts: runs every model's monitors on a fixed tick, in a thread."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from typing import Any

from watchkeeper.alerts import SinkPolicy
from watchkeeper.runner._run import MAX_WINDOWS, RunResult, run_monitors

log = logging.getLogger("watchkeeper.runner")


class Scheduler:
    """Run :func:`run_monitors` for every model of every project every ``interval`` seconds.

    A tick evaluates only windows that closed since the last run, so ticks much shorter than
    the window length are cheap (a state read per model). What was fitted on each reference is
    kept for the ``max_cached`` most recently run models.

    Parameters
    ----------
    store
        The :class:`~watchkeeper.store.Store`.
    interval
        Seconds between ticks.
    max_cached
        Models whose fitted references are kept in memory.
    sink_policy
        The operator's hosts and secret names for sinks (``None``: read from the environment).
    max_windows
        Most windows one model's run evaluates (a backlog, or a first run's backfill, keeps
        the newest).
    after_run
        Called as ``after_run(project, model, now)`` after each model's monitors ran: the
        server passes the retraining loop's step (``watchkeeper.loop``), so a tick evaluates
        the triggers, the gate, the shadow test and the promotions right after the findings
        they read. A failure is logged and the tick goes on.

    Examples
    --------
    >>> from watchkeeper.store import Store
    >>> s = Scheduler(Store("sqlite://"), interval=3600)
    >>> s.run_once()
    []
    """

    def __init__(
        self,
        store: Any,
        interval: float = 60.0,
        max_cached: int = 8,
        sink_policy: SinkPolicy | None = None,
        max_windows: int = MAX_WINDOWS,
        after_run: Callable[[str, str, float | None], Any] | None = None,
    ) -> None:
        self.store = store
        self.after_run = after_run
        self.sink_policy = sink_policy
        self.max_windows = max_windows
        self.interval = interval
        self.max_cached = max_cached
        self._caches: OrderedDict[tuple[str, str], dict[Any, Any]] = OrderedDict()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_results: dict[tuple[str, str], RunResult] = {}

    def _models(self) -> Iterator[tuple[str, str]]:
        for project in self.store.list_projects():
            for model in self.store.list_models(project):
                yield project, model

    def _cache(self, key: tuple[str, str]) -> dict[Any, Any]:
        cache = self._caches.pop(key, None) or {}
        self._caches[key] = cache
        while len(self._caches) > self.max_cached:
            self._caches.popitem(last=False)
        return cache

    def run_once(self, now: float | None = None) -> list[RunResult]:
        """One tick over every model; a model whose run fails is logged and skipped."""
        results = []
        for key in list(self._models()):
            try:
                result = run_monitors(
                    self.store, *key, now=now, cache=self._cache(key), sink_policy=self.sink_policy,
                    max_windows=self.max_windows,
                )
            except Exception:
                log.exception("monitors of %s/%s failed", *key)
                continue
            self.last_results[key] = result
            results.append(result)
            if self.after_run is not None:
                try:
                    self.after_run(*key, now)
                except Exception:
                    log.exception("the loop step of %s/%s failed", *key)
        return results

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.run_once()
            self._stop.wait(max(0.0, float(self.interval) - (time.monotonic() - started)))

    def start(self) -> Scheduler:
        """Start ticking in a daemon thread (the first tick runs at once)."""
        if not float(self.interval) > 0:
            raise ValueError(f"interval must be positive, got {self.interval}")
        if self._thread is None or not self._thread.is_alive():
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._loop, name="watchkeeper-scheduler", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop after the current tick."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
