"""Shadow a challenger on mirrored production traffic, off the serving path.

:class:`Shadow` takes each request the champion serves (its request ids and inputs) and hands it
through a bounded queue to the challenger, which scores it and logs its events through any
client with ``log_batch`` (:class:`watchkeeper.Client`, :class:`watchkeeper.LocalClient`).
Serving never waits: when the queue is full the request is dropped from the shadow and counted.

Two modes:

- ``"process"``: the challenger runs in a child process (spawned, lowered priority or
  ``SCHED_IDLE``, one math thread, optionally pinned to its own CPUs) that builds its own
  client and logs its events itself. For the usual batch (inputs as a plain array, ids as an
  array or a list, no other column) the serving thread writes a cached header, copies the
  arrays' bytes once into a ring buffer in shared memory and bumps a counter the child polls:
  no pickling, no thread of its own, no pipe, no system call, no wait. The child scores the
  batches that waited together (one call for many requests). Nothing of the challenger's
  work, nor of the logging, shares the serving process's interpreter lock. A child that dies
  is counted, its queued requests are counted as lost, and a new one is started
  (``max_restarts``).
- ``"thread"``: the challenger runs in a thread of the serving process. Cheaper to start and
  accepts any callable (closures, lambdas), but its Python work competes for the interpreter
  lock with the serving thread, which shows in the champion's tail latency.

``"auto"`` (the default) picks ``"process"`` when the challenger can be pickled and the client
rebuilt in the child (a ``Client``, or a ``LocalClient`` on a database file or server), and
``"thread"`` otherwise (logged at INFO with the reason); :attr:`Shadow.mode` says which.

The challenger's events carry the same request ids as the champion's and the challenger's
version. The store keys events by (model, id), so they go to a companion stream,
``shadow_model(model)`` (``"<model>:shadow"`` by default): the champion's windows do not count
mirrored traffic twice, and labels logged for the champion's events are joined to the shadow's
by id in the shadow report (:func:`watchkeeper.loop.shadow_report`).
"""

from __future__ import annotations

import collections
import contextlib
import io
import logging
import multiprocessing as mp
import os
import pickle
import queue
import signal
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

__all__ = ["Shadow", "ShadowStats", "shadow_model"]

_log = logging.getLogger(__name__)

_STOP = object()
_NOTHING = object()
Mode = Literal["auto", "process", "thread"]
# shared words, one writer each (no lock needed): the child writes the first five, the serving
# process the rest (_SERVING: requests being served now; _SERVING_SINCE: when it left 0, in
# monotonic ns, so a count a failed request never brought down goes stale instead of starving
# a deferring challenger)
_SCORED, _FAILED, _DONE, _ACK, _READ, _TAKEN, _SENT, _SERVING, _SERVING_SINCE = range(9)
_N_WORDS = 9
# a deferring challenger: how often it looks whether serving is over, and after how long a
# request still marked as served is taken for one whose end was never marked
_DEFER_POLL_S = 0.0005
_DEFER_STALE_NS = 5_000_000_000
# a deferring shadow copies a batch into the ring in chunks of this many bytes, and looks
# before each whether a request is being served (a chunk takes some tens of microseconds)
_CHUNK = 1 << 18
_STOP_COPIER = ("stop",)
# the child's polling pause while the ring is empty: short while batches flow, longer when idle
_POLL_MIN_S, _POLL_MAX_S = 0.002, 0.02
_WORD = 8
_WRAP = -1
_HEAD_PAIR = struct.Struct("<5q")
_WRAP_WORD = struct.Struct("<q")
# array kinds whose bytes are sent raw: numbers, booleans, fixed-width strings
_RAW_KINDS = frozenset("biufcSU")
_ID_TYPES = (np.ndarray, list)  # ids the serving path copies without the pickler


def _pad(n: int) -> int:
    return -(-n // _WORD) * _WORD


def _words(counters: Any) -> Any:
    """The shared counters as a memoryview of int64 (indexing it is cheaper than ctypes')."""
    try:
        return memoryview(counters).cast("B").cast("q")
    except TypeError:  # a plain list (tests)
        return counters


def _pair_layout(meta: bytes, n_ids: int, n_inputs: int) -> tuple[bytes, int, int]:
    """A two-array record's header and metadata as one prefix, its total size and where its
    second array starts: fixed by the arrays' dtypes and shapes, so cached per batch shape."""
    total = 5 * _WORD + _pad(len(meta)) + _pad(n_ids) + _pad(n_inputs)
    prefix = _HEAD_PAIR.pack(total, len(meta), 2, n_ids, n_inputs) + meta.ljust(
        _pad(len(meta)), b"\0"
    )
    return prefix, total, len(prefix) + _pad(n_ids)


class _Ring:
    """A byte ring in shared memory: one writer (the serving process), one reader (the child).

    A record is ``[total, meta_len, n_bufs, len_1..len_n]`` (int64 words), the pickled batch
    without its arrays and the arrays' bytes (copied straight from the caller's arrays, see
    :class:`_Packer`), each padded to 8 bytes. Positions are running totals: the writer keeps
    ``written``, the reader publishes ``counters[_READ]`` once it has copied a record out, so
    the writer never overwrites a record still being read. A record that does not fit before
    the end leaves a ``_WRAP`` word and starts again at 0. ``counters[_SENT]`` counts the
    records written, ``counters[_TAKEN]`` those read.
    """

    def __init__(self, data: Any, counters: Any, capacity: int) -> None:
        self.data = data
        self.counters = counters
        self.capacity = capacity
        self.written = 0  # the writer's side only
        self._view: memoryview | None = None
        self._bytes: np.ndarray | None = None
        self.words = _words(counters)

    def __getstate__(self) -> dict[str, Any]:
        return {"data": self.data, "counters": self.counters, "capacity": self.capacity}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["data"], state["counters"], state["capacity"])  # type: ignore[misc]

    @property
    def view(self) -> memoryview:
        if self._view is None:
            self._view = memoryview(self.data).cast("B")
        return self._view

    def _claim(self, total: int) -> int:
        """Where a record of ``total`` bytes goes, or -1 when it does not fit now.

        When the reader has caught up (it has read all that was written, and touches its
        position only after a new record is counted), the writer moves both positions to the
        start: while the challenger keeps up, the serving thread writes the same few hundred kB
        over and over, which stay in its caches, instead of walking the whole ring through cold
        memory.
        """
        cap, written, words = self.capacity, self.written, self.words
        read = words[_READ]
        off = written % cap
        if off and read == written:
            read = words[_READ] = written = written + cap - off
            off = 0
        skip = 0 if total <= cap - off else cap - off
        if written + skip + total - read > cap:
            return -1
        if skip:
            _WRAP_WORD.pack_into(self.view, off, _WRAP)
            off = 0
        self.written = written + skip + total
        return off

    def put(self, meta: bytes, bufs: list[memoryview]) -> bool:
        """Copy one record in; ``False`` (nothing written) when it does not fit now."""
        head = _WORD * (3 + len(bufs))
        total = head + _pad(len(meta)) + sum(_pad(b.nbytes) for b in bufs)
        off = self._claim(total)
        if off < 0:
            return False
        view = self.view
        struct.pack_into(
            f"<{3 + len(bufs)}q", view, off, total, len(meta), len(bufs), *(b.nbytes for b in bufs)
        )
        pos = off + head
        view[pos : pos + len(meta)] = meta
        pos += _pad(len(meta))
        for b in bufs:
            view[pos : pos + b.nbytes] = b
            pos += _pad(b.nbytes)
        return True

    def put_pair(
        self,
        prefix: bytes,
        total: int,
        at_inputs: int,
        ids: bytes | memoryview,
        inputs: memoryview,
        between: Callable[[], None] | None = None,
    ) -> bool:
        """:meth:`put` for the usual record, two arrays laid out by :func:`_pair_layout`: the
        serving thread's whole cost is this, one small copy and two ``memcpy`` (:meth:`_claim`
        written out here: every call on this path costs the serving thread).

        ``between``: copy the inputs in chunks of ``_CHUNK`` bytes, calling it before each
        (a deferring shadow's copier waits there while a request is served), with numpy,
        which copies without holding the interpreter lock.
        """
        cap, written, view, words = self.capacity, self.written, self.view, self.words
        read = words[_READ]
        off = written % cap
        if off and read == written:  # all read: back to the start (see _claim)
            read = words[_READ] = written = written + cap - off
            off = 0
        skip = 0 if total <= cap - off else cap - off
        if written + skip + total - read > cap:
            return False
        if skip:
            _WRAP_WORD.pack_into(view, off, _WRAP)
            off = 0
        self.written = written + skip + total
        head = len(prefix)
        view[off : off + head] = prefix
        view[off + head : off + head + len(ids)] = ids  # bytes, or a memoryview of bytes
        if between is None:
            view[off + at_inputs : off + at_inputs + len(inputs)] = inputs
            return True
        if self._bytes is None:
            self._bytes = np.frombuffer(self.data, dtype=np.uint8)
        dst, src = self._bytes, np.frombuffer(inputs, dtype=np.uint8)
        pos = off + at_inputs
        for a in range(0, len(src), _CHUNK):
            between()
            b = min(a + _CHUNK, len(src))
            dst[pos + a : pos + b] = src[a:b]
        return True

    def take(self) -> tuple[bytes, list[bytearray]]:
        """Copy the next record out and free its room (the reader's side)."""
        read = int(self.counters[_READ])
        off = read % self.capacity
        view = self.view
        if self.capacity - off < _WORD or struct.unpack_from("<q", view, off)[0] == _WRAP:
            read += self.capacity - off
            off = 0
        total, meta_len, n = struct.unpack_from("<3q", view, off)
        lens = struct.unpack_from(f"<{n}q", view, off + 3 * _WORD)
        pos = off + _WORD * (3 + n)
        meta = bytes(view[pos : pos + meta_len])
        pos += _pad(meta_len)
        bufs = []
        for size in lens:
            bufs.append(bytearray(view[pos : pos + size]))
            pos += _pad(size)
        self.counters[_READ] = read + total
        self.counters[_TAKEN] += 1
        return meta, bufs


class _Packer(pickle.Pickler):
    """Pickles a batch with its plain arrays left out: their bytes go straight to the ring.

    numpy's own pickling of an array costs tens of microseconds; an array here is a reference
    (index, dtype, shape) and one ``memcpy`` into the ring.
    """

    def __init__(self, file: io.BytesIO, bufs: list[memoryview]) -> None:
        super().__init__(file, protocol=5)
        self.bufs = bufs

    def persistent_id(self, obj: Any) -> Any:
        if _array(obj):
            self.bufs.append(memoryview(obj).cast("B"))
            return (len(self.bufs) - 1, obj.dtype.str, obj.shape)
        return None


class _Unpacker(pickle.Unpickler):
    def __init__(self, meta: bytes, bufs: list[bytearray]) -> None:
        super().__init__(io.BytesIO(meta))
        self.bufs = bufs

    def persistent_load(self, pid: Any) -> Any:
        index, dtype, shape = pid
        return np.frombuffer(self.bufs[index], dtype=np.dtype(dtype)).reshape(shape)


def _pack(obj: Any) -> tuple[bytes, list[memoryview]]:
    """The pickled batch without its arrays, and the arrays' bytes (not copied yet)."""
    file, bufs = io.BytesIO(), list[memoryview]()
    _Packer(file, bufs).dump(obj)
    return file.getvalue(), bufs


def _raw(obj: np.ndarray) -> bool:
    """An array whose bytes, dtype and shape are the whole of it (no objects, not empty)."""
    return obj.dtype.kind in _RAW_KINDS and bool(obj.size)


def _array(obj: Any) -> bool:
    return type(obj) is np.ndarray and _raw(obj) and bool(obj.flags.c_contiguous)


def _unpack(meta: bytes, bufs: list[bytearray]) -> Any:
    item = _Unpacker(meta, bufs).load()
    if item is not None and item[0] == "raw":
        _, ids_dtype, ids_shape, x_dtype, x_shape = item
        ids = np.frombuffer(bufs[0], dtype=np.dtype(ids_dtype)).reshape(ids_shape)
        x = np.frombuffer(bufs[1], dtype=np.dtype(x_dtype)).reshape(x_shape)
        return ("batch", ids, x, {})
    return item


def _check_cpus(cpus: Iterable[int] | None) -> frozenset[int] | None:
    """The child's CPUs as a set, checked against the CPUs this process may use."""
    if cpus is None:
        return None
    if isinstance(cpus, str | bytes) or not isinstance(cpus, Iterable):
        raise TypeError(f"cpus: expected CPU numbers such as {{1}}, got {cpus!r}")
    chosen = list(cpus)
    if not chosen or not all(isinstance(c, int) and not isinstance(c, bool) for c in chosen):
        raise ValueError(f"cpus: expected a non-empty set of CPU numbers, got {cpus!r}")
    if not hasattr(os, "sched_setaffinity"):
        raise ValueError("cpus: this platform cannot pin a process to CPUs")
    count = os.cpu_count() or 1
    if not all(0 <= c < count for c in chosen):
        raise ValueError(
            f"cpus: {sorted(chosen)} not all among this machine's CPUs 0 to {count - 1}"
        )
    return frozenset(chosen)


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
    """Counters of a :class:`Shadow`, in events (requests).

    ``submitted = dropped + scored + failed + lost +`` what is still on its way. ``dropped``:
    the queue was full (or the shadow gave up after too many crashes); ``failed``: the
    challenger or the client raised; ``lost``: queued when the challenger's process died;
    ``queued``: batches waiting; ``crashes``: child processes that died.
    """

    submitted: int
    dropped: int
    scored: int
    failed: int
    queued: int
    lost: int = 0
    crashes: int = 0

    def to_dict(self) -> dict[str, int]:
        """Return a JSON-serialisable dict."""
        return {
            "submitted": self.submitted,
            "dropped": self.dropped,
            "scored": self.scored,
            "failed": self.failed,
            "queued": self.queued,
            "lost": self.lost,
            "crashes": self.crashes,
        }


def _score(
    challenger: Callable[[Any], Any],
    ids: Any,
    inputs: Any,
    columns: Mapping[str, Any],
    sizes: list[int] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Score one mirrored batch: its ids (as strings) and the columns to log with them.

    ``sizes``: the batch is several requests' batches put together; each request's events get
    its share of the call's time (in proportion to its rows), as if scored on its own.
    """
    ids_arr = np.atleast_1d(np.asarray(ids, dtype=object)).astype(str).astype(object)
    t0 = time.perf_counter()
    out = challenger(inputs)
    elapsed = (time.perf_counter() - t0) * 1000.0
    if isinstance(challenger, _Deferred):  # its time computing, not waiting for a gap
        elapsed = challenger.compute_s * 1000.0
    cols: dict[str, Any] = dict(columns)
    if isinstance(out, Mapping):
        cols.update(out)
    else:
        cols["scores"] = np.asarray(out, dtype=np.float64).reshape(-1)
    # each event gets the call's time, as the torch hook records a forward pass
    if sizes is None:
        cols.setdefault("latency_ms", np.full(len(ids_arr), elapsed))
    else:
        share = np.asarray(sizes, dtype=np.float64)
        cols.setdefault("latency_ms", np.repeat(elapsed * share / share.sum(), sizes))
    return ids_arr, cols


def _score_and_log(
    challenger: Callable[[Any], Any],
    client: Any,
    name: str,
    version: str,
    ids: Any,
    inputs: Any,
    columns: Mapping[str, Any],
) -> int:
    """Score one mirrored batch and log it as the challenger's version; the events logged."""
    ids_arr, cols = _score(challenger, ids, inputs, columns)
    client.log_batch(name, ids=ids_arr, version=version, **cols)
    return len(ids_arr)


class _LogBuffer:
    """The child's scored events, logged in few large ``log_batch`` calls.

    A ``log_batch`` costs mostly per call (a transaction, a request): one per mirrored batch of
    32 costs the challenger's process several times its model's work, and on a small machine
    that CPU is taken from the champion. Events whose columns are all one-dimensional arrays of
    their length wait here until ``max_rows`` of them or ``max_age_s`` after the first; any
    other batch is logged at once (after what waits, so the order is kept). The counters
    count an event scored once it is logged.
    """

    def __init__(self, client: Any, name: str, version: str, counters: Any, note: Any,
                 max_rows: int = 4096, max_age_s: float = 0.5,
                 wait: Callable[[], None] | None = None) -> None:  # fmt: skip
        self.client, self.name, self.version = client, name, version
        self.wait = wait
        self.counters, self.note = counters, note
        self.max_rows, self.max_age_s = max_rows, max_age_s
        self.parts: list[tuple[np.ndarray, dict[str, Any]]] = []
        self.rows = 0
        self.since = 0.0

    def add(self, ids: np.ndarray, cols: dict[str, Any]) -> None:
        stackable = all(
            isinstance(v, np.ndarray) and v.ndim == 1 and len(v) == len(ids) for v in cols.values()
        )
        if self.parts and (not stackable or cols.keys() != self.parts[0][1].keys()):
            self.write()
        if not stackable:
            self._log(ids, cols)
            return
        if not self.parts:
            self.since = time.monotonic()
        self.parts.append((ids, cols))
        self.rows += len(ids)
        if self.rows >= self.max_rows:
            self.write()

    def due(self) -> bool:
        return bool(self.parts) and time.monotonic() - self.since >= self.max_age_s

    def write(self) -> None:
        parts, self.parts, self.rows = self.parts, [], 0
        if len(parts) == 1:
            self._log(*parts[0])
        elif parts:
            ids = np.concatenate([p[0] for p in parts])
            keys = parts[0][1].keys()
            self._log(ids, {k: np.concatenate([p[1][k] for p in parts]) for k in keys})

    def _log(self, ids: np.ndarray, cols: dict[str, Any]) -> None:
        if self.wait is not None:
            self.wait()
        try:
            self.client.log_batch(self.name, ids=ids, version=self.version, **cols)
            self.counters[_SCORED] += len(ids)
        except Exception as exc:  # a failing client must not stop the shadow
            self.counters[_FAILED] += len(ids)
            self.note(exc)


def _wait_for_idle(words: Any) -> None:
    """Return once the serving process serves no request (or the one it serves went stale)."""
    while words[_SERVING] > 0 and time.monotonic_ns() - words[_SERVING_SINCE] < _DEFER_STALE_NS:
        time.sleep(_DEFER_POLL_S)


class _Deferred:
    """The challenger called in slices of rows, each started only while nothing is served.

    Two CPUs of one machine share caches and memory bandwidth (two vCPUs may even be one
    core's hyperthreads): a challenger computing beside the champion slows it by a fifth or
    more, even on a CPU of its own. Deferring keeps the challenger's work out of the
    champion's requests: it starts a slice only between requests, and a slice lasts about
    ``slice_s``, learnt from the rows per second of the slices before, so a request that
    arrives mid-slice overlaps it by at most that. What cannot be scored in the gaps waits in
    the queue, and beyond it is dropped and counted.
    """

    def __init__(self, challenger: Callable[[Any], Any], words: Any, slice_s: float) -> None:
        self.challenger, self.words, self.slice_s = challenger, words, slice_s
        self.row_s = 0.0  # seconds per row, a running mean; 0 until the first slice
        self.compute_s = 0.0  # the last call's time computing, without the waits

    def __call__(self, inputs: Any) -> Any:
        self.compute_s = 0.0
        if not (isinstance(inputs, np.ndarray) and inputs.ndim >= 1 and len(inputs)):
            _wait_for_idle(self.words)  # not sliceable: one call, after the wait
            t0 = time.perf_counter()
            out = self.challenger(inputs)
            self.compute_s = time.perf_counter() - t0
            return out
        outs: list[Any] = []
        for_rows = len(inputs)
        start = 0
        while start < for_rows:
            _wait_for_idle(self.words)
            rows = 1 if self.row_s <= 0 else max(1, int(self.slice_s / self.row_s))
            part = inputs[start : start + rows]
            t0 = time.perf_counter()
            outs.append(self.challenger(part))
            spent = time.perf_counter() - t0
            self.compute_s += spent
            per_row = spent / len(part)
            self.row_s = per_row if self.row_s <= 0 else 0.8 * self.row_s + 0.2 * per_row
            start += len(part)
        return _concat_outputs(outs)


def _concat_outputs(outs: list[Any]) -> Any:
    """One output from the slices' outputs: arrays (or a mapping of them) stacked by rows."""
    if len(outs) == 1:
        return outs[0]
    if isinstance(outs[0], Mapping):
        return {k: np.concatenate([np.atleast_1d(np.asarray(o[k])) for o in outs]) for k in outs[0]}
    return np.concatenate([np.atleast_1d(np.asarray(o)) for o in outs])


def _rows(item: Any) -> int:
    """The rows of a batch that can be put together with others (two arrays, no column), or 0."""
    if item is None or item[0] != "batch" or item[3]:
        return 0
    _, ids, inputs, _ = item
    if type(ids) is not np.ndarray or type(inputs) is not np.ndarray or ids.ndim != 1:
        return 0
    return len(ids) if inputs.ndim >= 1 and len(inputs) == len(ids) else 0


def _same_kind(a: Any, b: Any) -> bool:
    """Batches whose arrays concatenate without a cast: same dtypes (ids: same kind) and rows."""
    return bool(
        a[1].dtype.kind == b[1].dtype.kind
        and a[2].dtype == b[2].dtype
        and a[2].shape[1:] == b[2].shape[1:]
    )


def _count(ids: Any) -> int:
    if isinstance(ids, str | bytes):
        return 1
    try:
        return len(ids)
    except TypeError:
        return 1


# --- shipping the client to the child ---------------------------------------------------------


def _client_recipe(client: Any, copy: bool) -> tuple[tuple[str, Any] | None, str]:
    """How the child rebuilds ``client``: ``(recipe, "")`` or ``(None, why not)``.

    Any other client is sent as a pickled copy only when ``copy`` (process mode asked for):
    a copy of an in-memory recorder would log where the parent never looks.
    """
    from watchkeeper.sdk import Client, LocalClient

    if isinstance(client, Client):
        keys = ("spool_dir", "batch_size", "flush_interval", "timeout", "retry_base",
                "retry_max", "max_queue", "exit_timeout", "system_metrics")  # fmt: skip
        # the child's Client locks its own spool file in the same directory
        return ("client", (client.url, client.token, {k: getattr(client, k) for k in keys})), ""
    if isinstance(client, LocalClient):
        db = client.db
        url = db if db is None or isinstance(db, str | os.PathLike) else getattr(db, "url", "")
        text = "" if url is None else str(url)
        if url is not None and (
            text in ("", "sqlite://", "sqlite:///:memory:", ":memory:") or "mode=memory" in text
        ):
            return None, "client: a LocalClient on an in-memory database cannot be shared"
        return ("local", (None if url is None else text, client.project, client.batch_size)), ""
    if not copy:
        return None, "client: only a Client or a LocalClient is rebuilt in the child by default"
    try:
        return ("pickled", pickle.dumps(client)), ""
    except Exception as exc:
        return None, f"client: cannot be sent to the challenger's process ({exc})"


def _build_client(recipe: tuple[str, Any]) -> Any:
    kind, data = recipe
    if kind == "client":
        from watchkeeper.sdk import Client

        url, token, kwargs = data
        return Client(url, token, **kwargs)
    if kind == "local":
        from watchkeeper.sdk import LocalClient

        db, project, batch_size = data
        return LocalClient(db, project, batch_size=batch_size)
    return pickle.loads(data)


def _limit_threads(threads: int) -> None:
    """One (or ``threads``) math thread in the child: it must not crowd the champion's cores."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(threads)
    except Exception:  # pragma: no cover - threadpoolctl comes with scikit-learn
        pass
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(threads)


def _child_main(
    challenger_blob: bytes,
    client_recipe: tuple[str, Any],
    name: str,
    version: str,
    ring: _Ring,
    counters: Any,
    error: Any,
    threads: int,
    niceness: int,
    idle: bool,
    cpus: frozenset[int] | None,
    coalesce_rows: int,
    defer_slice_s: float | None = None,
) -> None:
    """The challenger's process: score and log what the ring brings until told to stop."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    # before the challenger is unpickled: the threads its libraries start inherit all of this
    if niceness:
        with contextlib.suppress(OSError):  # not permitted here: run at the same priority
            os.nice(niceness)
    if idle and hasattr(os, "SCHED_IDLE"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))

    def note(exc: BaseException) -> None:
        text = f"{type(exc).__name__}: {exc}".encode(errors="replace")[: len(error) - 1]
        with error.get_lock():
            error.value = text

    if cpus is not None:
        try:
            os.sched_setaffinity(0, cpus)
        except OSError as exc:  # e.g. outside this container's CPU set: said, not fatal
            note(OSError(f"cpus {sorted(cpus)}: {exc}"))

    try:
        challenger = pickle.loads(challenger_blob)
        client = _build_client(client_recipe)
    except Exception as exc:
        note(exc)
        sys.exit(3)
    _limit_threads(threads)
    words = _words(counters)
    if defer_slice_s is not None:
        challenger = _Deferred(challenger, words, defer_slice_s)

    parent = mp.parent_process()
    pause, looked = _POLL_MIN_S, time.monotonic()
    pending: Any = _NOTHING  # a record taken out of turn while coalescing
    # a deferring challenger logs between requests too: logging costs CPU like scoring
    wait = None if defer_slice_s is None else (lambda: _wait_for_idle(words))
    log = _LogBuffer(client, name, version, counters, note, wait=wait)
    while True:
        # The child polls the writer's count rather than wait on a semaphore: posting one would
        # cost the serving thread a system call (and a wake-up) per batch; polling costs only
        # this process, which runs at a lower priority.
        if pending is _NOTHING and int(counters[_TAKEN]) >= int(counters[_SENT]):
            if time.monotonic() - looked > 1.0:
                looked = time.monotonic()
                if parent is not None and not parent.is_alive():
                    break  # orphaned: nobody will read what we log, nor stop us
            if log.due():
                log.write()
            time.sleep(pause)
            pause = min(pause * 2, _POLL_MAX_S)
            continue
        pause = _POLL_MIN_S
        if pending is _NOTHING:
            item = _unpack(*ring.take())
        else:
            item, pending = pending, _NOTHING
        if item is None:
            log.write()
            break
        if item[0] == "flush":
            log.write()
            try:
                flush = getattr(client, "flush", None)
                if flush is not None:
                    flush(timeout=item[2])
            except Exception as exc:
                note(exc)
            counters[_ACK] = item[1]
            continue
        # batches that waited are scored together: one challenger call and one log_batch for
        # many requests, so a challenger that fell behind catches up on less CPU
        batches = [item]
        rows = _rows(item)
        while 0 < rows < coalesce_rows and int(counters[_TAKEN]) < int(counters[_SENT]):
            nxt = _unpack(*ring.take())
            if _rows(nxt) and _same_kind(item, nxt):
                batches.append(nxt)
                rows += _rows(nxt)
            else:
                pending = nxt  # a control record or another kind of batch: next round
                break
        if len(batches) == 1:
            _, ids, inputs, columns = item
            sizes = None
        else:
            ids = np.concatenate([b[1] for b in batches])
            inputs = np.concatenate([b[2] for b in batches])
            columns, sizes = {}, [len(b[1]) for b in batches]
        try:
            scored = _score(challenger, ids, inputs, columns, sizes)
        except Exception as exc:  # a failing challenger must not stop the shadow
            counters[_FAILED] += _count(ids)
            note(exc)
        else:
            log.add(*scored)
        counters[_DONE] += len(batches)
        if log.due():
            log.write()
    close = getattr(client, "close", None)
    if close is not None:
        close(timeout=30)


class Shadow:
    """Score mirrored requests with a challenger off the serving path; never block serving.

    Parameters
    ----------
    challenger
        ``challenger(inputs) -> scores``: the challenger's positive-class scores for a batch
        (array-like, one per request), or a mapping of ``log_batch`` keyword arguments
        (``scores``, ``probs``, ``embeddings``...). In process mode it is pickled once and
        unpickled in the child: a module-level function, a class instance (such as
        :class:`watchkeeper.integrations.torch.TorchChallenger`) or a torch module.
    client
        Anything with ``log_batch(model, ids=..., version=..., latency_ms=..., **columns)``.
        In process mode the child builds its own: the same ``Client`` settings (its own spool
        file), a ``LocalClient`` on the same database file or server, or, with
        ``mode="process"`` only, an unpickled copy of any other picklable client.
    model
        The champion's model name; events go to ``shadow_model(model)`` unless ``log_as``.
    version
        The challenger's version, recorded on every event.
    queue_size
        Batches waiting at most; beyond it new ones are dropped and counted.
    log_as
        Log under this model name instead of ``shadow_model(model)``.
    mode
        ``"process"``, ``"thread"`` or ``"auto"`` (process when possible); see the module
        docstring.
    threads
        Math threads of the child (BLAS, OpenMP, torch intra-op).
    niceness
        How much the child lowers its scheduling priority (``os.nice``).
    max_restarts
        Child processes started again after a crash; after that the shadow drops (and counts)
        every request, and serving goes on.
    buffer_mb
        Process mode: size of the shared-memory ring the batches wait in; a batch that finds
        no room is dropped and counted, like one that finds ``queue_size`` batches waiting.
    idle
        Process mode, Linux: run the child under ``SCHED_IDLE``, on CPU time no other process
        wants. The champion never waits for it; when no CPU is idle the queue fills and
        batches are dropped (counted) instead.
    cpus
        Process mode: the CPUs the child may run on (``os.sched_setaffinity``), e.g. ``{1}``
        with the serving process pinned to ``{0}``: the challenger then never takes the
        champion's core.
    coalesce_rows
        Process mode: batches waiting in the ring are scored together, one challenger call
        and one ``log_batch`` for up to this many rows (plain-array batches without columns
        only); each request's events get their share of the call's time as ``latency_ms``.
    defer
        Process mode: the challenger computes (and logs) only while the champion serves no
        request, in slices of about ``slice_ms``. The serving side marks its requests:
        :meth:`wrap` and the torch integration do it; a serving loop of its own uses
        ``with shadow.serving(): ...`` around the champion's call. On a machine whose CPUs
        share caches and memory bandwidth (most, and any two hyperthreads) this is what keeps
        a heavy challenger out of the champion's latency; the price is that it scores only
        what the gaps between requests allow, the rest is dropped and counted. A request
        marked as served for more than 5 s is taken for one whose end was never marked.
        The batch's copy into shared memory waits as well: ``submit`` keeps a reference and a
        thread of the serving process copies it between requests (without the interpreter
        lock), so do not modify an array in place after mirroring it. A batch accepted then
        that finds no room when it is copied is dropped and counted.
    slice_ms
        With ``defer``: how long one slice of the challenger's work should last, learnt from
        its rows per second. A request arriving mid-slice waits for the CPU's caches at most
        that long; smaller slices cost the challenger more calls.

    Examples
    --------
    >>> class Recorder:
    ...     def __init__(self): self.rows = []
    ...     def log_batch(self, model, **cols): self.rows.append((model, list(cols["ids"])))
    >>> rec = Recorder()
    >>> shadow = Shadow(lambda x: np.asarray(x) * 0.5, rec, "fraud", "v2", mode="thread")
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
        mode: Mode = "auto",
        threads: int = 1,
        niceness: int = 10,
        max_restarts: int = 3,
        buffer_mb: float = 64.0,
        idle: bool = False,
        cpus: Iterable[int] | None = None,
        coalesce_rows: int = 256,
        defer: bool = False,
        slice_ms: float = 1.0,
    ) -> None:
        if not callable(challenger):
            raise TypeError("challenger: expected a callable")
        if not hasattr(client, "log_batch"):
            raise TypeError("client: expected an object with log_batch (a Client or LocalClient)")
        if isinstance(queue_size, bool) or not 1 <= int(queue_size) <= 1_000_000:
            raise ValueError(f"queue_size must be in [1, 1000000], got {queue_size}")
        if not isinstance(version, str) or not version:
            raise ValueError(f"version: expected a non-empty string, got {version!r}")
        if not isinstance(model, str) or not model:
            raise ValueError(f"model: expected a non-empty name, got {model!r}")
        if mode not in ("auto", "process", "thread"):
            raise ValueError(f"mode: {mode!r} is not one of auto, process, thread")
        if isinstance(threads, bool) or not 1 <= int(threads) <= 256:
            raise ValueError(f"threads must be in [1, 256], got {threads}")
        if isinstance(niceness, bool) or not 0 <= int(niceness) <= 19:
            raise ValueError(f"niceness must be in [0, 19], got {niceness}")
        if isinstance(max_restarts, bool) or not 0 <= int(max_restarts) <= 1000:
            raise ValueError(f"max_restarts must be in [0, 1000], got {max_restarts}")
        if isinstance(buffer_mb, bool) or not 0.01 <= float(buffer_mb) <= 16384:
            raise ValueError(f"buffer_mb must be in [0.01, 16384], got {buffer_mb}")
        if not isinstance(idle, bool):
            raise TypeError(f"idle: expected True or False, got {idle!r}")
        if isinstance(coalesce_rows, bool) or not 1 <= int(coalesce_rows) <= 1_000_000:
            raise ValueError(f"coalesce_rows must be in [1, 1000000], got {coalesce_rows}")
        if not isinstance(defer, bool):
            raise TypeError(f"defer: expected True or False, got {defer!r}")
        if isinstance(slice_ms, bool) or not 0.01 <= float(slice_ms) <= 10_000:
            raise ValueError(f"slice_ms must be in [0.01, 10000], got {slice_ms}")
        self.challenger = challenger
        self.client = client
        self.model = model
        self.version = version
        self.queue_size = queue_size
        self.log_as = log_as
        self.threads = threads
        self.niceness = niceness
        self.max_restarts = max_restarts
        self.buffer_mb = buffer_mb
        self.idle = idle
        self.cpus = _check_cpus(cpus)
        self.coalesce_rows = coalesce_rows
        self.defer = defer
        self.slice_ms = float(slice_ms)
        self._lock = threading.Lock()
        self._submitted = self._dropped = self._scored = self._failed = 0
        self._accepted = self._accepted_batches = self._lost = self._lost_batches = 0
        self._crashes = 0
        self._last_error: BaseException | None = None
        self._closed = False
        self._dead = False
        self._name = log_as or shadow_model(model)
        self.mode: str = self._choose(mode)
        self._fast = self.mode == "process"
        if self.mode == "thread" and (idle or defer or self.cpus is not None):
            _log.warning("watchkeeper shadow of %r: idle, defer and cpus apply to the "
                         "challenger's own process; in thread mode they are ignored",
                         model)  # fmt: skip
        self._deferring = defer and self.mode == "process"
        if self.mode == "thread":
            self._queue: Any = queue.Queue(maxsize=int(queue_size))
            self._thread = threading.Thread(
                target=self._work, name="watchkeeper-shadow", daemon=True
            )
            self._thread.start()
        else:
            self._start_process()

    # --- set-up -------------------------------------------------------------------------------

    def _choose(self, mode: Mode) -> str:
        if mode == "thread":
            return "thread"
        why = ""
        try:
            self._blob = pickle.dumps(self.challenger)
        except Exception as exc:
            why = (
                f"challenger: cannot be sent to the challenger's process ({exc}); pass a "
                "module-level function, a class instance or a torch module, or mode='thread'"
            )
        if not why:
            recipe, why = _client_recipe(self.client, copy=mode == "process")
            if recipe is not None:
                self._recipe = recipe
        if not why:
            return "process"
        if mode == "process":
            raise TypeError(why)
        _log.info("watchkeeper shadow of %r runs in a thread: %s", self.model, why)
        return "thread"

    def _start_process(self) -> None:
        ctx = mp.get_context("spawn")  # no fork: the serving process holds threads and locks
        self._ctx = ctx
        self._counters = ctx.RawArray("q", _N_WORDS)
        capacity = _pad(int(self.buffer_mb * 2**20))
        self._ring = _Ring(ctx.RawArray("B", capacity), self._counters, capacity)
        self._sent = 0  # records written to the ring (batches and control records)
        self._queue_limit = int(self.queue_size)
        self._layouts: dict[tuple[Any, ...], tuple[bytes, int, int]] = {}  # plain batches'
        self._words = _words(self._counters)
        pack_file, pack_bufs = io.BytesIO(), list[memoryview]()
        self._packing = (pack_file, pack_bufs, _Packer(pack_file, pack_bufs))
        self._error: Any = ctx.Array("c", 2048)
        self._error_seen = b""
        self._flush_token = 0
        self._generation = 0
        # defer: the serving thread only queues a reference to the batch; a copier thread copies
        # it into the ring between requests, and is then the ring's only writer
        self._ring_lock = threading.Lock()  # the copier's record against a restart (_spawn)
        self._later: collections.deque[tuple[Any, ...]] = collections.deque()
        self._later_ready = threading.Event()  # set when there is work and nothing is served
        self._not_serving = threading.Event()  # set while no request is marked as served
        self._not_serving.set()
        self._copier_gone = False  # close(): the child is gone, stop waiting for room
        self._in_ring: tuple[Any, ...] | None = None  # the copier's entry, written, not popped
        self._spawn()
        self._wake_r, self._wake_w = os.pipe()  # close() wakes the watchdog through it
        self._watchdog = threading.Thread(
            target=self._watch, name="watchkeeper-shadow-watchdog", daemon=True
        )
        self._watchdog.start()
        if self._deferring:
            self._copier = threading.Thread(
                target=self._copy_later, name="watchkeeper-shadow-copier", daemon=True
            )
            self._copier.start()

    def _spawn(self) -> None:
        ctx = self._ctx
        # a new child starts where the writer stands: what the dead one left is lost (counted)
        self._counters[_READ] = self._ring.written
        self._counters[_TAKEN] = self._sent
        proc = ctx.Process(
            target=_child_main,
            name=f"watchkeeper-shadow-{self.model}",
            args=(
                self._blob,
                self._recipe,
                self._name,
                self.version,
                self._ring,
                self._counters,
                self._error,
                int(self.threads),
                int(self.niceness),
                self.idle,
                self.cpus,
                int(self.coalesce_rows),
                self.slice_ms / 1000.0 if self.defer else None,
            ),
            daemon=True,
        )
        proc.start()
        self._process = proc
        self._generation += 1

    def _watch(self) -> None:
        """Reap a dead child, count what it lost, start another (off the serving thread).

        It sleeps in ``select`` on the child's sentinel, without the interpreter lock, and
        wakes only when the child dies or the shadow closes: in steady state the serving
        process runs no other Python thread.
        """
        from multiprocessing.connection import wait

        while True:
            ready = wait([self._process.sentinel, self._wake_r])
            if self._wake_r in ready:
                return
            self._check_child()
            if self._dead:
                return

    def _check_child(self) -> None:
        proc = self._process
        if self._dead or proc.is_alive():
            return
        # the ring's lock first, as the copier (defer) takes it: it may hold it while it waits
        # for a request to end, and the serving thread must keep self._lock meanwhile
        with self._ring_lock, self._lock:
            if self._closed or self._dead or proc is not self._process:
                return
            self._crashes += 1
            code = proc.exitcode
            how = f"signal {-code}" if code is not None and code < 0 else f"exit code {code}"
            detail = self._read_error()
            self._error_seen = detail.encode()
            tail = f"; last error: {detail}" if detail else ""
            self._last_error = RuntimeError(f"the challenger's process died ({how}){tail}")
            _log.error("watchkeeper shadow of %r: %s", self.model, self._last_error)
            dead = self._crashes > self.max_restarts
            # what the dead child did not score is lost, except (defer) the batches still
            # waiting for the copier, which go to the next child
            waiting = [e for e in self._later if e is not self._in_ring
                       and e[0] in ("pair", "batch")] if not dead else []  # fmt: skip
            c = self._counters
            self._lost = (self._accepted - int(c[_SCORED]) - int(c[_FAILED])
                          - sum(e[-1] for e in waiting))  # fmt: skip
            self._lost_batches = self._accepted_batches - int(c[_DONE]) - len(waiting)
            if dead:
                self._dead = True  # the copier discards what waits (counted lost here)
                return
            self._spawn()

    def _read_error(self) -> str:
        with self._error.get_lock():
            raw = bytes(self._error.value)
        return raw.decode(errors="replace")

    def _put_record(self, item: Any, *, check_queue: bool) -> bool:
        """Write one record to the ring for the child (under ``self._lock``)."""
        if check_queue and self._sent - int(self._counters[_TAKEN]) >= int(self.queue_size):
            return False
        # one pickler for every record (a new one per batch costs more than the pickling)
        file, bufs, packer = self._packing
        try:
            file.seek(0)
            file.truncate()
            packer.clear_memo()
            packer.dump(item)
            meta = file.getvalue()
            written = self._ring.put(meta, bufs)
        except Exception as exc:  # an unpicklable column: dropped and reported, never raised
            self._last_error = exc
            return False
        finally:
            bufs.clear()  # no reference to the caller's arrays is kept
        if not written:
            return False
        self._sent += 1
        self._counters[_SENT] = self._sent  # after the record: the child reads it then
        return True

    def _put_pair(
        self, ids: Any, inputs: Any, between: Callable[[], None] | None = None
    ) -> bool | None:
        """The usual batch, ids and inputs as plain arrays and no column (under ``self._lock``):
        a prefix cached per dtypes and shapes, two ``memcpy`` into the ring and a counter bump;
        ``None`` when the batch is not one (it goes through the pickler)."""
        if type(ids) is list:
            ids = np.array(ids, dtype=object)  # converted below, as the child would
        if ids.dtype.kind == "O":
            # ids as objects (from pandas, the torch hook): the child logs them as strings
            # anyway, and fixed-width strings are copied where objects would be pickled
            try:
                ids = ids.astype(str)
            except (TypeError, ValueError):
                return None
        key = (ids.dtype, ids.shape, inputs.dtype, inputs.shape)
        layout = self._layouts.get(key)
        if layout is None:
            if not (_raw(ids) and _raw(inputs)):
                return None
            if len(self._layouts) >= 256:  # many shapes: keep the cache small
                self._layouts.clear()
            meta = pickle.dumps(("raw", ids.dtype.str, ids.shape, inputs.dtype.str, inputs.shape))
            layout = self._layouts[key] = _pair_layout(meta, ids.nbytes, inputs.nbytes)
        try:  # a cast refuses an array that is not C-contiguous: the pickler copies it
            input_bytes = memoryview(inputs).cast("B")
            # a few kB of ids: a copy is cheaper than exporting a buffer of strings
            ids_bytes = ids.tobytes() if ids.nbytes <= 4096 else memoryview(ids).cast("B")
        except (TypeError, ValueError):
            return None
        words = self._words
        if self._sent - words[_TAKEN] >= self._queue_limit:
            return False
        if not self._ring.put_pair(*layout, ids_bytes, input_bytes, between):
            return False
        self._sent += 1
        words[_SENT] = self._sent  # after the record: the child reads it then
        return True

    def _defer_record(self, entry: tuple[Any, ...]) -> None:
        """Queue a record for the copier (under ``self._lock``); while a request is served the
        copier is left asleep (waking it would take the interpreter lock from the serving
        thread), and :meth:`end_serving` wakes it."""
        self._later.append(entry)
        if self._words[_SERVING] <= 0:
            self._later_ready.set()

    def _until_idle(self) -> None:
        """The copier's wait (asleep, not polling) until no request is marked as served, or
        the one marked went stale."""
        words = self._words
        while words[_SERVING] > 0:
            left = (_DEFER_STALE_NS - (time.monotonic_ns() - words[_SERVING_SINCE])) / 1e9
            if left <= 0:
                return
            self._not_serving.wait(left)

    def _copy_later(self) -> None:
        """The copier (``defer``): write the queued records into the ring, between requests.

        A batch is copied in chunks, each after a look at the serving mark (see
        :meth:`_Ring.put_pair`); a batch that finds no room is dropped and counted; a control
        record (flush, stop) waits for room.
        """
        idle = self._until_idle
        while True:
            self._later_ready.wait()
            self._later_ready.clear()
            while True:
                with self._lock:
                    if not self._later:
                        break
                    entry = self._later[0]
                if entry is _STOP_COPIER:
                    return
                if self._copier_gone:  # closed with the child gone: the rest is lost
                    with self._lock:
                        for left in self._later:
                            if left[0] in ("pair", "batch"):
                                self._dropped += left[-1]
                                self._accepted -= left[-1]
                                self._accepted_batches -= 1
                        self._later.clear()
                    return
                idle()
                kind, n = entry[0], entry[-1]
                if self._dead:  # no child any more: what waits was counted lost
                    with self._lock:
                        self._later.popleft()
                    continue
                with self._ring_lock:
                    if kind == "pair":
                        written = self._put_pair(entry[1], entry[2], idle)
                        if written is None:  # not the usual batch after all: the pickler
                            written = self._put_record(("batch", entry[1], entry[2], {}),
                                                       check_queue=True)  # fmt: skip
                    else:
                        written = self._put_record(entry[1], check_queue=kind == "batch")
                    # in the ring, not yet off the queue: a restart must not count it as waiting
                    self._in_ring = entry if written else None
                if not written and kind == "control" and not self._copier_gone:
                    time.sleep(0.001)  # the ring is full: the child is making room
                    continue
                with self._lock:
                    self._later.popleft()
                    self._in_ring = None
                    if not written:
                        self._dropped += n
                        self._accepted -= n
                        self._accepted_batches -= 1

    # --- serving side -------------------------------------------------------------------------

    @property
    def last_error(self) -> BaseException | None:
        """The last error of the challenger or its client (in process mode, as reported)."""
        if self.mode == "process":
            text = self._read_error()
            if text and text != self._error_seen.decode(errors="replace"):
                self._error_seen = text.encode()
                with self._lock:
                    self._last_error = RuntimeError(f"in the challenger's process: {text}")
        return self._last_error

    @property
    def stats(self) -> ShadowStats:
        """The counters so far."""
        if self.mode == "thread":
            with self._lock:
                return ShadowStats(
                    self._submitted, self._dropped, self._scored, self._failed,
                    self._queue.qsize(),
                )  # fmt: skip
        with self._lock:
            c = self._counters
            done = int(c[_DONE]) + self._lost_batches
            return ShadowStats(
                submitted=self._submitted,
                dropped=self._dropped,
                scored=int(c[_SCORED]),
                failed=int(c[_FAILED]),
                queued=max(self._accepted_batches - done, 0),
                lost=self._lost,
                crashes=self._crashes,
            )

    def submit(self, ids: Any, inputs: Any, **columns: Any) -> bool:
        """Mirror one served batch; returns at once, ``False`` when it was dropped.

        ``columns`` are logged with the challenger's events as they are (``features``,
        ``tags``, ``ts``...), so both sides of a pair can carry the same segment tags. In process
        mode the batch is copied before the call returns; in thread mode, and in process mode
        with ``defer``, it is read later, by reference: do not modify it in place after
        mirroring it.
        """
        if self._closed:
            raise RuntimeError("the shadow is closed")
        if self._deferring:  # a reference now, the copy between requests (the copier's)
            n = _count(ids)
            fast = not columns and type(inputs) is np.ndarray and type(ids) in _ID_TYPES
            with self._lock:
                self._submitted += n
                queued = self._sent - self._words[_TAKEN] + len(self._later)
                if self._dead or queued >= self._queue_limit:
                    self._dropped += n
                    return False
                if fast:
                    self._defer_record(("pair", list(ids) if type(ids) is list else ids, inputs, n))
                else:
                    self._defer_record(("batch", ("batch", ids, inputs, columns), n))
                self._accepted += n
                self._accepted_batches += 1
            return True
        if self._fast and not columns and type(inputs) is np.ndarray and type(ids) in _ID_TYPES:
            with self._lock:  # process mode's usual batch: as few steps as possible
                if not self._dead:
                    written = self._put_pair(ids, inputs)
                    if written is not None:
                        n = _count(ids)
                        self._submitted += n
                        if written:
                            self._accepted += n
                            self._accepted_batches += 1
                        else:
                            self._dropped += n
                        return written
        n = _count(ids)
        with self._lock:
            self._submitted += n
            if self._dead:
                self._dropped += n
                return False
            if self.mode == "thread":
                try:
                    self._queue.put_nowait((ids, inputs, columns))
                except queue.Full:
                    self._dropped += n
                    return False
            else:
                # not the usual batch (see above): through the pickler
                if not self._put_record(("batch", ids, inputs, columns), check_queue=True):
                    self._dropped += n
                    return False
            self._accepted += n
            self._accepted_batches += 1
        return True

    def wrap(self, champion: Callable[[Any], Any]) -> Callable[[Any, Any], Any]:
        """``serve(ids, inputs)``: the champion's answer; the request is mirrored to the shadow
        (and marked as served, for ``defer``)."""

        def serve(ids: Any, inputs: Any) -> Any:
            with self.serving():
                out = champion(inputs)
                self.submit(ids, inputs)
            return out

        return serve

    def begin_serving(self) -> None:
        """Mark that a request is being served (``defer``: the challenger waits); pair every
        call with :meth:`end_serving`, or use :meth:`serving`. Free without ``defer``."""
        if not self._deferring:
            return
        with self._lock:
            words = self._words
            if words[_SERVING] <= 0:
                words[_SERVING_SINCE] = time.monotonic_ns()
                words[_SERVING] = 1
                self._not_serving.clear()
            else:
                words[_SERVING] += 1

    def end_serving(self) -> None:
        """Mark the end of a request :meth:`begin_serving` marked."""
        if not self._deferring:
            return
        with self._lock:
            words = self._words
            words[_SERVING] = max(words[_SERVING] - 1, 0)
            if words[_SERVING] == 0:
                self._not_serving.set()
                if self._later:
                    self._later_ready.set()

    @contextlib.contextmanager
    def serving(self) -> Iterator[None]:
        """``with shadow.serving(): champion(x)``: the champion's call marked as serving."""
        self.begin_serving()
        try:
            yield
        finally:
            self.end_serving()

    # --- thread mode --------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                self._queue.task_done()
                return
            ids, inputs, columns = item
            try:
                n = _score_and_log(self.challenger, self.client, self._name, self.version, ids,
                                   inputs, columns)  # fmt: skip
                with self._lock:
                    self._scored += n
            except Exception as exc:  # a failing challenger must not stop the shadow
                with self._lock:
                    self._last_error = exc
                    self._failed += _count(ids)
            finally:
                self._queue.task_done()

    # --- shutdown -----------------------------------------------------------------------------

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every accepted request is scored and logged (and, in process mode, the
        child's client has sent them); ``False`` on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout

        def left() -> float | None:
            return None if deadline is None else max(deadline - time.monotonic(), 0.0)

        if self.mode == "thread":
            while self._queue.unfinished_tasks:
                if deadline is not None and time.monotonic() > deadline:
                    return False
                time.sleep(0.005)
            return True
        while True:
            if self._dead:
                return True  # nothing more will be scored
            with self._lock:
                self._flush_token += 1
                token, generation = self._flush_token, self._generation
                if self._deferring:  # after the batches before it, by the copier
                    self._defer_record(("control", ("flush", token, left()), 0))
                    written = True
                else:
                    written = self._put_record(("flush", token, left()), check_queue=False)
            if not written:  # the ring is full: wait for the child to make room
                self._check_child()
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                time.sleep(0.01)
                continue
            pause = 0.002
            while int(self._counters[_ACK]) < token:
                self._check_child()
                if self._dead or self._generation != generation:
                    break  # the child died with our marker: ask its successor
                if deadline is not None and time.monotonic() > deadline:
                    return False
                time.sleep(pause)
                pause = min(pause * 1.5, 0.05)
            else:
                return True

    def close(self, timeout: float | None = 10.0) -> None:
        """Score what is queued (up to ``timeout`` seconds), then stop the thread or the child;
        a child that does not stop in time is terminated, and every child is reaped."""
        if self._closed:
            return
        if self.mode == "thread":
            self._closed = True
            self._queue.put(_STOP)
            self._thread.join(timeout)
            return
        os.write(self._wake_w, b"x")
        self._watchdog.join()
        os.close(self._wake_r)
        os.close(self._wake_w)
        self._check_child()
        with self._lock:
            self._closed = True
        proc = self._process
        end = None if timeout is None else time.monotonic() + timeout
        if self._deferring:  # the stop record after what waits for the copier
            with self._lock:
                self._defer_record(("control", None, 0))
                self._defer_record(_STOP_COPIER)
            self._copier.join(None if end is None else max(end - time.monotonic(), 0.0))
        while proc.is_alive() and not self._deferring:
            with self._lock:
                stopped = self._put_record(None, check_queue=False)
            if stopped or (end is not None and time.monotonic() > end):
                break
            time.sleep(0.01)  # the ring is full: the child is making room
        if proc.is_alive():
            proc.join(None if end is None else max(end - time.monotonic(), 0.0))
        if proc.is_alive():
            proc.terminate()
            proc.join(5)
        if proc.is_alive():  # pragma: no cover - ignores SIGTERM
            proc.kill()
            proc.join()
        if self._deferring and self._copier.is_alive():
            self._copier_gone = True  # the child is gone: what the copier still holds is lost
            self._later_ready.set()
            self._copier.join(5)

    @property
    def pid(self) -> int | None:
        """The challenger's process id (process mode), else ``None``."""
        return None if self.mode == "thread" else self._process.pid

    def __enter__(self) -> Shadow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
