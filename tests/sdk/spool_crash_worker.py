"""Crash injection for the SDK spool, run as ``python spool_crash_worker.py <args>``.

For k = 1, 2, ... the worker forks three children on a fresh spool directory:

1. *setup*: a client whose server is "away" spools ``n_setup`` batches;
2. *crash*: a client logs ``n_more`` batches (spooled behind the others) and flushes against the
   live server, and dies with ``os._exit`` at its k-th step, a step being just before or just
   after any fsync, any rename, or any HTTP send of the spool's owner;
3. *recover*: a fresh client on the same directory spools one more batch while the server is
   away, then flushes everything left.

It stops at the first k the crash child lives through, and writes one JSON line per k. The
worker starts no thread itself, so forking it is safe.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from watchkeeper.sdk import Client, _spool
from watchkeeper.sdk import client as client_module

CRASHED = 77


def _client(url: str, token: str, spool: Path, size: int) -> Client:
    return Client(url, token, spool_dir=spool, batch_size=size, flush_interval=0.05,
                  retry_base=0.02, retry_max=0.05, system_metrics=False)  # fmt: skip


def _log(c: Client, prefix: str, n_batches: int, size: int) -> None:
    for j in range(n_batches):
        ids = [f"{prefix}{j}-{i}" for i in range(size)]
        c.log_batch("m", ids=ids, scores=np.full(size, 0.5))


def _setup(url: str, token: str, spool: Path, k: int, n: int, size: int) -> None:
    client_module.Client._send = lambda self, http, batch: client_module._RETRY  # type: ignore[method-assign]
    c = _client(url, token, spool, size)
    _log(c, f"{k}-s", n, size)
    c.close(timeout=0.01)
    assert c.pending() == n * size, c.pending()


def _crash(url: str, token: str, spool: Path, k: int, n: int, size: int, out: Path) -> None:
    steps = [0]

    def step() -> None:
        steps[0] += 1
        if steps[0] == k:
            os._exit(CRASHED)

    class Os:
        def __getattr__(self, name: str) -> Any:
            return getattr(os, name)

        def replace(self, src: Any, dst: Any) -> None:
            step()
            os.replace(src, dst)
            step()

        def fsync(self, fd: int) -> None:
            step()
            os.fsync(fd)
            step()

    _spool.os = Os()  # type: ignore[assignment]
    send = client_module.Client._send

    def counted_send(self: Client, http: Any, batch: Any) -> str:
        step()
        result = send(self, http, batch)
        step()
        return result

    client_module.Client._send = counted_send  # type: ignore[method-assign]
    c = _client(url, token, spool, size)
    _log(c, f"{k}-c", n, size)
    flushed = c.flush(timeout=20)
    out.write_text(json.dumps({"flushed": flushed, "steps": steps[0]}))


def _recover(url: str, token: str, spool: Path, k: int, size: int, out: Path) -> None:
    """A new client adopts the spool, spools one more batch while the server is away (a stale
    offset past it would hide it), then flushes with the server back."""
    away = [True]
    send = client_module.Client._send

    def flaky_send(self: Client, http: Any, batch: Any) -> str:
        return client_module._RETRY if away[0] else send(self, http, batch)

    client_module.Client._send = flaky_send  # type: ignore[method-assign]
    c = _client(url, token, spool, size)
    _log(c, f"{k}-r", 1, size)
    while c.stats["spooled_events"] < size:
        c.flush(timeout=0.02)
    away[0] = False
    flushed = c.flush(timeout=20)
    out.write_text(json.dumps({"flushed": flushed, "pending": c.pending(), **c.stats}))
    c.close(timeout=5)


def _fork(body: Any) -> int:
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            body()
        except BaseException:
            import traceback

            traceback.print_exc()
            code = 1
        finally:
            os._exit(code)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _warm() -> None:
    """What each child would otherwise redo (an SSL context, the environment report), once."""
    import functools

    import httpx

    from watchkeeper.sdk.environment import serving_environment

    context = httpx.create_ssl_context()
    httpx.Client = functools.partial(httpx.Client, verify=context)  # type: ignore[misc]
    environment = serving_environment()
    client_module.serving_environment = lambda: environment  # type: ignore[attr-defined]


def main(url: str, token: str, work: Path, n_setup: int, n_more: int, size: int) -> None:
    _warm()
    with open(work / "results.jsonl", "w") as results:
        for k in range(1, 500):
            spool = work / f"spool-{k}"
            crash_out, recover_out = work / f"crash-{k}.json", work / f"recover-{k}.json"
            code = _fork(lambda: _setup(url, token, spool, k, n_setup, size))  # noqa: B023
            assert code == 0, f"setup failed at k={k}"
            crash = _fork(lambda: _crash(url, token, spool, k, n_more, size, crash_out))  # noqa: B023
            assert crash in (0, CRASHED), f"crash child failed at k={k}: {crash}"
            code = _fork(lambda: _recover(url, token, spool, k, size, recover_out))  # noqa: B023
            assert code == 0, f"recovery failed at k={k}"
            row = {"k": k, "crashed": crash == CRASHED,
                   "crash": json.loads(crash_out.read_text()) if crash == 0 else None,
                   "recover": json.loads(recover_out.read_text())}  # fmt: skip
            results.write(json.dumps(row) + "\n")
            results.flush()
            if crash == 0:
                return
    raise AssertionError("the crash child never ran to the end")


if __name__ == "__main__":
    a = sys.argv[1:]
    main(a[0], a[1], Path(a[2]), int(a[3]), int(a[4]), int(a[5]))
