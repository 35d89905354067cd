"""The shadow: wrapper that never blocks, report joined by request id, sequential decisions."""

from __future__ import annotations

import collections
import time
from pathlib import Path

import numpy as np
import pytest

from watchkeeper.estimation import OperatingPoint
from watchkeeper.loop import SequentialPairedTest, fixed_horizon_discordant, shadow_report
from watchkeeper.shadow import Shadow, shadow_model


def _stream(rng: np.random.Generator, n: int, acc_a: float, acc_b: float, rho: float = 0.6):
    """Correctness of two models on n events, correlated (the same hard cases trip both)."""
    shared = rng.random(n)
    own_a, own_b = rng.random(n), rng.random(n)
    mix = rng.random(n) < rho
    ua = np.where(mix, shared, own_a)
    ub = np.where(mix, shared, own_b)
    return ua < acc_a, ub < acc_b


def _decisions(reps: int, acc_b: float, seed: int, max_events: int = 1500) -> collections.Counter:
    rng = np.random.default_rng(seed)
    out: collections.Counter = collections.Counter()
    for _ in range(reps):
        a, b = _stream(rng, max_events, 0.85, acc_b)
        test = SequentialPairedTest(alpha=0.05, max_events=max_events)
        for start in range(0, max_events, 100):  # labels arrive in batches of 100
            test.update(a[start : start + 100], b[start : start + 100])
        out[test.decision] += 1
    return out


def test_sequential_decides_for_better_against_worse_and_holds_its_level_fast() -> None:
    better = _decisions(60, 0.90, seed=1)
    worse = _decisions(60, 0.80, seed=2)
    equal = _decisions(100, 0.85, seed=3)
    assert better["better"] >= 48 and better["worse"] == 0, better
    assert worse["worse"] >= 48 and worse["better"] == 0, worse
    # P(any call | equal) <= alpha = 0.05: 100 runs, 12 calls would be a 1e-3 event
    assert equal["better"] + equal["worse"] <= 12, equal


@pytest.mark.slow
def test_sequential_error_rates_by_simulation() -> None:
    equal = _decisions(1000, 0.85, seed=4)
    assert (equal["better"] + equal["worse"]) / 1000 <= 0.05 + 0.02, equal
    better = _decisions(500, 0.90, seed=5)
    worse = _decisions(500, 0.80, seed=6)
    assert better["better"] / 500 >= 0.9 and better["worse"] == 0, better
    assert worse["worse"] / 500 >= 0.9 and worse["better"] == 0, worse


def test_sequential_batches_equal_single_steps_and_round_trip() -> None:
    rng = np.random.default_rng(7)
    a, b = _stream(rng, 800, 0.8, 0.9)
    whole = SequentialPairedTest().update(a, b)
    steps = SequentialPairedTest()
    for i in range(800):
        steps.update(a[i : i + 1], b[i : i + 1])
    assert whole.state == steps.state
    assert whole.decision == "better"
    again = SequentialPairedTest.from_dict(whole.to_dict())
    assert again.state == whole.state
    half = SequentialPairedTest().update(a[:20], b[:20])
    resumed = SequentialPairedTest.from_dict(half.to_dict()).update(a[20:], b[20:])
    assert resumed.state == whole.state


def test_sequential_max_events_and_bad_input() -> None:
    a = np.ones(50, bool)
    t = SequentialPairedTest(max_events=30).update(a, a)
    assert t.decision == "inconclusive" and t.state.n == 30
    with pytest.raises(ValueError, match="alpha"):
        SequentialPairedTest(alpha=1.5).update(a, a)
    with pytest.raises(ValueError, match="correct_challenger"):
        SequentialPairedTest().update(a, a[:3])


def test_fixed_horizon_yardstick() -> None:
    from scipy import stats

    m = fixed_horizon_discordant(0.7, 0.05, 0.8)
    k = int(stats.binom.isf(0.025, m, 0.5)) + 1
    assert stats.binom.sf(k - 1, m, 0.7) >= 0.8 - 0.05  # powered, within one step


class _Recorder:
    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[tuple[str, dict]] = []
        self.delay = delay

    def log_batch(self, model: str, **cols: object) -> None:
        time.sleep(self.delay)
        self.calls.append((model, cols))


def test_shadow_logs_the_challenger_with_the_same_ids() -> None:
    rec = _Recorder()
    with Shadow(lambda x: np.asarray(x) + 1, rec, "fraud", "v2") as sh:
        serve = sh.wrap(lambda x: np.asarray(x) * 2)
        assert serve(["a", "b"], [1.0, 2.0]).tolist() == [2.0, 4.0]
        sh.submit(["c"], [3.0], tags={"scanner": ["new"]})
    model, cols = rec.calls[0]
    assert model == shadow_model("fraud") and cols["version"] == "v2"
    assert list(cols["ids"]) == ["a", "b"] and cols["scores"].tolist() == [2.0, 3.0]
    assert rec.calls[1][1]["tags"] == {"scanner": ["new"]}
    assert sh.stats.scored == 3 and sh.stats.dropped == 0


def test_shadow_never_blocks_and_counts_drops() -> None:
    rec = _Recorder(delay=0.01)
    sh = Shadow(lambda x: x, rec, "fraud", "v2", queue_size=5)
    t0 = time.perf_counter()
    accepted = sum(sh.submit([f"r{i}"], [0.5]) for i in range(500))
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.5  # 500 submissions while the challenger takes 10 ms each
    st = sh.stats
    assert st.dropped == 500 - accepted and st.dropped > 400
    sh.close()
    assert sh.stats.scored == accepted


def test_shadow_survives_a_failing_challenger() -> None:
    def broken(x: object) -> object:
        raise RuntimeError("boom")

    rec = _Recorder()
    with Shadow(broken, rec, "fraud", "v2") as sh:
        sh.submit(["a"], [1.0])
    assert sh.stats.failed == 1 and isinstance(sh.last_error, RuntimeError)
    with pytest.raises(ValueError, match="queue_size"):
        Shadow(broken, rec, "fraud", "v2", queue_size=0)
    with pytest.raises(TypeError, match="client"):
        Shadow(broken, object(), "fraud", "v2")


def test_shadow_through_a_store_and_the_report(tmp_path: Path) -> None:
    from watchkeeper.sdk import LocalClient
    from watchkeeper.store import Store

    rng = np.random.default_rng(8)
    n = 2000
    y = (rng.random(n) < 0.1).astype(int)
    x = y + rng.normal(0, 0.35, n)
    ids = [f"r{i}" for i in range(n)]
    store = Store(str(tmp_path / "wk.db"))
    wk = LocalClient(store, project="p")

    def champion(v: np.ndarray) -> np.ndarray:
        return np.clip(0.5 + 0.5 * (v - 0.5) + rng.normal(0, 0.15, len(v)), 0, 1)

    def challenger(v: np.ndarray) -> np.ndarray:
        return np.clip(0.5 + 0.8 * (v - 0.5), 0, 1)

    with Shadow(challenger, wk, "fraud", "v2") as sh:
        for start in range(0, n, 100):
            batch = slice(start, start + 100)
            scores = sh.wrap(champion)(ids[batch], x[batch])
            wk.log_batch("fraud", ids=ids[batch], scores=scores, version="v1", ts=start + 1.0)
    wk.log_labels("fraud", ids[:1500], y[:1500].tolist())
    a = store.read_window("p", "fraud")
    b = store.read_window("p", shadow_model("fraud"))
    assert set(b.versions) == {"v2"} and len(b) == n
    op = OperatingPoint(0.5, tpr=0.9, fpr=0.05)
    rep = shadow_report(
        a, b, champion_threshold=0.5, challenger_threshold=0.5, challenger_op=op,
        expected_prevalence=0.1,
    )  # fmt: skip
    assert rep.n_paired == n and rep.n_labelled == 1500
    assert rep.decision == "promote", rep.summary()
    assert rep.paired is not None and rep.paired["challenger"] > rep.paired["champion"]
    assert rep.latency["p50_challenger"] is not None
    assert rep.to_dict()["band"]["observed"] == int((b.scores >= 0.5).sum())
    store.close()


def test_shadow_report_rejects_disjoint_windows() -> None:
    from watchkeeper.window import Window

    a = Window.from_columns(ids=["a"], scores=[0.1])
    b = Window.from_columns(ids=["b"], scores=[0.1])
    with pytest.raises(ValueError, match="no request id in common"):
        shadow_report(a, b, champion_threshold=0.5, challenger_threshold=0.5)


def _pair(rng: np.random.Generator, n: int, labelled: int) -> tuple[object, object, dict]:
    """A champion and a challenger window of the same requests (the challenger's in another
    order), their scores, latencies and the truth."""
    from watchkeeper.window import Window

    ids = np.array([f"r{i}" for i in range(n)], dtype=object)
    y = rng.random(n) < 0.2
    sa = np.clip(0.3 + 0.4 * y + rng.normal(0, 0.2, n), 0, 1)
    sb = np.clip(0.25 + 0.5 * y + rng.normal(0, 0.15, n), 0, 1)
    la = rng.gamma(2.0, 1.0, n)
    lb = 1.5 * la + 0.2
    labels = np.array([int(v) for v in y[:labelled]] + [None] * (n - labelled), dtype=object)
    a = Window.from_columns(ids=ids, ts=np.arange(n, dtype=float), scores=sa, latency_ms=la,
                            labels=labels)  # fmt: skip
    perm = rng.permutation(n)
    b = Window.from_columns(ids=ids[perm], ts=np.arange(n, dtype=float)[perm], scores=sb[perm],
                            latency_ms=lb[perm])  # fmt: skip
    return a, b, {"y": y, "sa": sa, "sb": sb, "la": la, "lb": lb}


def test_shadow_report_fields_match_a_direct_computation() -> None:
    from scipy import stats

    a, b, t = _pair(np.random.default_rng(11), 4000, labelled=3000)
    op = OperatingPoint(0.5, tpr=0.9, fpr=0.05)
    r = shadow_report(a, b, champion_threshold=0.5, challenger_threshold=0.5, challenger_op=op,
                      expected_prevalence=0.2)  # fmt: skip
    fa, fb = t["sa"] >= 0.5, t["sb"] >= 0.5
    assert r.n_paired == 4000 and r.n_labelled == 3000
    assert r.agreement == pytest.approx((fa == fb).mean())
    assert r.flag_rate_champion == pytest.approx(fa.mean())
    assert r.flag_rate_difference == pytest.approx(fb.mean() - fa.mean())
    lo, hi = r.flag_rate_ci
    assert lo < r.flag_rate_difference < hi and hi - lo < 0.05
    assert r.band is not None and r.band["observed"] == int(fb.sum())
    assert r.score_ks == pytest.approx(stats.ks_2samp(t["sa"], t["sb"]).statistic)
    assert r.score_wasserstein > 0
    lat = r.latency
    assert lat["p50_champion"] == pytest.approx(np.quantile(t["la"], 0.5))
    assert lat["p99_difference"] == pytest.approx(
        np.quantile(t["lb"], 0.99) - np.quantile(t["la"], 0.99)
    )
    y = t["y"][:3000]
    assert r.paired is not None and r.sequential is not None
    assert r.paired["champion"] == pytest.approx((fa[:3000] == y).mean())
    assert r.paired["challenger"] == pytest.approx((fb[:3000] == y).mean())
    assert r.sequential["n"] <= 3000 and r.decision in ("promote", "continue", "reject")
    assert any("agreement" in line for line in r.summary())


def test_shadow_report_flag_rate_interval_covers_by_simulation() -> None:
    """The paired interval of the flag-rate difference holds its 95% coverage."""
    from watchkeeper.window import Window

    rng = np.random.default_rng(12)
    n, reps, covered = 400, 300, 0
    ids = np.array([f"r{i}" for i in range(n)], dtype=object)
    for _ in range(reps):
        u, v = rng.random(n), rng.random(n)
        shared = rng.random(n) < 0.7  # the two models flag mostly the same requests
        sa = u
        sb = np.where(shared, u, v)
        a = Window.from_columns(ids=ids, scores=1 - sa)  # flags with probability 0.20
        b = Window.from_columns(ids=ids, scores=1 - sb + 0.05)  # 0.25
        r = shadow_report(a, b, champion_threshold=0.8, challenger_threshold=0.8)
        lo, hi = r.flag_rate_ci
        covered += lo <= 0.05 <= hi
    # binomial sd of the coverage over 300 runs is 0.0126: 0.92 is 2.4 sd below 0.95
    assert 0.92 <= covered / reps <= 0.985, covered
