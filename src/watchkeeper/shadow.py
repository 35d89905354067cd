"""Shadow a challenger on mirrored production traffic, off the serving path.

:class:`Shadow` takes each request the champion serves (its request ids and inputs), hands it to
a background thread through a bounded queue, scores it with the challenger there and logs the
challenger's events through any client with ``log_batch`` (:class:`watchkeeper.Client`,
:class:`watchkeeper.LocalClient`). Serving never waits: when the queue is full the request is
dropped from the shadow and counted, never queued behind the champion.

The challenger's events carry the same request ids as the champion's and the challenger's
version. The store keys events by (model, id), so they go to a companion stream,
``shadow_model(model)`` (``"<model>:shadow"`` by default): the champion's windows do not count
mirrored traffic twice, and labels logged for the champion's events are joined to the shadow's
by id in the shadow report (:func:`watchkeeper.loop.shadow_report`).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

_STOP = object()


def shadow_model(model: str) -> str:
    """The name under which a model's shadow events are logged.

    Examples
    --------
    >>> shadow_model("doc-fraud")
    'doc-fraud:shadow'
    """
    return f"{model}:shadow"


@dataclass(frozen=True, slots=True)
class ShadowStats:
    """Counters of a :class:`Shadow`: requests submitted, dropped (queue full), scored, failed."""

    submitted: int
    dropped: int
    scored: int
    failed: int
    queued: int

    def to_dict(self) -> dict[str, int]:
        """Return a JSON-serialisable dict."""
        return {
            "submitted": self.submitted,
            "dropped": self.dropped,
            "scored": self.scored,
            "failed": self.failed,
            "queued": self.queued,
        }


class Shadow:
    """Score mirrored requests with a challenger on a background thread; never block serving.

    Parameters
    ----------
    challenger
        ``challenger(inputs) -> scores``: the challenger's positive-class scores for a batch
        (array-like, one per request), or a mapping of ``log_batch`` keyword arguments
        (``scores``, ``probs``, ``embeddings``...).
    client
        Anything with ``log_batch(model, ids=..., version=..., latency_ms=..., **columns)``.
    model
        The champion's model name; events go to ``shadow_model(model)`` unless ``log_as``.
    version
        The challenger's version, recorded on every event.
    queue_size
        Requests waiting at most; beyond it new ones are dropped and counted.
    log_as
        Log under this model name instead of ``shadow_model(model)``.

    Examples
    --------
    >>> class Recorder:
    ...     def __init__(self): self.rows = []
    ...     def log_batch(self, model, **cols): self.rows.append((model, list(cols["ids"])))
    >>> rec = Recorder()
    >>> shadow = Shadow(lambda x: np.asarray(x) * 0.5, rec, "fraud", "v2")
    >>> shadow.submit(["a", "b"], [0.2, 0.8])
    True
    >>> shadow.close()
    >>> rec.rows, shadow.stats.scored
    ([('fraud:shadow', ['a', 'b'])], 2)
    """

    def __init__(
        self,
        challenger: Callable[[Any], Any],
        client: Any,
        model: str,
        version: str,
        *,
        queue_size: int = 1000,
        log_as: str | None = None,
    ) -> None:
        if not callable(challenger):
            raise TypeError("challenger: expected a callable")
        if not hasattr(client, "log_batch"):
            raise TypeError("client: expected an object with log_batch (a Client or LocalClient)")
        if isinstance(queue_size, bool) or not 1 <= int(queue_size) <= 1_000_000:
            raise ValueError(f"queue_size must be in [1, 1000000], got {queue_size}")
        if not isinstance(version, str) or not version:
            raise ValueError(f"version: expected a non-empty string, got {version!r}")
        self.challenger = challenger
        self.client = client
        self.model = model
        self.version = version
        self.queue_size = queue_size
        self.log_as = log_as
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=int(queue_size))
        self._lock = threading.Lock()
        self._submitted = self._dropped = self._scored = self._failed = 0
        self.last_error: BaseException | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="watchkeeper-shadow", daemon=True)
        self._thread.start()

    @property
    def stats(self) -> ShadowStats:
        """The counters so far."""
        with self._lock:
            return ShadowStats(
                self._submitted, self._dropped, self._scored, self._failed, self._queue.qsize()
            )

    def submit(self, ids: Any, inputs: Any, **columns: Any) -> bool:
        """Mirror one served batch; returns at once, ``False`` when it was dropped.

        ``columns`` are logged with the challenger's events as they are (``features``,
        ``tags``, ``ts``...), so both sides of a pair can carry the same segment tags.
        """
        ids_list = [str(i) for i in np.atleast_1d(np.asarray(ids, dtype=object))]
        n = len(ids_list)
        if self._closed:
            raise RuntimeError("the shadow is closed")
        try:
            self._queue.put_nowait((ids_list, inputs, columns))
        except queue.Full:
            with self._lock:
                self._submitted += n
                self._dropped += n
            return False
        with self._lock:
            self._submitted += n
        return True

    def wrap(self, champion: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
        """``serve(ids, inputs)``: the champion's answer; the request is mirrored to the shadow."""

        def serve(ids: Any, inputs: Any) -> Any:
            out = champion(inputs)
            self.submit(ids, inputs)
            return out

        return serve

    def _work(self) -> None:
        name = self.log_as or shadow_model(self.model)
        while True:
            item = self._queue.get()
            if item is _STOP:
                self._queue.task_done()
                return
            ids, inputs, columns = item
            try:
                t0 = time.perf_counter()
                out = self.challenger(inputs)
                elapsed = (time.perf_counter() - t0) * 1000.0
                cols: dict[str, Any] = dict(columns)
                if isinstance(out, Mapping):
                    cols.update(out)
                else:
                    cols["scores"] = np.asarray(out, dtype=np.float64).reshape(-1)
                # each event gets the call's time, as the torch hook records a forward pass
                cols.setdefault("latency_ms", np.full(len(ids), elapsed))
                self.client.log_batch(name, ids=ids, version=self.version, **cols)
                with self._lock:
                    self._scored += len(ids)
            except Exception as exc:  # a failing challenger must not stop the shadow
                self.last_error = exc
                with self._lock:
                    self._failed += len(ids)
            finally:
                self._queue.task_done()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every queued request is scored and logged; ``False`` on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if deadline is not None and time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def close(self, timeout: float | None = 10.0) -> None:
        """Score what is queued, then stop the thread."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def __enter__(self) -> Shadow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
