"""A deferring shadow: the challenger computes and logs only between the champion's requests.

The challenger is a module-level function (process mode pickles it by reference); it writes
when each of its calls started and ended (``time.monotonic_ns``, one clock for every process
of the machine) so the test can set them against the requests the serving side marked.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from shadow_fixtures import local_client, shadow_window

from watchkeeper.shadow import (
    _N_WORDS,
    _SERVING,
    _SERVING_SINCE,
    Shadow,
    _Deferred,
    _words,
)


def stamped(x: Any) -> np.ndarray:
    """The first column, after 2 ms of "work"; each call appends ``start end rows``."""
    start = time.monotonic_ns()
    time.sleep(0.002)
    x = np.asarray(x, dtype=np.float64)
    with open(os.environ["WK_TEST_CALLS"], "a") as f:
        f.write(f"{start} {time.monotonic_ns()} {len(x)}\n")
    return x[:, 0]


def first_half(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)[:, 0] / 2.0


def test_the_challenger_starts_no_slice_while_a_request_is_served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("WK_TEST_CALLS", str(calls))
    sh = Shadow(stamped, local_client(tmp_path), "fraud", "v2", mode="process", defer=True,
                slice_ms=1.0)  # fmt: skip
    assert sh.submit(["warm"], np.full((1, 3), 0.5))
    assert sh.flush(timeout=120)
    calls.write_text("")
    rng = np.random.default_rng(0)
    served: list[tuple[int, int]] = []
    expected: dict[str, float] = {}
    for r in range(15):
        x = rng.uniform(0, 1, (8, 3))
        ids = [f"r{r}-{i}" for i in range(8)]
        with sh.serving():
            t0 = time.monotonic_ns()
            time.sleep(0.1)  # the champion's forward pass
            assert sh.submit(ids, x)
            t1 = time.monotonic_ns()
        served.append((t0, t1))
        expected.update(zip(ids, x[:, 0].tolist(), strict=True))
        time.sleep(0.012)  # the gap between requests: the challenger's time
    assert sh.flush(timeout=120)
    st = sh.stats
    sh.close()
    assert st.scored == 8 * 15 + 1 and st.dropped == st.failed == 0
    rows = [tuple(map(int, line.split())) for line in calls.read_text().split("\n") if line]
    # every slice is one row: 2 ms a call is more than the 1 ms a slice may last
    assert sum(r[2] for r in rows) == 8 * 15 and max(r[2] for r in rows) == 1
    # no slice starts inside a marked request (1 ms allowed for the race between the child's
    # look at the mark and the mark itself)
    inside = [s for s, _, _ in rows for t0, t1 in served if t0 + 1_000_000 < s < t1]
    assert not inside, f"{len(inside)} slices started while a request was served"
    w = shadow_window(tmp_path)
    got = dict(zip(map(str, w.ids), w.scores.tolist(), strict=True))
    assert all(got[k] == pytest.approx(v) for k, v in expected.items())
    # the events' latency is the time computing (8 rows of 2 ms), not the time waiting for a
    # gap (a request is served for 100 ms)
    scored = w.latency_ms[np.isin(w.ids.astype(str), list(expected))]
    assert np.all(scored < 60.0)


def test_serving_marks_balance_even_when_the_champion_raises(tmp_path: Path) -> None:
    client = local_client(tmp_path)
    with Shadow(first_half, client, "fraud", "v2", mode="process", defer=True) as sh:
        words = sh._words
        with pytest.raises(RuntimeError), sh.serving():
            assert words[_SERVING] == 1 and words[_SERVING_SINCE] > 0
            raise RuntimeError("champion failed")
        assert words[_SERVING] == 0
        sh.begin_serving()
        sh.begin_serving()  # two threads serving at once
        assert words[_SERVING] == 2
        sh.end_serving()
        sh.end_serving()
        sh.end_serving()  # one end too many does not go below zero
        assert words[_SERVING] == 0
        serve = sh.wrap(lambda x: np.asarray(x).sum())
        assert serve(["a"], np.ones((1, 2))) == 2.0 and words[_SERVING] == 0
        assert sh.flush(timeout=120) and sh.stats.scored == 1
    # without defer the marks cost nothing and change nothing
    with Shadow(first_half, local_client(tmp_path), "fraud", "v3", mode="process") as plain:
        plain.begin_serving()
        assert plain._words[_SERVING] == 0
        plain.end_serving()


def test_slices_put_back_together_as_one_answer() -> None:
    words = _words([0] * _N_WORDS)
    seen: list[int] = []

    def probs(x: np.ndarray) -> dict[str, np.ndarray]:
        seen.append(len(x))
        time.sleep(0.001)
        return {"scores": x[:, 0], "probs": np.stack([x[:, 0], 1 - x[:, 0]], axis=1)}

    deferred = _Deferred(probs, words, slice_s=0.0005)
    x = np.linspace(0, 1, 12).reshape(6, 2)
    out = deferred(x)
    assert seen == [1] * 6  # a millisecond a row against half a millisecond a slice
    np.testing.assert_array_equal(out["scores"], x[:, 0])
    assert out["probs"].shape == (6, 2)
    assert 0.005 <= deferred.compute_s < 1.0
    wide = _Deferred(lambda v: np.asarray(v)[:, 0], words, slice_s=10.0)
    wide(x)  # learns its rows per second on one row
    np.testing.assert_array_equal(wide(x), x[:, 0])  # then one slice holds all six
    assert _Deferred(lambda v: 7.0, words, 0.001)([1, 2]) == 7.0  # not sliceable: one call


def test_bad_defer_input_names_the_field(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    client = local_client(tmp_path)
    for kwargs, error, field in [
        ({"defer": "yes"}, TypeError, "defer"),
        ({"defer": 1}, TypeError, "defer"),
        ({"slice_ms": 0}, ValueError, "slice_ms"),
        ({"slice_ms": True}, ValueError, "slice_ms"),
        ({"slice_ms": 1e9}, ValueError, "slice_ms"),
    ]:
        with pytest.raises(error, match=field):
            Shadow(first_half, client, "fraud", "v2", mode="process", **kwargs)
    with caplog.at_level("WARNING", logger="watchkeeper.shadow"):
        Shadow(first_half, client, "fraud", "v2", mode="thread", defer=True).close()
    assert "defer" in caplog.text and "ignored" in caplog.text


def test_the_copy_waits_for_the_request_to_end_and_arrives_whole(tmp_path: Path) -> None:
    from watchkeeper.shadow import _SENT

    rng = np.random.default_rng(3)
    big = rng.uniform(0, 1, (40, 2048))  # 655 kB: copied in three chunks
    with Shadow(first_half, local_client(tmp_path), "fraud", "v2", mode="process", defer=True,
                queue_size=2) as sh:  # fmt: skip
        assert sh.submit(["warm"], big[:1]) and sh.flush(timeout=120)
        sent = sh._words[_SENT]
        with sh.serving():
            assert sh.submit([f"a{i}" for i in range(40)], big)
            assert sh.submit([f"b{i}" for i in range(40)], big[::-1].copy())
            # the queue holds two batches, those waiting for the copy included
            assert not sh.submit(["c"], big[:1])
            time.sleep(0.2)
            assert sh._words[_SENT] == sent  # nothing copied while the request is served
        assert sh.flush(timeout=120)
        st = sh.stats
        assert st.scored == 81 and st.dropped == 1 and st.queued == 0
    w = shadow_window(tmp_path)
    got = dict(zip(map(str, w.ids), w.scores.tolist(), strict=True))
    assert [got[f"a{i}"] for i in range(40)] == pytest.approx((big[:, 0] / 2).tolist())
    assert [got[f"b{i}"] for i in range(40)] == pytest.approx((big[::-1, 0] / 2).tolist())


def test_a_batch_without_room_when_copied_is_dropped_and_counted(tmp_path: Path) -> None:
    with Shadow(first_half, local_client(tmp_path), "fraud", "v2", mode="process", defer=True,
                buffer_mb=0.05) as sh:  # fmt: skip
        assert sh.submit(["small"], np.ones((1, 4)))
        assert sh.submit([f"x{i}" for i in range(20)], np.ones((20, 1000)))  # 160 kB
        assert sh.flush(timeout=120)
        st = sh.stats
        assert st.scored == 1 and st.dropped == 20 and st.submitted == 21 and st.queued == 0


def test_close_scores_what_waits_for_the_copier(tmp_path: Path) -> None:
    sh = Shadow(first_half, local_client(tmp_path), "fraud", "v2", mode="process", defer=True)
    sh.begin_serving()
    for i in range(5):
        assert sh.submit([f"r{i}"], np.full((1, 2), float(i)))
    sh.end_serving()
    sh.close(timeout=120)
    st = sh.stats
    assert st.scored == 5 and st.dropped == 0 and st.queued == 0
    assert not sh._copier.is_alive()
