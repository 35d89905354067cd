"""The runner with the outlier and adversary checks: a burst of outliers is a transient, a probing
source gets a finding and an alert naming it, benign sources stay quiet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from watchkeeper.profiles import profile
from watchkeeper.runner import run_monitors
from watchkeeper.window import Window

HOUR = 3600.0
T0 = 1_700_000_000.0 - (1_700_000_000.0 % HOUR)
OP = {"threshold": 0.5, "tpr": 0.9, "fpr": 0.02}
D = 8


def _events(
    rng: np.random.Generator, n: int, start: float, prefix: str, sources: int = 20
) -> Window:
    emb = rng.normal(size=(n, D))
    s = 1 / (1 + np.exp(-(emb[:, 0] * 2 - 2)))
    return Window.from_columns(
        ids=[f"{prefix}-{i}" for i in range(n)],
        ts=start + np.sort(rng.uniform(0, HOUR - 1, n)),
        features={"x": emb[:, 1]},
        scores=s,
        embeddings=emb,
        tags={"source": rng.choice([f"client{i}" for i in range(sources)], n)},
    )


@pytest.fixture
def store(tmp_path: Path, rng: np.random.Generator) -> Iterator[Any]:
    from watchkeeper.store import Store

    s = Store(str(tmp_path / "wk.db"))
    s.create_project("p")
    s.register_model_version("p", "m", "v1", operating_point=OP, window="1h")
    ref = _events(rng, 3000, T0 - 10 * HOUR, "r")
    s.put_reference("p", "m", "v1", ref, profile=profile(ref).to_dict())
    try:
        yield s
    finally:
        s.close()


def test_outliers_and_a_probing_source(store: Any, rng: np.random.Generator) -> None:
    cache: dict[Any, Any] = {}
    # Hour 0: calm. Hour 1: a burst of extreme events. Hour 2: a source probes the boundary.
    store.log_events("p", "m", _events(rng, 1500, T0, "h0"))
    calm = run_monitors(store, "p", "m", now=T0 + HOUR + 1, cache=cache)
    watched = ("outliers", "adversary")
    assert not [f for f in calm.findings if f["check"].startswith(watched) and f["drift"]]

    burst = _events(rng, 1500, T0 + HOUR, "h1")
    emb = burst.embeddings.copy()
    emb[:80] += 8.0
    store.log_events("p", "m", Window(**{**burst.__dict__, "embeddings": emb}))
    r1 = run_monitors(store, "p", "m", now=T0 + 2 * HOUR + 1, cache=cache)
    (out,) = [f for f in r1.findings if f["check"] == "outliers"]
    assert out["drift"] and out["details"]["kind"] == "transient"
    assert out["details"]["top_ids"][0].startswith("h1-")
    assert any(t["rule"] == "outliers" for t in r1.transients)  # one window: not an alert
    # Every event's score is stored; the explorer lists the most unusual first.
    top = store.outlier_events("p", "m", max_p_value=0.01, start=T0 + HOUR, end=T0 + 2 * HOUR)
    assert len(top) >= 70 and all(e["p_value"] <= 0.01 for e in top)
    assert sum(e["id"].startswith("h1-") and int(e["id"][3:]) < 80 for e in top) >= 75
    assert [e["p_value"] for e in top] == sorted(e["p_value"] for e in top)
    with pytest.raises(ValueError, match="max_p_value"):
        store.outlier_events("p", "m", max_p_value=0)
    with pytest.raises(ValueError, match="limit"):
        store.outlier_events("p", "m", limit=10**6)

    hour2 = _events(rng, 1500, T0 + 2 * HOUR, "h2")
    n_probe = 300
    probe_emb = rng.normal(size=(n_probe, D))
    probe_emb[:, 0] = 1.0 + rng.uniform(-0.02, 0.02, n_probe)  # score ~ 0.5: on the threshold
    probe = Window.from_columns(
        ids=[f"probe-{i}" for i in range(n_probe)],
        ts=T0 + 2 * HOUR + np.sort(rng.uniform(0, HOUR - 1, n_probe)),
        features={"x": probe_emb[:, 1]},
        scores=1 / (1 + np.exp(-(probe_emb[:, 0] * 2 - 2))),
        embeddings=probe_emb,
        tags={"source": np.array(["mallory"] * n_probe, dtype=object)},
    )
    store.log_events("p", "m", hour2)
    store.log_events("p", "m", probe)
    r2 = run_monitors(store, "p", "m", now=T0 + 3 * HOUR + 1, cache=cache)
    named = {
        f["subject"] for f in r2.findings if f["check"].startswith("adversary.") and f["drift"]
    }
    assert "source=mallory" in named
    assert all(s in ("*", "source=mallory") for s in named)
    firing = [e.alert for e in r2.events if e.kind == "firing" and e.alert["rule"] == "adversaries"]
    assert firing and all("mallory" in str(a) for a in firing)
