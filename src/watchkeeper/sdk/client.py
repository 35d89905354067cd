"""``Client`` (over HTTP, in the background) and ``LocalClient`` (straight into a store).

Both have the same methods, so code written against one runs against the other.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from watchkeeper.sdk import _columns
from watchkeeper.sdk._spool import Outgoing, Spool
from watchkeeper.sdk.environment import serving_environment

log = logging.getLogger("watchkeeper.sdk")

_OK, _RETRY, _REJECTED = "ok", "retry", "rejected"


def _check_model(model: object) -> str:
    if not isinstance(model, str) or not model:
        raise ValueError(f"model: expected a non-empty string, got {model!r}")
    return model


def _row(
    id: object,
    features: Mapping[str, Any] | None,
    score: Any,
    probs: Any,
    predicted: Any,
    embedding: Any,
    latency_ms: Any,
    tags: Mapping[str, Any] | None,
    version: Any,
    ts: Any,
    payload_ref: Any,
) -> dict[str, Any]:
    """One event checked and normalised at the call (cheap), so errors surface where made."""
    if id is None or id == "":
        raise ValueError("id: every event needs a non-empty id")
    if isinstance(score, bool | np.bool_):
        raise ValueError(f"score: expected a number, got {score!r}")
    if score is not None:
        try:
            score = float(score)
        except (TypeError, ValueError):
            raise ValueError(f"score: expected a number, got {score!r}") from None
    if latency_ms is not None:
        try:
            latency_ms = float(latency_ms)
        except (TypeError, ValueError):
            raise ValueError(f"latency_ms: expected a number, got {latency_ms!r}") from None
    if features is not None:
        if not isinstance(features, Mapping):
            raise ValueError(f"features: expected a mapping of name to value, got {type(features)}")
        for name, value in features.items():
            if value is None or isinstance(value, str):
                continue
            if not isinstance(value, int | float | np.number):
                raise ValueError(
                    f"features.{name}: expected a number, a string or None, got {type(value)}"
                )
            if math.isinf(value):
                raise ValueError(f"features.{name}: infinite value")
    if embedding is not None:
        embedding = np.asarray(embedding, dtype=np.float32).reshape(-1)
        if embedding.size == 0 or np.isinf(embedding).any():
            raise ValueError("embedding: expected a non-empty vector of finite numbers")
    if tags is not None and not isinstance(tags, Mapping):
        raise ValueError(f"tags: expected a mapping of name to value, got {type(tags)}")
    if ts is None:
        ts = time.time()
    elif hasattr(ts, "timestamp"):
        ts = float(ts.timestamp())
    return {
        "id": str(id),
        "ts": float(ts),
        "features": features,
        "score": score,
        "probs": None if probs is None else [float(p) for p in probs],
        "predicted": predicted,
        "embedding": embedding,
        "latency_ms": latency_ms,
        "tags": tags,
        "version": version,
        "payload_ref": payload_ref,
    }


class _Buffer:
    """Events and labels waiting to be written, per model, in arrival order."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = {}
        self.cols: dict[str, list[_columns.Columns]] = {}
        self.labels: dict[str, list[tuple[list[Any], list[Any]]]] = {}
        self.events = 0

    def take(self) -> _Buffer:
        out = _Buffer()
        out.rows, out.cols, out.labels, out.events = self.rows, self.cols, self.labels, self.events
        self.rows, self.cols, self.labels, self.events = {}, {}, {}, 0
        return out

    def empty(self) -> bool:
        return not (self.rows or self.cols or self.labels)

    def event_columns(self, batch_size: int) -> list[tuple[str, _columns.Columns]]:
        """Every model's events merged where possible and cut into batches."""
        out: list[tuple[str, _columns.Columns]] = []
        for model in list(dict.fromkeys([*self.cols, *self.rows])):
            parts = list(self.cols.get(model, []))
            if self.rows.get(model):
                parts.append(_columns.from_rows(self.rows[model]))
            groups: list[list[_columns.Columns]] = []
            shape: dict[str, Any] = {}
            for part in parts:
                if groups and _columns.mergeable(shape, part):
                    groups[-1].append(part)
                    shape.update(_columns.signature(part))
                else:
                    groups.append([part])
                    shape = _columns.signature(part)
            for group in groups:
                merged = _columns.concat(group)
                out += [(model, c) for c in _columns.split(merged, batch_size)]
        return out

    def label_batches(self, batch_size: int) -> list[tuple[str, list[Any], list[Any]]]:
        out = []
        for model, parts in self.labels.items():
            ids = [i for p in parts for i in p[0]]
            labels = [v for p in parts for v in p[1]]
            for start in range(0, len(ids), batch_size):
                out.append(
                    (model, ids[start : start + batch_size], labels[start : start + batch_size])
                )
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


class _Logger:
    """What both clients share: argument checks and buffering."""

    batch_size: int

    def __init__(self) -> None:
        self._lock = threading.Condition()
        self._buffer = _Buffer()
        self._widths: dict[tuple[str, str], int] = {}
        self._digests: dict[str, str] = {}

    def report_model_digest(self, version: str, digest: str) -> None:
        """Send the artifact digest of the model version actually serving with every batch
        (``watchkeeper.registry.load_version(...).digest``); the server compares it with the
        registered one and a mismatch becomes an integrity finding and alert."""
        if not isinstance(version, str) or not version:
            raise ValueError(f"version: expected a non-empty string, got {version!r}")
        if not isinstance(digest, str) or len(digest) != 64:
            raise ValueError(f"digest: expected 64 hex digits, got {digest!r}")
        with self._lock:
            self._digests[version] = digest.lower()

    def _environment(self, env: dict[str, Any]) -> dict[str, Any]:
        """The serving environment with the reported model digests, if any."""
        return {**env, "model_digests": dict(self._digests)} if self._digests else env

    def _check_width(self, model: str, what: str, width: int) -> None:
        # A model's embeddings (and class probabilities) keep one width; say so at the call
        # rather than have the server refuse a whole batch later.
        first = self._widths.setdefault((model, what), width)
        if width != first:
            raise ValueError(
                f"{what}: {width} values, but earlier events of model '{model}' had {first}"
            )

    def _enqueue_rows(self, model: str, row: dict[str, Any]) -> None:
        raise NotImplementedError

    def _enqueue_cols(self, model: str, cols: _columns.Columns) -> None:
        raise NotImplementedError

    def _enqueue_labels(self, model: str, ids: list[Any], labels: list[Any]) -> None:
        raise NotImplementedError

    def log(
        self,
        model: str,
        *,
        id: object,
        features: Mapping[str, Any] | None = None,
        score: float | None = None,
        probs: Any = None,
        predicted: Any = None,
        embedding: Any = None,
        latency_ms: float | None = None,
        tags: Mapping[str, Any] | None = None,
        version: str | None = None,
        ts: Any = None,
        payload_ref: str | None = None,
    ) -> None:
        """Record one prediction; returns at once.

        Parameters
        ----------
        model
            Registered model name.
        id
            Request id; with ``model`` it makes the event idempotent.
        features
            Named scalars (numbers or categories).
        score, probs, predicted
            Positive-class score, class probabilities, predicted label.
        embedding
            A float vector (e.g. a penultimate-layer activation).
        latency_ms
            Model latency in milliseconds.
        tags
            Segment dimensions, e.g. ``{"country": "FR"}``.
        version
            Model version.
        ts
            Event time (epoch seconds or ``datetime``); default now.
        payload_ref
            Where the raw input can be viewed.
        """
        row = _row(
            id, features, score, probs, predicted, embedding, latency_ms, tags, version, ts,
            payload_ref,
        )  # fmt: skip
        model = _check_model(model)
        if row["embedding"] is not None:
            self._check_width(model, "embedding", len(row["embedding"]))
        if row["probs"] is not None:
            self._check_width(model, "probs", len(row["probs"]))
        self._enqueue_rows(model, row)

    def log_batch(
        self,
        model: str,
        *,
        ids: Any,
        features: Any = None,
        scores: Any = None,
        probs: Any = None,
        predicted: Any = None,
        embeddings: Any = None,
        latency_ms: Any = None,
        tags: Any = None,
        version: Any = None,
        ts: Any = None,
        payload_refs: Any = None,
    ) -> None:
        """Record many predictions at once (arrays, lists, a DataFrame of features).

        Every argument holds one entry per id (``version`` and ``ts`` may be a single value).
        A :class:`ValueError` names the field whose length or type is wrong.
        """
        cols = _columns.build(
            ids=ids, ts=ts, features=features, scores=scores, probs=probs, predicted=predicted,
            embeddings=embeddings, latency_ms=latency_ms, tags=tags, version=version,
            payload_refs=payload_refs,
        )  # fmt: skip
        model = _check_model(model)
        if "embeddings" in cols:
            self._check_width(model, "embedding", cols["embeddings"].shape[1])
        if "probs" in cols:
            self._check_width(model, "probs", cols["probs"].shape[1])
        if _columns.length(cols):
            self._enqueue_cols(model, cols)

    def log_labels(self, model: str, ids: Any, labels: Any) -> None:
        """Record ground truth for earlier (or later) events, joined by id."""
        id_list = [str(i) for i in np.asarray(ids, dtype=object).tolist()]
        label_list = [_plain(v) for v in np.asarray(labels, dtype=object).tolist()]
        if len(id_list) != len(label_list):
            raise ValueError(f"labels: {len(label_list)} values, but {len(id_list)} ids")
        if any(i == "" for i in id_list):
            raise ValueError("ids: every label needs a non-empty id")
        for i, v in enumerate(label_list):
            if v is None or (isinstance(v, float) and not math.isfinite(v)):
                raise ValueError(f"labels[{i}]: a label is required, got {v!r}")
        if id_list:
            self._enqueue_labels(_check_model(model), id_list, label_list)

    def __enter__(self) -> _Logger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def flush(self, timeout: float | None = None) -> bool:
        raise NotImplementedError

    def close(self, timeout: float | None = None) -> bool:
        raise NotImplementedError


def default_spool_dir() -> Path:
    """``$WATCHKEEPER_SPOOL_DIR``, else ``~/.cache/watchkeeper/spool``."""
    env = os.environ.get("WATCHKEEPER_SPOOL_DIR")
    return Path(env) if env else Path.home() / ".cache" / "watchkeeper" / "spool"


class Client(_Logger):
    """Send predictions and labels to a Watchkeeper server without slowing the caller.

    ``log``/``log_batch``/``log_labels`` only append to an in-memory buffer. A background thread
    turns the buffer into columnar batches of at most ``batch_size`` events every
    ``flush_interval`` seconds (sooner when a batch is full) and sends them. When the server
    cannot be reached (connection error, timeout, 5xx, 429) the batch goes to an append-only
    spool file and is retried with exponential back-off and jitter; while anything is spooled,
    new batches queue behind it, so delivery stays in order. A batch the server refuses for good
    (4xx) is written to ``rejected-*.jsonl`` beside the spool and logged. Each batch carries
    the serving environment (Python and package versions) and a system snapshot.

    Parameters
    ----------
    url
        Server base URL, e.g. ``http://127.0.0.1:8000``.
    token
        An API token with the ``ingest`` scope.
    spool_dir
        Where unsent batches wait; default :func:`default_spool_dir`.
    batch_size
        Most events per request.
    flush_interval
        Seconds between sends of a partly filled buffer.
    timeout
        Seconds to wait for one HTTP reply.
    retry_base, retry_max
        First and largest back-off delay, in seconds.
    max_queue
        Most events held in memory; beyond it ``log`` drops events (counted in ``stats``)
        rather than block the model.
    exit_timeout
        How long the exit hook waits for delivery before leaving the rest in the spool.
    system_metrics
        Send a CPU/memory/GPU snapshot with each batch.

    Examples
    --------
    >>> wk = Client("http://127.0.0.1:8000", token="...")  # doctest: +SKIP
    >>> wk.log("doc-fraud", id="req-1", score=0.91, features={"brightness": 0.42})  # doctest: +SKIP
    >>> wk.flush(timeout=10)  # doctest: +SKIP
    True
    """

    def __init__(
        self,
        url: str,
        token: str,
        *,
        spool_dir: str | os.PathLike[str] | None = None,
        batch_size: int = 1000,
        flush_interval: float = 1.0,
        timeout: float = 10.0,
        retry_base: float = 0.5,
        retry_max: float = 30.0,
        max_queue: int = 1_000_000,
        exit_timeout: float = 10.0,
        system_metrics: bool = True,
    ) -> None:
        super().__init__()
        self.url = url
        self.token = token
        self.spool_dir = spool_dir
        self.batch_size = batch_size
        self.flush_interval = flush_interval
        self.timeout = timeout
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.max_queue = max_queue
        self.exit_timeout = exit_timeout
        self.system_metrics = system_metrics
        self.stats: dict[str, int] = dict.fromkeys(
            ("accepted", "duplicates", "sent_batches", "spooled_events", "rejected_events",
             "dropped_events", "retries"),
            0,
        )  # fmt: skip
        self.last_error: str | None = None
        self._thread: threading.Thread | None = None
        self._spool: Spool | None = None
        self._busy = False
        self._flush_now = False
        self._closing = False
        self._closed = False
        self._attempts = 0
        self._next_try = 0.0
        self._env: dict[str, Any] | None = None
        self._system: tuple[float, dict[str, float]] = (0.0, {})
        self._max_batch = batch_size

    # -- start ---------------------------------------------------------------------------------

    def _validate(self) -> None:
        if not isinstance(self.url, str) or not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url: expected http(s)://host:port, got {self.url!r}")
        if not isinstance(self.token, str) or not self.token:
            raise ValueError("token: expected a non-empty API token")
        if not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size: expected a positive integer, got {self.batch_size!r}")
        for name in ("flush_interval", "timeout", "retry_base", "retry_max"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or value <= 0:
                raise ValueError(f"{name}: expected a positive number, got {value!r}")

    def _ensure_started(self) -> None:
        # called with self._lock held
        if self._thread is not None:
            return
        if self._closed:
            raise RuntimeError("this Client is closed")
        self._validate()
        spool = Spool(Path(self.spool_dir or default_spool_dir()), self.url)
        spool.open()
        self._spool = spool
        self._thread = threading.Thread(target=self._run, name="watchkeeper-sdk", daemon=True)
        self._thread.start()
        atexit.register(self._at_exit)

    # -- enqueue -------------------------------------------------------------------------------

    def _admit(self, n: int) -> bool:
        if self._buffer.events + n > self.max_queue:
            self.stats["dropped_events"] += n
            log.warning("watchkeeper: buffer full (%d events); dropping %d", self.max_queue, n)
            return False
        self._buffer.events += n
        if self._buffer.events >= self.batch_size:
            self._lock.notify_all()
        return True

    def _enqueue_rows(self, model: str, row: dict[str, Any]) -> None:
        with self._lock:
            self._ensure_started()
            if self._admit(1):
                self._buffer.rows.setdefault(model, []).append(row)

    def _enqueue_cols(self, model: str, cols: _columns.Columns) -> None:
        with self._lock:
            self._ensure_started()
            if self._admit(_columns.length(cols)):
                self._buffer.cols.setdefault(model, []).append(cols)

    def _enqueue_labels(self, model: str, ids: list[Any], labels: list[Any]) -> None:
        with self._lock:
            self._ensure_started()
            self._buffer.labels.setdefault(model, []).append((ids, labels))
            self._lock.notify_all()

    # -- the sender thread ---------------------------------------------------------------------

    def _header(self) -> dict[str, Any]:
        if self._env is None:
            self._env = serving_environment()
        out: dict[str, Any] = {"environment": self._environment(self._env)}
        if self.system_metrics:
            now = time.monotonic()
            if now - self._system[0] > 5.0:
                from watchkeeper.system import snapshot

                try:
                    self._system = (now, snapshot())
                except Exception:  # system figures are a nicety; never let them stop delivery
                    self._system = (now, {})
            if self._system[1]:
                out["system"] = self._system[1]
        return out

    def _build(self, taken: _Buffer) -> list[Outgoing]:
        out: list[Outgoing] = []
        header = self._header()
        size = min(self.batch_size, self._max_batch)
        for model, cols in taken.event_columns(size):
            body = {"columns": _columns.to_payload(cols), **header}
            raw = json.dumps(body, separators=(",", ":"), allow_nan=False).encode()
            out.append(Outgoing("events", model, _columns.length(cols), raw))
        for model, ids, labels in taken.label_batches(size):
            raw = json.dumps({"ids": ids, "labels": labels}, separators=(",", ":")).encode()
            out.append(Outgoing("labels", model, len(ids), raw))
        return out

    def _send(self, http: Any, batch: Outgoing) -> str:
        from urllib.parse import quote

        import httpx

        path = f"/v1/models/{quote(batch.model, safe='')}/{batch.kind}:batch"
        try:
            reply = http.post(path, content=batch.body)
        except httpx.HTTPError as exc:
            self.last_error = f"{type(exc).__name__}: {exc}"
            return _RETRY
        if reply.status_code < 300:
            self.stats["sent_batches"] += 1
            if batch.kind == "events":
                data = reply.json()
                self.stats["accepted"] += int(data.get("accepted", 0))
                self.stats["duplicates"] += int(data.get("duplicates", 0))
            return _OK
        self.last_error = f"HTTP {reply.status_code}: {reply.text[:500]}"
        if reply.status_code in (408, 429) or reply.status_code >= 500:
            return _RETRY
        if reply.status_code == 413 and batch.n > 1:
            return self._send_halves(http, batch)
        log.error("watchkeeper: server refused a %s batch of %s: %s", batch.kind, batch.model,
                  self.last_error)  # fmt: skip
        self._dead_letter(batch, reply.status_code, reply.text)
        return _REJECTED

    def _send_halves(self, http: Any, batch: Outgoing) -> str:
        """The server's limits are lower than this batch: send it in halves (and send smaller
        batches from now on). A half already stored is harmless to send again."""
        at = batch.n // 2
        self._max_batch = min(self._max_batch, max(at, 1))
        body = json.loads(batch.body)
        if batch.kind == "events":
            first, second = _columns.split_payload(body["columns"], at)
            halves = [{**body, "columns": first}, {**body, "columns": second}]
        else:
            halves = [{k: v[:at] for k, v in body.items()}, {k: v[at:] for k, v in body.items()}]
        for half, n in zip(halves, (at, batch.n - at), strict=True):
            raw = json.dumps(half, separators=(",", ":")).encode()
            if self._send(http, Outgoing(batch.kind, batch.model, n, raw)) == _RETRY:
                return _RETRY
        return _OK

    def _dead_letter(self, batch: Outgoing, status: int, text: str) -> None:
        assert self._spool is not None
        self.stats["rejected_events"] += batch.n
        path = self._spool.directory / f"rejected-{self._spool.key}.jsonl"
        header = json.dumps({"kind": batch.kind, "model": batch.model, "n": batch.n,
                             "status": status, "error": text[:2000]})  # fmt: skip
        with open(path, "ab") as f:
            f.write(header.encode() + b"\t" + batch.body + b"\n")

    def _backoff(self) -> float:
        cap = min(self.retry_max, self.retry_base * 2.0 ** min(self._attempts, 30))
        return cap / 2 + random.uniform(0, cap / 2)

    def _drain(self, http: Any) -> None:
        """Send spooled batches in order until one fails (then back off) or none is left."""
        assert self._spool is not None
        while not self._closing or self._flush_now:
            head = self._spool.head()
            if head is None:
                self._attempts = 0
                return
            batch, after = head
            if self._send(http, batch) == _RETRY:
                self._attempts += 1
                self.stats["retries"] += 1
                self._next_try = time.monotonic() + self._backoff()
                return
            self._spool.advance(after)

    def _due(self) -> bool:
        """Whether the sender has work now (called with the lock held)."""
        assert self._spool is not None
        if self._closing or self._buffer.events >= self.batch_size:
            return True
        if self._flush_now and not self._buffer.empty():
            return True
        return self._spool.pending() and time.monotonic() >= self._next_try

    def _run(self) -> None:
        import httpx

        assert self._spool is not None
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=self.timeout) as http:
            while True:
                with self._lock:
                    while not self._due():
                        wait = self.flush_interval
                        if self._spool.pending():
                            wait = max(0.01, min(wait, self._next_try - time.monotonic()))
                        if not self._lock.wait(wait):
                            break  # the flush interval passed: send what there is
                    taken = self._buffer.take()
                    self._busy = True
                    closing = self._closing
                try:
                    self._deliver(http, taken, closing)
                except Exception:  # the sender must survive anything; the data is spooled
                    log.exception("watchkeeper: unexpected error in the sender thread")
                    self._next_try = time.monotonic() + self._backoff()
                with self._lock:
                    self._busy = False
                    if self._buffer.empty() and not self._spool.pending():
                        self._flush_now = False
                    self._lock.notify_all()
                    if closing and self._buffer.empty():
                        return

    def _deliver(self, http: Any, taken: _Buffer, closing: bool) -> None:
        assert self._spool is not None
        batches = self._build(taken) if not taken.empty() else []
        if self._spool.pending() or (closing and not self._flush_now):
            self._spool.append(batches)
            self.stats["spooled_events"] += sum(b.n for b in batches if b.kind == "events")
        else:
            for i, batch in enumerate(batches):
                if self._send(http, batch) == _RETRY:
                    rest = batches[i:]
                    self._spool.append(rest)
                    self.stats["spooled_events"] += sum(b.n for b in rest if b.kind == "events")
                    self._attempts = 1
                    self.stats["retries"] += 1
                    self._next_try = time.monotonic() + self._backoff()
                    break
        if self._spool.pending() and time.monotonic() >= self._next_try and not closing:
            self._drain(http)

    # -- public control ------------------------------------------------------------------------

    def pending(self) -> int:
        """Events not yet acknowledged: in memory plus in the spool."""
        with self._lock:
            held = self._buffer.events
        return held + (self._spool.pending_events() if self._spool is not None else 0)

    def put_payload(self, data: bytes, media_type: str = "image/jpeg") -> str:
        """Upload what a person needs to see of an event (a thumbnail made with
        :func:`watchkeeper.payloads.thumbnail`, or a text snippet as ``text/plain``; at most
        256 KB) and return the reference to log as the event's ``payload_ref``.

        Synchronous, unlike ``log``: a payload is sent once, before the events that name it.
        Raises ValueError for a payload the server refuses, ``httpx.HTTPError`` when it cannot
        be reached.
        """
        import httpx

        from watchkeeper.payloads import MAX_PAYLOAD_BYTES, MEDIA_TYPES

        if not isinstance(data, bytes | bytearray) or not data or len(data) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"data: expected 1 to {MAX_PAYLOAD_BYTES} bytes")
        if media_type not in MEDIA_TYPES:
            raise ValueError(f"media_type: expected one of {MEDIA_TYPES}, got {media_type!r}")
        reply = httpx.put(
            f"{self.url.rstrip('/')}/v1/payloads",
            content=bytes(data),
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": media_type},
            timeout=self.timeout,
        )
        if reply.status_code >= 400:
            raise ValueError(f"payload refused ({reply.status_code}): {reply.text[:300]}")
        return str(reply.json()["payload_ref"])

    def flush(self, timeout: float | None = None) -> bool:
        """Send everything logged so far; True once the server acknowledged all of it.

        Waits at most ``timeout`` seconds (``None``: until done). On False the rest stays
        buffered or spooled and is still delivered later.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if self._closed:
                return self._buffer.empty()
            # Starting here also replays a spool left by an earlier process.
            self._ensure_started()
            assert self._thread is not None
            self._flush_now = True
            self._next_try = min(self._next_try, time.monotonic())
            self._lock.notify_all()
            while True:
                assert self._spool is not None
                if not self._busy and self._buffer.empty() and not self._spool.pending():
                    return True
                if not self._thread.is_alive():
                    return False
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._flush_now = True
                self._lock.wait(0.05 if left is None else min(left, 0.05))

    def close(self, timeout: float | None = None) -> bool:
        """Flush (for at most ``timeout`` seconds), then stop; what is left stays spooled.

        Returns whether everything was delivered.
        """
        with self._lock:
            if self._closed or self._thread is None:
                self._closed = True
                return True
        done = self.flush(self.exit_timeout if timeout is None else timeout)
        with self._lock:
            self._closing = True
            self._flush_now = False
            self._lock.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(self.timeout + 5)
        atexit.unregister(self._at_exit)
        if self._spool is not None:
            self._spool.close()
        self._closed = True
        return done

    def _at_exit(self) -> None:
        self.close()


class LocalClient(_Logger):
    """The :class:`Client` interface writing straight into a store: no server, no thread.

    For notebooks and batch jobs. ``log`` buffers up to ``batch_size`` events per model, then
    writes them in one transaction; ``log_batch`` and ``log_labels`` write at once; ``flush``
    writes what is buffered. Unknown models are registered on first use.

    Parameters
    ----------
    db
        A database URL, an open :class:`~watchkeeper.store.Store`, or ``None`` for the
        default store (``$WATCHKEEPER_DB`` or the embedded SQLite file).
    project
        The project the events belong to (created when missing).
    batch_size
        Events of ``log`` calls buffered per model before a write.

    Examples
    --------
    >>> from watchkeeper.store import Store
    >>> store = Store("sqlite://")
    >>> with LocalClient(store, project="notebook") as wk:
    ...     wk.log_batch("fraud", ids=["a", "b"], scores=[0.2, 0.9], features={"x": [1.0, 2.0]})
    ...     wk.log("fraud", id="c", score=0.5)
    ...     wk.log_labels("fraud", ["a"], [0])
    >>> store.count_events("notebook", "fraud")
    3
    >>> store.close()
    """

    def __init__(self, db: Any = None, project: str = "default", *, batch_size: int = 1000) -> None:
        super().__init__()
        self.db = db
        self.project = project
        self.batch_size = batch_size
        self._store: Any = None
        self._owns_store = False
        self._models: set[str] = set()
        self._env: dict[str, Any] | None = None

    @property
    def store(self) -> Any:
        """The store written to (opened on first use)."""
        with self._lock:
            if self._store is None:
                if not isinstance(self.project, str) or not self.project:
                    raise ValueError(f"project: expected a non-empty name, got {self.project!r}")
                if not isinstance(self.batch_size, int) or self.batch_size < 1:
                    raise ValueError(
                        f"batch_size: expected a positive integer, got {self.batch_size!r}"
                    )
                if self.db is None or isinstance(self.db, str | os.PathLike):
                    from watchkeeper.store import Store

                    self._store = Store(None if self.db is None else str(self.db))
                    self._owns_store = True
                else:
                    self._store = self.db
                _ensure_project(self._store, self.project)
            return self._store

    def _model(self, model: str) -> None:
        if model not in self._models:
            if not self.store.has_model(self.project, model):
                self.store.register_model(self.project, model)
            self._models.add(model)

    def _write(self, model: str, cols: _columns.Columns) -> None:
        if self._env is None:
            self._env = serving_environment()
        self._model(model)
        env = self._environment(self._env)
        for part in _columns.split(cols, max(self.batch_size, 1)):
            self.store.log_events(self.project, model, _columns.to_window(part), environment=env)
        if self._digests:
            from watchkeeper.registry import check_serving_digests

            check_serving_digests(self.store, self.project, model, self._digests)

    def _enqueue_rows(self, model: str, row: dict[str, Any]) -> None:
        store = self.store
        with self._lock:
            rows = self._buffer.rows.setdefault(model, [])
            rows.append(row)
            if len(rows) < self.batch_size:
                return
            del self._buffer.rows[model]
        del store
        self._write(model, _columns.from_rows(rows))

    def _enqueue_cols(self, model: str, cols: _columns.Columns) -> None:
        self._write(model, cols)

    def _enqueue_labels(self, model: str, ids: list[Any], labels: list[Any]) -> None:
        self._model(model)
        id_array = np.empty(len(ids), dtype=object)
        id_array[:] = ids
        label_array = np.empty(len(labels), dtype=object)
        label_array[:] = labels
        self.store.log_labels(self.project, model, id_array, label_array)

    def put_payload(
        self, data: bytes, media_type: str = "image/jpeg", *, root: str | None = None
    ) -> str:
        """Keep a payload (a thumbnail or a snippet) in the payload store beside the database
        (or at ``root``, a directory or fsspec URL) and return its ``payload_ref``."""
        from watchkeeper.payloads import PayloadStore, default_root

        db = self.db if isinstance(self.db, str | os.PathLike) else getattr(self.db, "url", None)
        where = default_root(None if db is None else str(db), root)
        return PayloadStore(where).put(self.project, data, media_type)

    def flush(self, timeout: float | None = None) -> bool:
        """Write every buffered event; always True (the writes are synchronous)."""
        with self._lock:
            taken = self._buffer.rows
            self._buffer.rows = {}
        for model, rows in taken.items():
            if rows:
                self._write(model, _columns.from_rows(rows))
        return True

    def close(self, timeout: float | None = None) -> bool:
        """Flush, and close the store when this client opened it."""
        if self._store is None:
            return True
        self.flush()
        if self._owns_store and hasattr(self._store, "close"):
            self._store.close()
        self._store = None
        return True


def _ensure_project(store: Any, project: str) -> None:
    has = getattr(store, "has_project", None)
    if has is not None:
        if not has(project):
            store.create_project(project)
        return
    with contextlib.suppress(ValueError, KeyError, LookupError):  # already there
        store.create_project(project)
