"""A window is checked per model version, never pooled; the first run backfills, bounded."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from watchkeeper.runner import run_monitors
from watchkeeper.store import Store
from watchkeeper.window import Window

HOUR = 3600.0
T0 = 1_700_000_000.0 - (1_700_000_000.0 % HOUR)


def _reference(rng: np.random.Generator, mean: float) -> Window:
    n = 2000
    s = rng.uniform(size=n)
    return Window.from_columns(features={"x": rng.normal(mean, 1.0, n)}, scores=s,
                               labels=(rng.uniform(size=n) < s).astype(int))  # fmt: skip


def _events(rng: np.random.Generator, start: float, n: int, mean: float,
            version: str | None, tag: str) -> Window:  # fmt: skip
    return Window.from_columns(
        ids=[f"{tag}-{i}" for i in range(n)],
        ts=start + np.linspace(0, HOUR - 1, n),
        features={"x": rng.normal(mean, 1.0, n)},
        scores=rng.uniform(size=n),
        versions=None if version is None else np.full(n, version, dtype=object),
    )


def _two_versions(tmp_path: Path, rng: np.random.Generator) -> Any:
    store = Store(str(tmp_path / "wk.db"))
    store.create_project("p")
    for version, mean in (("v1", 0.0), ("v2", 3.0)):
        store.register_model_version("p", "m", version, window="1h")
        store.put_reference("p", "m", version, _reference(rng, mean))
    return store


def _x(findings: list[dict[str, Any]], version: str | None) -> list[dict[str, Any]]:
    return [f for f in findings if f["check"] == "feature_drift" and f["subject"] == "x"
            and f["details"].get("version") == version]  # fmt: skip


def test_each_version_is_checked_against_its_own_reference(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    store = _two_versions(tmp_path, rng)
    # A canary: both versions serve in the same hour, each like its own validation data.
    store.log_events("p", "m", _events(rng, T0, 400, 0.0, "v1", "a"))
    store.log_events("p", "m", _events(rng, T0, 400, 3.0, "v2", "b"))
    run = run_monitors(store, "p", "m", now=T0 + HOUR + 1, send=False)
    assert len(run.windows) == 1 and run.windows[0][2] == 800
    v1, v2 = _x(run.findings, "v1"), _x(run.findings, "v2")
    assert v1 and v2, "each version gets its own findings"
    assert not any(f["drift"] for f in v1 + v2), "pooled, or checked against one reference"
    stored = store.list_findings("p", "m")
    assert {f["details"].get("version") for f in stored if f["check"] == "feature_drift"} == {
        "v1", "v2"}
    events = {v["labels"].get("version"): v["value"]
              for v in store.list_metric_values("p", "m", name="events")}  # fmt: skip
    assert events == {"v1": 400.0, "v2": 400.0}
    # Next hour v2's inputs move: only v2 drifts, and the alert names v2.
    store.log_events("p", "m", _events(rng, T0 + HOUR, 400, 0.0, "v1", "c"))
    store.log_events("p", "m", _events(rng, T0 + HOUR, 400, 6.0, "v2", "d"))
    again = run_monitors(store, "p", "m", now=T0 + 2 * HOUR + 1, send=False)
    assert not any(f["drift"] for f in _x(again.findings, "v1"))
    assert all(f["drift"] for f in _x(again.findings, "v2"))
    assert store.get_state("p", "runner:m")["versions"].keys() == {"v1", "v2"}
    store.close()


def test_alerts_carry_the_version(tmp_path: Path, rng: np.random.Generator) -> None:
    from watchkeeper.checks import default_config

    store = _two_versions(tmp_path, rng)
    cfg = default_config(store.get_reference("p", "m", "v1"))
    cfg.rules = [{"name": "drift", "checks": ["feature_drift"], "subjects": ["x"], "k": 1,
                  "n": 1}]  # fmt: skip
    store.put_monitor_config("p", "m", cfg.to_dict())
    store.log_events("p", "m", _events(rng, T0, 400, 0.0, "v1", "a"))
    store.log_events("p", "m", _events(rng, T0, 400, 9.0, "v2", "b"))
    run = run_monitors(store, "p", "m", now=T0 + HOUR + 1, send=False)
    firing = [e.alert for e in run.events if e.kind == "firing"]
    assert [a["version"] for a in firing] == ["v2"]
    assert "version=v2" in firing[0]["key"] and firing[0]["labels"]["version"] == "v2"
    assert "[version v2]" in firing[0]["summary"]
    store.close()


def test_reregistering_an_old_version_does_not_make_it_current(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    from watchkeeper.runner import load_context

    store = _two_versions(tmp_path, rng)
    store.register_model_version("p", "m", "v1", expected_volume=1000.0)  # an update of v1
    ctx = load_context(store, "p", "m")
    assert ctx is not None and ctx.version == "v2"
    # Events without a version were served by the serving version (v2) and count as its own:
    # checked against v2's reference, calm, and labelled v2.
    store.log_events("p", "m", _events(rng, T0, 400, 3.0, None, "u"))
    run = run_monitors(store, "p", "m", now=T0 + HOUR + 1, send=False)
    unversioned = _x(run.findings, "v2")
    assert unversioned and not any(f["drift"] for f in unversioned)
    store.close()


def test_the_first_run_backfills_every_closed_window_bounded(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    store = _two_versions(tmp_path, rng)
    for h in range(5):
        store.log_events("p", "m", _events(rng, T0 + h * HOUR, 100, 0.0, "v1", f"h{h}"))
    run = run_monitors(store, "p", "m", now=T0 + 5 * HOUR + 1, send=False)
    assert [s for s, *_ in run.windows] == [T0 + h * HOUR for h in range(5)]
    # The bound is configurable: a fresh model keeps only the newest windows.
    other = _two_versions(tmp_path / "b", rng) if (tmp_path / "b").mkdir() is None else None
    for h in range(5):
        other.log_events("p", "m", _events(rng, T0 + h * HOUR, 100, 0.0, "v1", f"h{h}"))
    bounded = run_monitors(other, "p", "m", now=T0 + 5 * HOUR + 1, send=False, max_windows=2)
    assert [s for s, *_ in bounded.windows] == [T0 + 3 * HOUR, T0 + 4 * HOUR]
    # A far-away "now" costs no more than the bound.
    started = time.perf_counter()
    far = run_monitors(other, "p", "m", now=1e12, send=False, max_windows=2)
    assert len(far.windows) == 2 and time.perf_counter() - started < 30
    store.close()
    other.close()
