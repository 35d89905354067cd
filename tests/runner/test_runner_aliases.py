"""Monitoring follows the registry: the champion alias picks the reference, a rollback moves
monitoring back to the previous version's reference in the next window."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from watchkeeper.runner import run_monitors
from watchkeeper.store import Store
from watchkeeper.window import Window

HOUR = 3600.0
T0 = 1_700_000_000.0 - (1_700_000_000.0 % HOUR)


def _reference(rng: np.random.Generator, mean: float) -> Window:
    n = 2000
    s = rng.uniform(size=n)
    return Window.from_columns(
        features={"x": rng.normal(mean, 1.0, n)},
        scores=s,
        labels=(rng.uniform(size=n) < s).astype(int),
    )


def _x_drift(findings: list[dict]) -> bool:
    hits = [f for f in findings if f["check"] == "feature_drift" and f["subject"] == "x"]
    assert hits, "the feature drift check did not run"
    return any(bool(f["drift"]) for f in hits)


def test_rollback_returns_monitoring_to_the_previous_reference(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    store = Store(str(tmp_path / "wk.db"))
    store.create_project("p")
    for version, mean in (("v1", 0.0), ("v2", 3.0)):
        store.register_model_version("p", "m", version, window="1h")
        store.put_reference("p", "m", version, _reference(rng, mean))
    # production traffic looks like v1's reference, hour after hour
    for h in range(3):
        store.log_events(
            "p",
            "m",
            Window.from_columns(
                ids=[f"h{h}e{i}" for i in range(400)],
                ts=T0 + h * HOUR + np.linspace(0, HOUR - 1, 400),
                features={"x": rng.normal(0.0, 1.0, 400)},
                scores=rng.uniform(size=400),
            ),
        )
    # without an alias the newest version (v2) is monitored; the champion alias decides
    store.set_alias("p", "m", "champion", "v1", actor="ci", reason="first release")
    first = run_monitors(store, "p", "m", now=T0 + HOUR + 1, send=False)
    assert not _x_drift(first.findings)
    assert store.get_state("p", "runner:m")["version"] == "v1"

    store.set_alias("p", "m", "champion", "v2", actor="ana", reason="bad promotion")
    promoted = run_monitors(store, "p", "m", now=T0 + 2 * HOUR + 1, send=False)
    assert len(promoted.windows) == 1 and _x_drift(promoted.findings)
    assert store.get_state("p", "runner:m")["version"] == "v2"

    store.rollback_alias("p", "m", "champion", actor="oncall", reason="x drifted")
    back = run_monitors(store, "p", "m", now=T0 + 3 * HOUR + 1, send=False)
    assert len(back.windows) == 1 and back.windows[0][0] == T0 + 2 * HOUR
    assert not _x_drift(back.findings)
    assert store.get_state("p", "runner:m")["version"] == "v1"
    store.close()


def test_a_window_with_two_versions_gives_two_evaluations(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    """Champion v1 and challenger v2 serve side by side; each part is compared with its own
    version's reference, so neither drifts, where pooling against v1 would show drift."""
    store = Store(str(tmp_path / "wk.db"))
    store.create_project("p")
    for version, mean in (("v1", 0.0), ("v2", 3.0)):
        store.register_model_version("p", "m", version, window="1h")
        store.put_reference("p", "m", version, _reference(rng, mean))
    store.set_alias("p", "m", "champion", "v1", actor="ci")
    store.set_alias("p", "m", "challenger", "v2", actor="ci")
    n = 400
    versions = np.where(np.arange(n) % 4 == 0, "v2", "v1")
    x = np.where(versions == "v2", rng.normal(3.0, 1.0, n), rng.normal(0.0, 1.0, n))
    store.log_events(
        "p",
        "m",
        Window.from_columns(
            ids=[f"e{i}" for i in range(n)],
            ts=T0 + np.linspace(0, HOUR - 1, n),
            features={"x": x},
            scores=rng.uniform(size=n),
            versions=versions.tolist(),
        ),
    )
    result = run_monitors(store, "p", "m", now=T0 + HOUR + 1, send=False)
    assert len(result.windows) == 1
    assert [(e["version"], e["events"]) for e in result.evaluations] == [("v1", 300), ("v2", 100)]
    for version in ("v1", "v2"):
        mine = [f for f in result.findings if f["details"].get("version") == version]
        assert not _x_drift(mine), version
    stored = store.list_findings("p", "m", check="feature_drift", subject="x")
    assert sorted(f["details"]["version"] for f in stored) == ["v1", "v2"]
    # every version's metric values carry its name, the serving one's included
    assert {m["labels"].get("version") for m in store.list_metric_values("p", "m")} == {"v1", "v2"}

    # the same traffic judged against v1 alone (the pooled mistake) does drift
    pooled = Window.from_columns(
        ts=T0 + np.linspace(0, HOUR - 1, n), features={"x": x}, scores=rng.uniform(size=n)
    )
    from watchkeeper.runner import load_context, run_checks

    ctx = load_context(store, "p", "m")
    assert ctx is not None and ctx.version == "v1"
    findings, _ = run_checks(ctx, pooled, now=T0 + HOUR)
    assert _x_drift([f.to_dict() for f in findings])
    store.close()
