"""The shadow's serving path and the child's scheduling: the ring's fast path, the batches put
together in the child, SCHED_IDLE and CPU pinning, and their bad input.

The challengers are module-level functions (process mode pickles them by reference).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from shadow_fixtures import local_client, shadow_window

from watchkeeper.shadow import _READ, _SENT, _TAKEN, Shadow, _pair_layout, _Ring

_FIRST_CALL = True


def first_column_recorded(x: Any) -> np.ndarray:
    """The first column; every call appends its row count to ``$WK_TEST_CALLS``, and the first
    call waits half a second so the next batches queue up behind it."""
    global _FIRST_CALL
    x = np.asarray(x, dtype=np.float64)
    with open(os.environ["WK_TEST_CALLS"], "a") as f:
        f.write(f"{len(x)}\n")
    if _FIRST_CALL:
        _FIRST_CALL = False
        time.sleep(0.5)
    return x[:, 0]


def _calls(path: Path) -> list[int]:
    return [int(v) for v in path.read_text().split()]


@pytest.mark.parametrize("coalesce_rows", [1, 10_000])
def test_waiting_batches_are_scored_together_with_their_share_of_the_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, coalesce_rows: int
) -> None:
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("WK_TEST_CALLS", str(calls))
    sh = Shadow(first_column_recorded, local_client(tmp_path), "fraud", "v2", mode="process",
                coalesce_rows=coalesce_rows)  # fmt: skip
    rng = np.random.default_rng(5)
    # the first call holds the child half a second: the batches below queue up meanwhile
    assert sh.submit(["warm"], np.full((1, 4), 0.25))
    expected: dict[str, float] = {"warm": 0.25}
    end = time.monotonic() + 60
    while not calls.exists() and time.monotonic() < end:
        time.sleep(0.01)
    sizes = [10, 30] * 10
    for b, n in enumerate(sizes):
        # ids of changing widths ("b9-..." then "b10-..."): concatenated as they are
        ids = np.char.add(f"b{b}-", np.arange(n).astype(str))
        x = rng.uniform(0, 1, (n, 4)).astype(np.float32)
        assert sh.submit(ids, x)
        expected.update(zip(ids.tolist(), x[:, 0].astype(np.float64).tolist(), strict=True))
    assert sh.flush(timeout=120)
    st = sh.stats
    sh.close()
    assert st.scored == sum(sizes) + 1 and st.dropped == st.failed == st.queued == 0
    made = _calls(calls)
    assert made[0] == 1 and sum(made) == sum(sizes) + 1
    if coalesce_rows == 1:
        assert made[1:] == sizes  # one call per batch
    else:
        # the 20 batches that queued behind the first call: in one or a few calls
        assert len(made) - 1 < len(sizes) // 2
    w = shadow_window(tmp_path)
    got = dict(zip(map(str, w.ids), w.scores.tolist(), strict=True))
    assert got.keys() == expected.keys()
    assert all(got[k] == pytest.approx(v) for k, v in expected.items())
    # within one call, a batch of 30 rows gets three times the time of a batch of 10
    lat = dict(zip(map(str, w.ids), np.asarray(w.latency_ms, dtype=np.float64), strict=True))
    if coalesce_rows > 1 and made[1] == sum(sizes):
        ratio = lat["b2-0"] / lat["b1-0"]
        assert ratio == pytest.approx(10 / 30, rel=1e-6)
        assert lat["b1-0"] == lat["b1-29"]


def test_arrays_off_the_fast_path_still_arrive_intact(tmp_path: Path) -> None:
    sh = Shadow(first_half, local_client(tmp_path), "fraud", "v2", mode="process")
    base = np.arange(24, dtype=np.float64).reshape(6, 4)
    cases = {
        "strided": base[:, ::2],  # not contiguous: goes through the pickler
        "fortran": np.asfortranarray(base),
        "list": base.tolist(),
        "big-endian": base.astype(">f8"),
    }
    for name, x in cases.items():
        assert sh.submit(np.char.add(f"{name}-", np.arange(6).astype(str)), x), name
    assert sh.submit(["t0", "t1"], base[:2], tags={"branch": ["a", "b"]})  # a column
    # ids as objects (pandas, the torch hook), not all strings: logged as their str()
    assert sh.submit(np.array(["o0", 1, None], dtype=object), base[:3])
    assert sh.submit([7, "l1", 2.5], base[:3])  # a list, as the child would read it
    # ids of more than 4 kB: sent as a view of the array rather than a copy of its bytes
    long_ids = np.char.add("a-long-request-identifier-", np.arange(300).astype(str))
    assert long_ids.nbytes > 4096 and sh.submit(long_ids, np.ones((300, 4)))
    assert sh.flush(timeout=120)
    sh.close()
    w = shadow_window(tmp_path)
    got = dict(zip(map(str, w.ids), w.scores.tolist(), strict=True))
    for name in cases:
        assert [got[f"{name}-{i}"] for i in range(6)] == pytest.approx(base[:, 0] / 2), name
    assert got["t1"] == pytest.approx(2.0)
    assert [got["o0"], got["1"], got["None"]] == pytest.approx(base[:3, 0] / 2)
    assert [got["7"], got["l1"], got["2.5"]] == pytest.approx(base[:3, 0] / 2)
    assert all(got[str(i)] == 0.5 for i in long_ids)


def first_half(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)[:, 0] / 2.0


@pytest.mark.skipif(not hasattr(os, "SCHED_IDLE"), reason="Linux scheduling policies")
def test_the_child_runs_idle_on_its_own_cpus(tmp_path: Path) -> None:
    cpu = max(os.sched_getaffinity(0))
    with Shadow(first_half, local_client(tmp_path), "fraud", "v2", mode="process", idle=True,
                cpus={cpu}) as sh:  # fmt: skip
        assert sh.submit(["a"], np.ones((1, 2)))
        assert sh.flush(timeout=120)
        pid = sh.pid
        assert pid is not None
        assert os.sched_getscheduler(pid) == os.SCHED_IDLE
        assert os.sched_getaffinity(pid) == {cpu}
    with Shadow(first_half, local_client(tmp_path), "fraud", "v3", mode="process") as sh:
        assert sh.submit(["b"], np.ones((1, 2)))
        assert sh.flush(timeout=120)
        assert sh.pid is not None and os.sched_getscheduler(sh.pid) == os.SCHED_OTHER


def test_bad_scheduling_input_names_the_field(tmp_path: Path) -> None:
    client = local_client(tmp_path)
    for kwargs, error, field in [
        ({"idle": "yes"}, TypeError, "idle"),
        ({"cpus": []}, ValueError, "cpus"),
        ({"cpus": [10_000]}, ValueError, "cpus"),
        ({"cpus": "1"}, TypeError, "cpus"),
        ({"cpus": [0.5]}, ValueError, "cpus"),
        ({"cpus": 1}, TypeError, "cpus"),
        ({"coalesce_rows": 0}, ValueError, "coalesce_rows"),
        ({"coalesce_rows": True}, ValueError, "coalesce_rows"),
    ]:
        with pytest.raises(error, match=field):
            Shadow(first_half, client, "fraud", "v2", mode="process", **kwargs)


def _reader_ring(capacity: int) -> _Ring:
    return _Ring(bytearray(capacity), [0] * 7, capacity)


def test_the_ring_goes_back_to_the_start_once_read_and_never_overwrites_unread() -> None:
    ring = _reader_ring(4096)
    rng = np.random.default_rng(1)
    sent: list[tuple[bytes, bytes, bytes]] = []
    got: list[tuple[bytes, bytes, bytes]] = []
    for step in range(300):
        for _ in range(int(rng.integers(1, 4))):
            a = rng.integers(0, 255, int(rng.integers(1, 400)), dtype=np.uint8).tobytes()
            b = rng.integers(0, 255, int(rng.integers(1, 900)), dtype=np.uint8).tobytes()
            meta = f"m{step}".encode()
            if ring.put_pair(*_pair_layout(meta, len(a), len(b)), memoryview(a), memoryview(b)):
                ring.counters[_SENT] += 1  # records sent
                sent.append((meta, a, b))
        # the reader keeps up on even steps only: the writer meets a full ring and an empty one
        while step % 2 == 0 and ring.counters[_TAKEN] < ring.counters[_SENT]:
            meta, bufs = ring.take()
            got.append((meta, bytes(bufs[0]), bytes(bufs[1])))
        if ring.counters[_TAKEN] == ring.counters[_SENT]:
            assert ring.counters[_READ] == ring.written  # everything read
    while ring.counters[_TAKEN] < ring.counters[_SENT]:
        meta, bufs = ring.take()
        got.append((meta, bytes(bufs[0]), bytes(bufs[1])))
    assert got == sent and len(sent) > 100
    # a record written after everything was read starts at offset 0
    ring.put_pair(*_pair_layout(b"x", 8, 8), memoryview(b"12345678"), memoryview(b"abcdefgh"))
    assert ring.written % ring.capacity == 5 * 8 + 8 + 8 + 8
    # a record bigger than the ring never fits
    assert not ring.put_pair(
        *_pair_layout(b"x", 5000, 1), memoryview(bytes(5000)), memoryview(b"a")
    )


class _Recorder:
    def __init__(self, fail_on: str = "") -> None:
        self.calls: list[tuple[list[str], dict[str, Any]]] = []
        self.fail_on = fail_on

    def log_batch(self, model: str, *, ids: Any, version: str, **cols: Any) -> None:
        if self.fail_on and self.fail_on in list(ids):
            raise OSError("the store is gone")
        self.calls.append((list(ids), cols))


def test_the_child_logs_in_few_large_calls_in_order_and_counts() -> None:
    from watchkeeper.shadow import _FAILED, _SCORED, _LogBuffer

    rec, counters, errors = _Recorder(fail_on="x7-0"), [0] * 7, []
    log = _LogBuffer(rec, "fraud:shadow", "v2", counters, errors.append, max_rows=100,
                     max_age_s=60.0)  # fmt: skip

    def batch(tag: str, n: int = 32) -> tuple[np.ndarray, dict[str, Any]]:
        ids = np.array([f"{tag}-{i}" for i in range(n)], dtype=object)
        return ids, {"scores": np.arange(n, dtype=np.float64), "latency_ms": np.ones(n)}

    for b in range(3):
        log.add(*batch(f"a{b}"))
    assert rec.calls == [] and not log.due()  # 96 rows wait
    log.add(*batch("a3"))  # 128 >= 100: one call for the four
    assert len(rec.calls) == 1 and len(rec.calls[0][0]) == 128
    assert rec.calls[0][0][32] == "a1-0" and rec.calls[0][1]["scores"][32] == 0.0
    log.add(*batch("b0"))
    # a batch with a column that is not an array of its length: what waits goes first
    log.add(np.array(["t0", "t1"], dtype=object), {"scores": np.ones(2), "tags": {"k": ["u", "v"]}})
    assert [c[0][0] for c in rec.calls] == ["a0-0", "b0-0", "t0"]
    log.add(*batch("x7"))
    log.max_age_s = 0.0
    assert log.due()
    log.write()  # the client fails: the 32 events are counted as failed, the error kept
    assert counters[_SCORED] == 128 + 32 + 2 and counters[_FAILED] == 32
    assert "the store is gone" in str(errors[-1]) and log.parts == [] and not log.due()


def test_going_back_to_the_start_costs_no_room_to_a_reader_one_record_behind() -> None:
    ring = _reader_ring(8 * 1024)
    layout = _pair_layout(b"m", 1000, 1000)
    data = memoryview(bytes(1000))
    for step in range(50):
        # the reader catches up, then lags a record behind: the ring has room for several
        assert ring.put_pair(*layout, data, data), step
        ring.counters[_SENT] += 1
        while ring.counters[_TAKEN] < ring.counters[_SENT]:
            ring.take()
        for _ in range(2):
            assert ring.put_pair(*layout, data, data), step
            ring.counters[_SENT] += 1
        ring.take()
        assert ring.counters[_TAKEN] == ring.counters[_SENT] - 1
        ring.take()


def test_scheduling_options_in_thread_mode_are_said_to_be_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level("WARNING", logger="watchkeeper.shadow"):
        Shadow(first_half, local_client(tmp_path), "fraud", "v2", mode="thread", cpus={0}).close()
    assert "ignored" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="watchkeeper.shadow"):
        Shadow(first_half, local_client(tmp_path), "fraud", "v2", mode="thread").close()
    assert "ignored" not in caplog.text
