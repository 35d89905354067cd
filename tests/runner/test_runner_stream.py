"""The runner end to end on a store: a planted change alerts in time, one extreme window is a
transient, a calm stream stays quiet, state survives between runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from watchkeeper.checks import default_config
from watchkeeper.profiles import profile
from watchkeeper.runner import MonitorCollector, Scheduler, run_monitors
from watchkeeper.window import Window

HOUR = 3600.0
T0 = 1_700_000_000.0 - (1_700_000_000.0 % HOUR)
OP = {"threshold": 0.5, "tpr": 0.9, "fpr": 0.02}
FEATURES = 5


def _events(
    rng: np.random.Generator, n: int, start: float, shift: float = 0.0, prefix: str = "e"
) -> Window:
    y = rng.uniform(size=n) < 0.1
    flagged = np.where(y, rng.uniform(size=n) < 0.9, rng.uniform(size=n) < 0.02)
    s = np.where(flagged, rng.uniform(0.5, 1.0, n), rng.uniform(0.0, 0.5, n))
    feats = {f"x{i}": rng.normal(size=n) for i in range(FEATURES)}
    feats["x0"] = feats["x0"] + shift
    return Window.from_columns(
        ids=[f"{prefix}{start:.0f}-{i}" for i in range(n)],
        ts=start + np.sort(rng.uniform(0, HOUR - 1, n)),
        features=feats,
        scores=s,
        labels=y.astype(int),
    )


@pytest.fixture
def store(tmp_path: Path, rng: np.random.Generator) -> Iterator[Any]:
    from watchkeeper.store import Store

    s = Store(str(tmp_path / "wk.db"))
    s.create_project("p")
    s.register_model_version("p", "fraud", "v1", operating_point=OP, window="1h")
    ref = _events(rng, 3000, T0 - 10 * HOUR, prefix="r")
    s.put_reference("p", "fraud", "v1", ref, profile=profile(ref).to_dict())
    try:
        yield s
    finally:
        s.close()


def _log(store: Any, w: Window) -> None:
    """Events, then their labels (labels travel separately and are joined by id)."""
    store.log_events("p", "fraud", w)
    store.log_labels("p", "fraud", w.ids, w.labels)


def _drive(store: Any, rng: np.random.Generator, shifts: list[float]) -> list[Any]:
    return _drive_from(store, rng, shifts, first_hour=0)


def _drive_from(
    store: Any, rng: np.random.Generator, shifts: list[float], first_hour: int
) -> list[Any]:
    out = []
    cache: dict[Any, Any] = {}  # what the scheduler keeps: the reference fitted once
    for h, shift in enumerate(shifts, start=first_hour):
        start = T0 + h * HOUR
        _log(store, _events(rng, 400, start, shift))
        out.append(run_monitors(store, "p", "fraud", now=start + HOUR + 1, cache=cache))
    return out


def _fired(result: Any, rule: str) -> bool:
    return any(e.kind == "firing" and e.alert["rule"] == rule for e in result.events)


@pytest.mark.slow
def test_planted_change_alerts_within_two_windows(store: Any, rng: np.random.Generator) -> None:
    # Default rule: data drift persists in 2 of 3 windows -> alert at the 2nd drifted window.
    change = 4
    results = _drive(store, rng, [0.0] * change + [0.6] * 4)
    first = next(i for i, r in enumerate(results) if _fired(r, "data_drift"))
    assert change <= first <= change + 1
    alert = next(e.alert for e in results[first].events if e.alert["rule"] == "data_drift")
    assert alert["subjects"] == ["*", "x0"]  # one alert for the model, naming the feature
    stored = store.list_alerts("p", model="fraud", status="firing")
    assert [a["rule"] for a in stored] == ["data_drift"]
    findings = store.list_findings("p", "fraud", check="feature_drift", subject="x0")
    assert len(findings) == len(results) and findings[-1]["drift"] is True
    assert store.list_metric_values("p", "fraud", name="feature_drift.share")[-1]["value"] > 0


@pytest.mark.slow
def test_one_extreme_window_is_transient_not_an_alert(store: Any, rng: np.random.Generator) -> None:
    results = _drive(store, rng, [0.0, 0.0, 3.0, 0.0, 0.0, 0.0])
    assert not any(_fired(r, "data_drift") for r in results)
    assert any(t["rule"] == "data_drift" for t in results[2].transients)
    transients = store.list_findings("p", "fraud", check="alert.transient")
    assert any(t["subject"] == "data_drift:x0" for t in transients)
    # The extreme window is also out of the reference range: a data-quality alert (k = 1).
    assert _fired(results[2], "data_quality")


@pytest.mark.slow
def test_calm_stream_with_sequential_rule_stays_quiet(store: Any, rng: np.random.Generator) -> None:
    cfg = default_config(store.get_reference("p", "fraud"), OP)
    cfg.rules = [
        {
            "name": "drift_seq",
            "checks": ["feature_drift"],
            "subjects": ["[*]"],  # the model-level finding only ("*" alone matches all)
            # Windows share one reference, so their p-values are dependent: spending is valid
            # under any dependence (the CUSUM bound assumes independent windows).
            "sequential": {"method": "spending", "false_alarm_rate": 0.05, "run_length": 30},
        }
    ]
    store.put_monitor_config("p", "fraud", cfg.to_dict())
    results = _drive(store, rng, [0.0] * 30)
    assert not any(r.events for r in results)
    assert all(r.windows for r in results)
    # The same rule finds a lasting change within a few windows.
    later = _drive_from(store, rng, [0.5] * 6, first_hour=30)
    assert any(_fired(r, "drift_seq") for r in later[:4])


def test_runs_are_idempotent_and_adhoc_check(store: Any, rng: np.random.Generator) -> None:
    _log(store, _events(rng, 300, T0))
    first = run_monitors(store, "p", "fraud", now=T0 + HOUR + 5)
    assert len(first.windows) == 1 and first.windows[0][2] == 300 and not first.errors
    again = run_monitors(store, "p", "fraud", now=T0 + HOUR + 50)
    assert again.windows == [] and again.skipped
    checks = {f["check"] for f in first.findings}
    assert {"feature_drift", "prediction_drift", "operating_point", "calibration"} <= checks
    assert {"data_quality.range", "streaming.score", "realised_performance"} <= checks
    adhoc = run_monitors(store, "p", "fraud", now=T0 + HOUR + 60, adhoc=True)
    assert adhoc.adhoc and 250 < adhoc.windows[0][2] <= 300  # the trailing hour
    n = len(store.list_findings("p", "fraud"))
    assert len(store.list_findings("p", "fraud")) == n  # ad hoc runs store nothing


def test_trailing_evaluates_the_open_window_and_stores_nothing(
    store: Any, rng: np.random.Generator
) -> None:
    _log(store, _events(rng, 300, T0 + HOUR))  # in the hour that is still open at `now`
    closed = run_monitors(store, "p", "fraud", now=T0 + HOUR + 1800, adhoc=True)
    # No window holding an event has closed (the first run starts at the first event's window):
    # the open hour is evaluated ad hoc and nothing is stored.
    assert closed.adhoc and store.list_findings("p", "fraud") == []
    stored = len(store.list_findings("p", "fraud"))
    trailing = run_monitors(store, "p", "fraud", now=T0 + HOUR + 1800, trailing=True)
    assert trailing.adhoc and 0 < trailing.windows[0][2] <= 300
    assert any(f["check"] == "feature_drift" for f in trailing.findings)
    assert len(store.list_findings("p", "fraud")) == stored  # nothing stored


def test_a_held_lease_makes_a_second_runner_stand_aside(
    store: Any, rng: np.random.Generator
) -> None:
    _log(store, _events(rng, 300, T0))
    assert store.acquire_lease("p", "runner:fraud", "another-replica", ttl=60)
    blocked = run_monitors(store, "p", "fraud", now=T0 + HOUR + 5)
    assert blocked.windows == [] and blocked.skipped and "another process" in blocked.skipped
    assert store.list_findings("p", "fraud") == []
    store.release_lease("p", "runner:fraud", "another-replica")
    assert len(run_monitors(store, "p", "fraud", now=T0 + HOUR + 5).windows) == 1
    # The run gave its lease back: the other replica can take it at once.
    assert store.acquire_lease("p", "runner:fraud", "another-replica", ttl=60)


def test_concurrent_runners_evaluate_each_window_once(
    store: Any, rng: np.random.Generator, tmp_path: Path
) -> None:
    """Two runners (their own connections, as two replicas would have) race over a backlog."""
    import threading

    from watchkeeper.store import Store

    for h in range(4):
        _log(store, _events(rng, 200, T0 + h * HOUR))
    run_monitors(store, "p", "fraud", now=T0 + HOUR + 5)  # the first hour: a backlog of 3
    results: list[Any] = []
    barrier = threading.Barrier(2)

    def replica() -> None:
        other = Store(str(tmp_path / "wk.db"))
        try:
            barrier.wait()
            results.append(run_monitors(other, "p", "fraud", now=T0 + 4 * HOUR + 5))
        finally:
            other.close()

    threads = [threading.Thread(target=replica) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    idle, worked = sorted(results, key=lambda r: len(r.windows))
    assert idle.windows == [] and idle.skipped and worked.windows
    assert len(worked.windows) == 3
    stored = store.list_findings("p", "fraud", check="operating_point")
    assert len(stored) == 4 == len({f["window_start"] for f in stored})


def test_scheduler_and_collector(store: Any, rng: np.random.Generator) -> None:
    from prometheus_client import CollectorRegistry, generate_latest

    store.log_events("p", "fraud", _events(rng, 300, T0))
    results = Scheduler(store, interval=60).run_once(now=T0 + HOUR + 5)
    assert [r.model for r in results] == ["fraud"] and results[0].windows
    registry = CollectorRegistry()
    registry.register(MonitorCollector(store))
    text = generate_latest(registry).decode()
    assert 'watchkeeper_monitor_value{metric="events",model="fraud",project="p"} 300.0' in text
    assert "watchkeeper_monitor_last_window_end_timestamp_seconds" in text


def test_model_without_reference_is_skipped(store: Any) -> None:
    store.register_model("p", "bare")
    assert run_monitors(store, "p", "bare", now=T0).skipped == (
        "no reference registered for this model"
    )


def test_count_windows_are_cut_in_time_order(store: Any, rng: np.random.Generator) -> None:
    cfg = default_config(store.get_reference("p", "fraud"), OP, window=250)
    store.put_monitor_config("p", "fraud", cfg.to_dict())
    _log(store, _events(rng, 600, T0))
    first = run_monitors(store, "p", "fraud", now=T0 + HOUR)
    assert [n for _, _, n in first.windows] == [250, 250] and not first.errors
    assert first.windows[0][1] <= first.windows[1][0]
    assert run_monitors(store, "p", "fraud", now=T0 + HOUR).windows == []  # 100 pending
    _log(store, _events(rng, 200, T0 + HOUR))
    assert [n for _, _, n in run_monitors(store, "p", "fraud", now=T0 + 2 * HOUR).windows] == [250]


def test_planted_change_on_postgresql(postgres_url: str, rng: np.random.Generator) -> None:
    import uuid

    import sqlalchemy as sa

    from watchkeeper.store import Store

    schema = f"wk_monitors_{uuid.uuid4().hex[:10]}"
    s = Store(postgres_url, schema=schema)
    try:
        s.create_project("p")
        s.register_model_version("p", "fraud", "v1", operating_point=OP, window="1h")
        ref = _events(rng, 2000, T0 - 10 * HOUR, prefix="r")
        s.put_reference("p", "fraud", "v1", ref, profile=profile(ref).to_dict())
        results = _drive(s, rng, [0.0, 0.0, 0.6, 0.6])
        assert not any(_fired(r, "data_drift") for r in results[:2])
        assert _fired(results[3], "data_drift") or _fired(results[2], "data_drift")
    finally:
        s.close()
        engine = sa.create_engine(postgres_url, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        engine.dispose()
