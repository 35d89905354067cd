"""The shadow's process mode: mirrored ids logged as the challenger, drops, crashes, shutdown.

The challengers are module-level functions: process mode pickles them by reference and the
spawned child imports this module to find them.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from shadow_fixtures import local_client, shadow_window

from watchkeeper.shadow import Shadow


def halve(x: Any) -> np.ndarray:
    """Half the first column; a batch whose first value is negative is refused."""
    x = np.asarray(x, dtype=np.float64)
    if x[0, 0] < 0:
        raise ValueError("negative input")
    return x[:, 0] / 2.0


def slow(x: Any) -> np.ndarray:
    time.sleep(0.2)
    return np.zeros(len(x))


def crash_on_99(x: Any) -> np.ndarray:
    """Die like a segfault when the batch carries 99."""
    x = np.asarray(x, dtype=np.float64)
    if (x == 99).any():
        os._exit(7)
    return x[:, 0]


def _reaped(pid: int) -> bool:
    return not Path(f"/proc/{pid}").exists()


def test_process_mode_logs_every_accepted_request_as_the_challenger(tmp_path: Path) -> None:
    sh = Shadow(halve, local_client(tmp_path), "fraud", "v2", queue_size=1000)
    assert sh.mode == "process" and sh.pid is not None and sh.pid != os.getpid()
    accepted: list[str] = []
    rng = np.random.default_rng(0)
    for b in range(40):
        ids = [f"r{b}-{i}" for i in range(8)]
        x = rng.uniform(0, 1, (8, 3))
        if b == 5:
            x[0, 0] = -1.0  # the challenger raises on this batch: counted, the rest goes on
        if sh.submit(ids, x, tags={"scanner": ["new"] * 8}):
            accepted += ids if b != 5 else []
    assert sh.flush(timeout=120)
    st = sh.stats
    assert st.submitted == 320 and st.dropped == 0 and st.failed == 8 and st.scored == 312
    assert st.queued == 0 and st.crashes == 0 and st.lost == 0
    assert "negative input" in str(sh.last_error)
    pid = sh.pid
    assert pid is not None
    sh.close()
    assert sh._process.exitcode == 0 and _reaped(pid)
    w = shadow_window(tmp_path)
    assert sorted(map(str, w.ids)) == sorted(accepted)
    assert set(w.versions) == {"v2"} and set(w.tags["scanner"]) == {"new"}
    assert np.all((w.scores >= 0) & (w.scores <= 0.5)) and np.all(w.latency_ms >= 0)


def test_a_full_queue_drops_and_counts_and_submit_returns(tmp_path: Path) -> None:
    sh = Shadow(slow, local_client(tmp_path), "fraud", "v2", queue_size=3, mode="process")
    results = [sh.submit([f"r{i}", f"s{i}"], np.zeros((2, 1))) for i in range(100)]
    # every call above returned (none waited for the 0.2 s challenger); the refused are counted
    refused = results.count(False)
    st = sh.stats
    assert refused > 0 and st.dropped == 2 * refused and st.submitted == 200
    assert sh.flush(timeout=120)
    assert sh.stats.scored == 2 * results.count(True)
    sh.close()
    assert len(shadow_window(tmp_path)) == 2 * results.count(True)


@pytest.mark.parametrize("defer", [False, True])
def test_a_crashing_challenger_never_breaks_serving(tmp_path: Path, defer: bool) -> None:
    served = 0

    def serve(sh: Shadow, ids: list[str], x: np.ndarray) -> np.ndarray:
        nonlocal served
        out = x[:, 0] * 2  # the champion's answer does not depend on the shadow
        sh.submit(ids, x)
        served += 1
        return out

    sh = Shadow(crash_on_99, local_client(tmp_path), "fraud", "v2", max_restarts=1, defer=defer)
    serve(sh, ["a", "b"], np.ones((2, 2)))
    assert sh.flush(timeout=120)
    serve(sh, ["c", "d"], np.full((2, 2), 99.0))  # the child dies on this one
    deadline = time.monotonic() + 120
    while sh.stats.crashes == 0 and time.monotonic() < deadline:
        serve(sh, ["x"], np.zeros((1, 2)))  # serving goes on while the child is dead
        time.sleep(0.05)
    st = sh.stats
    assert st.crashes == 1 and st.lost >= 2, st
    assert "exit code 7" in str(sh.last_error)
    serve(sh, ["e"], np.ones((1, 2)))  # a new child scores what comes next
    assert sh.flush(timeout=120)
    st = sh.stats
    assert st.submitted == st.scored + st.lost + st.dropped + st.failed, st
    w = shadow_window(tmp_path)
    assert {"a", "b", "e"} <= set(map(str, w.ids)) and not {"c", "d"} & set(map(str, w.ids))
    # past max_restarts the shadow gives up: requests are dropped and counted, nothing raises
    serve(sh, ["f"], np.full((1, 2), 99.0))
    deadline = time.monotonic() + 60
    while sh.stats.crashes < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sh.stats.crashes == 2
    assert sh.submit(["g"], np.ones((1, 2))) is False and sh.stats.dropped >= 1
    assert sh.flush(timeout=5)  # nothing more will be scored: no wait
    pid = sh.pid
    sh.close()
    assert pid is not None and _reaped(pid) and served > 3


def test_mode_choice_and_bad_input(tmp_path: Path) -> None:
    from watchkeeper.sdk import LocalClient
    from watchkeeper.store import Store

    file_client = local_client(tmp_path)
    # a lambda cannot be pickled: "auto" runs it in a thread, "process" says why not
    with Shadow(lambda x: x, file_client, "fraud", "v2") as sh:
        assert sh.mode == "thread" and sh.pid is None
    with pytest.raises(TypeError, match="challenger: cannot be sent"):
        Shadow(lambda x: x, file_client, "fraud", "v2", mode="process")
    memory = LocalClient(Store("sqlite://"), project="p")
    with pytest.raises(TypeError, match="client: a LocalClient on an in-memory database"):
        Shadow(halve, memory, "fraud", "v2", mode="process")
    with Shadow(halve, memory, "fraud", "v2") as sh:
        assert sh.mode == "thread"
    for kwargs, field in [
        ({"mode": "fork"}, "mode"),
        ({"threads": 0}, "threads"),
        ({"niceness": 40}, "niceness"),
        ({"max_restarts": -1}, "max_restarts"),
        ({"queue_size": 0}, "queue_size"),
    ]:
        with pytest.raises(ValueError, match=field):
            Shadow(halve, file_client, "fraud", "v2", **kwargs)
    sh = Shadow(halve, file_client, "fraud", "v2", mode="thread")
    sh.close()
    with pytest.raises(RuntimeError, match="closed"):
        sh.submit(["a"], np.zeros((1, 1)))


def test_the_ring_wraps_around_intact_and_a_full_ring_drops(tmp_path: Path) -> None:
    # a 48 kB ring holds three or four batches of ~12 kB: it wraps many times, and fills
    sh = Shadow(halve, local_client(tmp_path), "fraud", "v2", buffer_mb=0.047, mode="process")
    sh.submit(["warm"], np.ones((1, 10)))
    assert sh.flush(timeout=120)
    rng = np.random.default_rng(3)
    expected: dict[str, float] = {"warm": 0.5}
    results = []
    for b in range(150):
        n = int(rng.integers(50, 150))  # uneven records: the wrap point moves
        ids = np.char.add(f"b{b}-", np.arange(n).astype(str))
        x = rng.uniform(0, 1, (n, 10))
        results.append(sh.submit(ids, x))
        if results[-1]:
            expected.update(zip(ids.tolist(), (x[:, 0] / 2).tolist(), strict=True))
        time.sleep(0.005)
    assert sh.flush(timeout=120)
    st = sh.stats
    assert results.count(False) > 0 and st.dropped > 0 and st.failed == 0
    assert sh._ring.written > 3 * sh._ring.capacity  # wrapped around several times
    # a column that cannot be pickled: the batch is dropped and reported, submit does not raise
    assert sh.submit(["bad"], np.ones((1, 10)), tags={"f": lambda: 0}) is False
    assert "pickle" in str(sh.last_error).lower()
    sh.close()
    w = shadow_window(tmp_path)
    got = dict(zip(map(str, w.ids), w.scores.tolist(), strict=True))
    assert got.keys() == expected.keys() and st.scored == len(expected)
    assert all(got[k] == pytest.approx(v) for k, v in expected.items())
