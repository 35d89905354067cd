"""The HTTP client: batching, delivery, spooling while the server is away, replay in order."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from sdk_fixtures import Live, LiveServer, free_port

from watchkeeper.sdk import Client
from watchkeeper.sdk._spool import Outgoing, Spool


def _client(url: str, token: str, spool: Path, **kw: object) -> Client:
    opts: dict[str, object] = {"flush_interval": 0.05, "retry_base": 0.05, "retry_max": 0.2}
    opts.update(kw)
    return Client(url, token, spool_dir=spool, **opts)  # type: ignore[arg-type]


def test_log_and_log_batch_are_delivered(live: Live, tmp_path: Path) -> None:
    c = _client(live.url, live.token, tmp_path, batch_size=100)
    for i in range(250):
        features = {"x": i, "c": "a" if i % 2 else None}
        c.log("m", id=f"r{i}", score=i / 250, features=features, embedding=[1.0, 2.0],
              latency_ms=3.0, tags={"source": "web"}, version="v1")  # fmt: skip
    c.log_batch(
        "m",
        ids=[f"b{i}" for i in range(300)],
        scores=np.linspace(0, 1, 300),
        features={"x": np.arange(300.0), "c": np.array(["u", "v", "w"] * 100)},
        embeddings=np.ones((300, 2), dtype=np.float32),
        version="v1",
    )
    c.log_labels("m", ["r1", "b2"], [1, 0])
    assert c.flush(timeout=20)
    assert c.stats["accepted"] == 550
    assert c.stats["sent_batches"] >= 6  # batches of at most 100 events, plus labels
    w = live.store.read_window(live.project, "m", last_n=1000)
    assert len(w) == 550
    labels = dict(zip(w.ids.tolist(), w.labels.tolist(), strict=True))
    assert str(labels["r1"]) == "1" and str(labels["b2"]) == "0"
    assert w.embeddings is not None and w.embeddings.shape == (550, 2)
    c.close()


def test_environment_travels_with_each_batch(live: Live, tmp_path: Path) -> None:
    c = _client(live.url, live.token, tmp_path)
    c.log("m", id="a", score=0.5)
    assert c.flush(timeout=10)
    c.close()
    envs = live.store.serving_environments(live.project, "m")
    assert envs, "no serving environment stored"
    env = envs[-1].get("environment", envs[-1])
    assert "python" in str(env) and "numpy" in str(env)


def test_server_away_then_back_delivers_everything_once(store: object, tmp_path: Path) -> None:
    project = f"p-away-{time.time_ns()}"
    store.create_project(project)  # type: ignore[attr-defined]
    store.register_model(project, "m")  # type: ignore[attr-defined]
    token = store.create_token(project, {"ingest"})  # type: ignore[attr-defined]
    server = LiveServer(store, free_port())
    c = _client(server.url, token, tmp_path, batch_size=50)
    for i in range(400):
        c.log("m", id=f"e{i}", score=0.1)
    assert not c.flush(timeout=0.5)  # nobody listens yet
    assert c.stats["spooled_events"] > 0
    assert c.pending() == 400
    server.start()
    try:
        assert c.flush(timeout=20)
        assert c.pending() == 0
        assert store.count_events(project, "m") == 400  # type: ignore[attr-defined]
        assert c.stats["accepted"] == 400 and c.stats["duplicates"] == 0
    finally:
        c.close()
        server.stop()


def test_spool_outlives_the_client(store: object, tmp_path: Path) -> None:
    project = f"p-restart-{time.time_ns()}"
    store.create_project(project)  # type: ignore[attr-defined]
    store.register_model(project, "m")  # type: ignore[attr-defined]
    token = store.create_token(project, {"ingest"})  # type: ignore[attr-defined]
    server = LiveServer(store, free_port())
    first = _client(server.url, token, tmp_path)
    first.log_batch("m", ids=[f"e{i}" for i in range(120)], scores=np.zeros(120))
    assert not first.close(timeout=0.3)  # server down: the batch stays in the spool file
    server.start()
    try:
        second = _client(server.url, token, tmp_path)
        assert second.flush(timeout=20)  # replays the first client's spool without a log call
        assert store.count_events(project, "m") == 120  # type: ignore[attr-defined]
        second.log("m", id="late", score=1.0)
        assert second.flush(timeout=20)
        second.close()
        assert store.count_events(project, "m") == 121  # type: ignore[attr-defined]
    finally:
        server.stop()


def test_refused_batch_goes_to_dead_letters_and_does_not_block(live: Live, tmp_path: Path) -> None:
    c = _client(live.url, live.token, tmp_path)
    c.log("unregistered", id="x", score=0.5)
    c.log("m", id="ok", score=0.5)
    assert c.flush(timeout=10)
    c.close()
    assert c.stats["rejected_events"] == 1
    assert "404" in (c.last_error or "")
    dead = list(tmp_path.glob("rejected-*.jsonl"))
    assert dead and b"unregistered" in dead[0].read_bytes()
    assert live.store.count_events(live.project, "m") == 1


def test_bad_arguments_fail_at_the_call() -> None:
    c = Client("http://127.0.0.1:1", "t")
    with pytest.raises(ValueError, match="id"):
        c.log("m", id=None, score=0.1)
    with pytest.raises(ValueError, match="score"):
        c.log("m", id="a", score="high")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="scores: 2 values, but 3 ids"):
        c.log_batch("m", ids=["a", "b", "c"], scores=[0.1, 0.2])
    with pytest.raises(ValueError, match=r"embeddings: expected shape \(2, d\)"):
        c.log_batch("m", ids=["a", "b"], embeddings=np.ones(2))
    with pytest.raises(ValueError, match=r"features.x\[1\]: infinite value"):
        c.log_batch("m", ids=["a", "b"], features={"x": [1.0, np.inf]})
    with pytest.raises(ValueError, match="labels: 1 values, but 2 ids"):
        c.log_labels("m", ["a", "b"], [1])
    with pytest.raises(ValueError, match="model"):
        c.log("", id="a")
    bad = Client("localhost:8000", "t")
    with pytest.raises(ValueError, match="url"):
        bad.log("m", id="a")


def test_log_returns_at_once(tmp_path: Path) -> None:
    c = _client(f"http://127.0.0.1:{free_port()}", "t", tmp_path, flush_interval=60)
    c.log("m", id="warm", score=0.1)
    start = time.perf_counter()
    for i in range(5000):
        c.log("m", id=f"e{i}", score=0.5, features={"x": 1.0})
    per_call = (time.perf_counter() - start) / 5000
    assert per_call < 200e-6, per_call
    c.close(timeout=0.1)


def test_spool_drops_a_torn_last_line(tmp_path: Path) -> None:
    s = Spool(tmp_path, "http://x")
    s.open()
    s.append([Outgoing("events", "m", 2, b'{"a":1}'), Outgoing("labels", "m", 1, b"{}")])
    with open(s.path, "ab") as f:
        f.write(b'{"kind": "events", "model": "m", "n": 5}\t{"trunc')
    s.close()
    again = Spool(tmp_path, "http://x")
    again.open()
    head = again.head()
    assert head is not None and head[0].n == 2
    again.advance(head[1])
    head = again.head()
    assert head is not None and head[0].kind == "labels"
    again.advance(head[1])
    assert not again.pending() and again.pending_events() == 0
    assert again.path.stat().st_size < 64  # renewed: only its header line is left
    again.close()


def test_two_clients_get_two_spool_files(tmp_path: Path) -> None:
    a, b = Spool(tmp_path, "http://x"), Spool(tmp_path, "http://x")
    a.open()
    b.open()
    assert a.path != b.path
    a.close()
    b.close()


def test_lazy_export() -> None:
    import watchkeeper

    assert watchkeeper.Client is Client
    with pytest.raises(AttributeError):
        _ = watchkeeper.NoSuchThing  # type: ignore[attr-defined]


def test_mixed_rows_reach_the_server_intact(live: Live, tmp_path: Path) -> None:
    c = _client(live.url, live.token, tmp_path)
    c.log("m", id="a", score=0.1, probs=[0.9, 0.1], embedding=[1.0, 2.0], features={"x": 1})
    c.log("m", id="b", score=0.2, features={"x": None, "k": "u"})  # no probs, no embedding
    c.log_batch("m", ids=["c"], scores=[0.3], features={"k": ["v"]})
    with pytest.raises(ValueError, match="embedding: 3 values, but earlier events"):
        c.log("m", id="d", embedding=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"features\.x: expected a number"):
        c.log("m", id="e", features={"x": [1, 2]})
    assert c.flush(timeout=10), c.last_error
    c.close()
    assert c.stats["rejected_events"] == 0
    w = live.store.read_window(live.project, "m", last_n=10)
    order = np.argsort(w.ids.astype(str))
    assert w.ids[order].tolist() == ["a", "b", "c"]
    assert w.embeddings is not None and np.isnan(w.embeddings[order][1]).all()


def test_batches_over_the_server_limit_are_split(store: object, tmp_path: Path) -> None:
    project = f"p-split-{time.time_ns()}"
    store.create_project(project)  # type: ignore[attr-defined]
    store.register_model(project, "m")  # type: ignore[attr-defined]
    token = store.create_token(project, {"ingest"})  # type: ignore[attr-defined]
    server = LiveServer(store, free_port(), max_batch_events=50)
    server.start()
    try:
        c = _client(server.url, token, tmp_path, batch_size=200)
        c.log_batch(
            "m",
            ids=[f"e{i}" for i in range(300)],
            features={"x": np.arange(300.0)},
            embeddings=np.ones((300, 4), dtype=np.float32),
            scores=np.full(300, 0.5),
        )
        c.log_labels("m", [f"e{i}" for i in range(120)], [1] * 120)
        assert c.flush(timeout=30), c.last_error
        c.close()
    finally:
        server.stop()
    assert c.stats["rejected_events"] == 0
    assert c.stats["accepted"] == 300
    w = store.read_window(project, "m", last_n=500)  # type: ignore[attr-defined]
    assert len(w) == 300
    assert sorted(w.features["x"].tolist()) == list(np.arange(300.0))
    assert sum(v is not None for v in w.labels) == 120
