"""Events, labels and windows: idempotency, the label join, columnar read-back, bad input."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from watchkeeper.store import IngestResult, Store
from watchkeeper.window import Window


def batch(
    rng: np.random.Generator, start: int, n: int, *, d: int = 8, version: str = "v1"
) -> Window:
    return Window.from_columns(
        ids=[f"e{i}" for i in range(start, start + n)],
        ts=np.arange(start, start + n, dtype=float),
        features={"x": rng.normal(size=n), "country": rng.choice(["fr", "de"], n).astype(object)},
        scores=rng.random(n),
        probs=rng.dirichlet([1, 1, 1], n),
        predicted=rng.integers(0, 2, n).astype(object),
        embeddings=rng.normal(size=(n, d)).astype(np.float32),
        latency_ms=rng.random(n) * 10,
        tags={"source": np.array(["web"] * n, dtype=object)},
        versions=np.array([version] * n, dtype=object),
    )


def test_round_trip_every_column(store: Store, rng: np.random.Generator) -> None:
    sent = batch(rng, 0, 50)
    assert store.log_events("p", "m", sent) == IngestResult(50, 0)
    got = store.read_window("p", "m", start=0, end=100)
    assert got.ids.tolist() == sent.ids.tolist()
    np.testing.assert_array_equal(got.ts, sent.ts)
    np.testing.assert_array_equal(got.features["x"], sent.features["x"])
    assert got.features["country"].tolist() == sent.features["country"].tolist()
    np.testing.assert_array_equal(got.scores, sent.scores)
    np.testing.assert_array_equal(got.probs, sent.probs)
    assert got.predicted.tolist() == sent.predicted.tolist()
    assert got.embeddings.dtype == np.float32
    np.testing.assert_array_equal(got.embeddings, sent.embeddings)
    np.testing.assert_array_equal(got.latency_ms, sent.latency_ms)
    assert got.tags["source"].tolist() == ["web"] * 50
    assert got.versions.tolist() == ["v1"] * 50
    assert got.labels.tolist() == [None] * 50
    assert (got.start, got.end) == (0, 100)
    assert got.features["x"].dtype == np.float64
    got.embeddings[0, 0] = 1.0  # writable arrays, no copy needed by the caller
    lean = store.read_window("p", "m", start=0, end=100, embeddings=False)
    assert lean.embeddings is None and lean.scores.tolist() == got.scores.tolist()


def test_resent_batch_changes_nothing(store: Store, rng: np.random.Generator) -> None:
    first = batch(rng, 0, 100)
    assert store.log_events("p", "m", first) == IngestResult(100, 0)
    before = store.read_window("p", "m", last_n=1000)
    again = batch(rng, 50, 100)  # 50 old ids (with other values) and 50 new
    assert store.log_events("p", "m", again) == IngestResult(50, 50)
    assert store.log_events("p", "m", first) == IngestResult(0, 100)
    after = store.read_window("p", "m", last_n=1000)
    assert store.count_events("p", "m") == 150
    # the first write of an id wins: stored values of old ids are unchanged
    np.testing.assert_array_equal(after.take(np.arange(100)).scores, before.scores)


def test_duplicate_ids_within_one_batch(store: Store) -> None:
    w = Window.from_columns(ids=["a", "b", "a"], ts=[1.0, 2.0, 3.0], scores=[0.1, 0.2, 0.3])
    assert store.log_events("p", "m", w) == IngestResult(2, 1)
    got = store.read_window("p", "m", last_n=10)
    assert got.ids.tolist() == ["a", "b"]
    assert got.scores.tolist() == [0.1, 0.2]


def test_labels_join_before_and_after_the_event(store: Store, rng: np.random.Generator) -> None:
    assert store.log_labels("p", "m", ["e1", "e3"], [1, "cat"]) == 2  # before the events
    store.log_events("p", "m", batch(rng, 0, 5))
    assert store.log_labels("p", "m", np.array(["e4"], dtype=object), np.array([0])) == 1
    store.log_labels("p", "m", ["e1"], [0])  # a later label replaces the earlier
    got = store.read_window("p", "m", last_n=5)
    assert got.labels.tolist() == [None, 0, None, "cat", 0]


def test_time_range_last_n_and_version(store: Store, rng: np.random.Generator) -> None:
    store.log_events("p", "m", batch(rng, 0, 30, version="v1"))
    store.log_events("p", "m", batch(rng, 30, 30, version="v2"))
    w = store.read_window("p", "m", start=10, end=20)
    assert w.ts.tolist() == list(range(10, 20))
    w = store.read_window("p", "m", last_n=5)
    assert w.ts.tolist() == [55, 56, 57, 58, 59]
    assert (w.start, w.end) == (55, 59)
    w = store.read_window("p", "m", last_n=5, version="v1")
    assert w.ts.tolist() == [25, 26, 27, 28, 29]
    w = store.read_window("p", "m", start=25, end=35, version="v2")
    assert w.ts.tolist() == [30, 31, 32, 33, 34]
    assert store.count_events("p", "m", version="v2") == 30
    assert store.count_events("p", "m", start=0, end=10) == 10
    empty = store.read_window("p", "m", start=1000)
    assert len(empty) == 0 and empty.start == 1000


def test_batches_with_different_columns(store: Store) -> None:
    a = Window.from_columns(ids=["a"], ts=[1.0], features={"x": [1.0]}, scores=[0.5])
    b = Window.from_columns(
        ids=["b"], ts=[2.0], features={"y": ["u"]}, embeddings=[[1.0, 2.0]], tags={"s": ["k"]}
    )
    c = Window.from_columns(ids=["c"], ts=[3.0], features={"x": ["text"]})
    for w in (a, b, c):
        store.log_events("p", "m", w)
    got = store.read_window("p", "m", last_n=3)
    assert got.features["x"].tolist() == [1.0, None, "text"]  # numeric then categorical
    assert got.features["y"].tolist() == [None, "u", None]
    assert np.isnan(got.scores[1:]).all() and got.scores[0] == 0.5
    assert np.isnan(got.embeddings[[0, 2]]).all()
    assert got.embeddings[1].tolist() == [1.0, 2.0]
    assert got.tags["s"].tolist() == [None, "k", None]


def test_missing_values_survive(store: Store) -> None:
    w = Window.from_columns(
        ids=["a", "b"],
        ts=[1.0, 2.0],
        features={"x": [np.nan, 1.0], "c": np.array(["u", np.nan], dtype=object)},
        scores=[np.nan, 0.3],
        embeddings=[[np.nan, np.nan], [1.0, 2.0]],
    )
    store.log_events("p", "m", w)
    got = store.read_window("p", "m", last_n=2)
    assert np.isnan(got.features["x"][0]) and got.features["c"].tolist() == ["u", None]
    assert np.isnan(got.scores[0]) and np.isnan(got.embeddings[0]).all()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ts": [0.0, np.nan]}, "ts[1]"),
        ({"scores": [0.1, np.inf]}, "scores[1]"),
        ({"ids": ["a", ""]}, "ids[1]"),
        ({"embeddings": [[1.0, np.nan], [1.0, 2.0]]}, "embeddings[0]"),
        ({"features": {"x": np.array([1, {"a": 1}], dtype=object)}}, "features.x[1]"),
        ({"probs": [[0.5, np.inf], [0.5, 0.5]]}, "probs[0]"),
        ({"versions": np.array(["v1", 3], dtype=object)}, "versions[1]"),
        # PostgreSQL's text cannot hold NUL: both backends refuse it, naming the value
        ({"ids": ["a", "b\x00"]}, "ids[1]"),
        ({"versions": np.array(["v1", "v\x002"], dtype=object)}, "versions[1]"),
        ({"tags": {"client": np.array(["x", "\x00"], dtype=object)}}, "tags.client[1]"),
        ({"features": {"c": np.array(["ok\x00", "b"], dtype=object)}}, "features.c[0]"),
        ({"predicted": np.array(["1", "\x00"], dtype=object)}, "predicted[1]"),
    ],
)
def test_bad_batch_names_the_field_and_stores_nothing(
    store: Store, change: dict[str, object], field: str
) -> None:
    store.log_events("p", "m", Window.from_columns(ids=["z"], ts=[9.0], scores=[0.5]))
    fields: dict[str, object] = {"ids": ["a", "b"], "ts": [0.0, 1.0], "scores": [0.1, 0.2]}
    fields.update(change)
    try:
        w = Window.from_columns(**fields)  # type: ignore[arg-type]
    except ValueError:
        pytest.skip("the Window itself refuses this input")
    if field == "ids[1]":
        w = Window(ids=np.array(["a", ""], dtype=object), ts=np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=field.replace("[", r"\[").replace("]", r"\]")):
        store.log_events("p", "m", w)
    assert store.count_events("p", "m") == 1
    assert store.ingest_stats("p", "m")["accepted"] == 1


def test_wrong_types_and_missing_model(store: Store) -> None:
    w = Window.from_columns(ids=["a"], ts=[1.0])
    with pytest.raises(ValueError, match="model: 'nope'"):
        store.log_events("p", "nope", w)
    with pytest.raises(ValueError, match="project: 'q'"):
        store.log_events("q", "m", w)
    with pytest.raises(ValueError, match=r"events: expected a watchkeeper\.window\.Window"):
        store.log_events("p", "m", {"ids": ["a"]})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"ids\[0\]"):
        store.log_events("p", "m", Window(ids=np.array([None], dtype=object), ts=np.zeros(1)))
    with pytest.raises(ValueError, match=r"labels\[1\]"):
        store.log_labels("p", "m", ["a", "b"], [1, None])
    with pytest.raises(ValueError, match=r"labels\[0\]: NUL"):
        store.log_labels("p", "m", ["a", "b"], ["x\x00", "y"])
    with pytest.raises(ValueError, match=r"ids\[1\]: NUL"):
        store.log_labels("p", "m", ["a", "b\x00"], [1, 0])
    with pytest.raises(ValueError, match="labels: expected 1-D with 2 rows"):
        store.log_labels("p", "m", ["a", "b"], [1])
    with pytest.raises(ValueError, match="last_n"):
        store.read_window("p", "m", last_n=0)
    with pytest.raises(ValueError, match="model"):
        store.read_window("p", "nope")
    assert store.count_events("p", "m") == 0


def test_embedding_width_is_fixed_per_model(store: Store) -> None:
    store.log_events("p", "m", Window.from_columns(ids=["a"], ts=[1.0], embeddings=[[1.0, 2.0]]))
    with pytest.raises(ValueError, match="embeddings: 3 columns, but this model's stored"):
        store.log_events(
            "p", "m", Window.from_columns(ids=["b"], ts=[1.0], embeddings=[[1.0, 2.0, 3.0]])
        )
    assert store.count_events("p", "m") == 1


def test_counters_environments_and_event_times(store: Store, rng: np.random.Generator) -> None:
    env = {"python": "3.11.7", "packages": {"numpy": "2.4.0"}}
    store.log_events("p", "m", batch(rng, 0, 10), environment=env)
    store.log_events("p", "m", batch(rng, 5, 10), environment=env)
    store.log_events("p", "m", batch(rng, 15, 1), environment={"python": "3.12.1"})
    store.record_rejected("p", "m", 3)
    stats = store.ingest_stats("p", "m", since=0)
    assert stats["accepted"] == 16 and stats["duplicates"] == 5 and stats["rejected"] == 3
    assert stats["last_event_ts"] == 15.0 and stats["last_received_at"] > 0
    envs = store.serving_environments("p", "m")
    assert [e["environment"] for e in envs] == [env, {"python": "3.12.1"}]
    assert [e["events"] for e in envs] == [15, 1]
    assert store.serving_environments("p", "m", since=envs[1]["last_seen"] + 1) == []
    times = store.event_times("p", "m", ["e3", "zz", "e15"])
    assert times[0] == 3.0 and np.isnan(times[1]) and times[2] == 15.0


def test_retention_keeps_findings_and_metrics(store: Store, rng: np.random.Generator) -> None:
    store.log_events("p", "m", batch(rng, 0, 100))
    store.log_labels("p", "m", ["e5", "e95", "ghost"], [1, 0, 1])
    store.add_findings("p", "m", [{"check": "drift", "window_start": 0, "window_end": 50}])
    store.add_metric_values("p", "m", 10.0, {"flag_rate": 0.1})
    assert store.delete_events_before(60.0, batch=7) == 60
    assert store.count_events("p", "m") == 40
    assert store.read_window("p", "m", last_n=100).ts[0] == 60
    assert store.read_window("p", "m", last_n=100).labels.tolist().count(0) == 1
    assert len(store.list_findings("p", "m")) == 1
    assert len(store.list_metric_values("p", "m")) == 1
    assert store.delete_events_before(60.0) == 0
    assert store.delete_events_before(200.0) == 40
    with store.engine.connect() as conn:  # the chunk went with its last event
        assert conn.exec_driver_sql("SELECT count(*) FROM event_chunks").scalar() == 0
    with pytest.raises(ValueError, match="batch"):
        store.delete_events_before(1.0, batch=0)


def test_concurrent_writers(store: Store, rng: np.random.Generator) -> None:
    batches = [batch(rng, 100 * k, 100) for k in range(8)]
    errors: list[BaseException] = []

    def write(w: Window) -> None:
        try:
            for _ in range(2):  # every batch sent twice, from two threads at once
                store.log_events("p", "m", w)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in batches + batches]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert store.count_events("p", "m") == 800
    stats = store.ingest_stats("p", "m")
    assert (stats["accepted"], stats["duplicates"]) == (800, 2400)


def test_labels_racing_their_events_are_never_missed(store: Store) -> None:
    n, k = 40, 25  # 40 batches of 25 events; each label sent while its batch may be in flight
    errors: list[BaseException] = []

    def events() -> None:
        try:
            for b in range(n):
                ids = [f"r{b}-{i}" for i in range(k)]
                store.log_events("p", "m", Window.from_columns(ids=ids, ts=np.full(k, float(b))))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def labels() -> None:
        try:
            for b in range(n):
                store.log_labels("p", "m", [f"r{b}-{i}" for i in range(k)], [b] * k)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=events), threading.Thread(target=labels)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    w = store.read_window("p", "m", last_n=n * k)
    assert len(w) == n * k
    assert w.labels.tolist() == [int(t) for t in w.ts]


def test_two_processes_share_a_sqlite_file(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.db")
    Store(db).register_model("p", "m")
    code = (
        "import sys, numpy as np\n"
        "from watchkeeper.store import Store\n"
        "from watchkeeper.window import Window\n"
        "s = Store(sys.argv[1])\n"
        "for b in range(30):\n"
        "    ids = [f'e{b}-{i}' for i in range(50)]\n"
        "    s.log_events('p', 'm', Window.from_columns(ids=ids, ts=np.full(50, float(b))))\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, db]) for _ in range(2)]
    assert [p.wait(120) for p in procs] == [0, 0]
    store = Store(db)
    assert store.count_events("p", "m") == 1500  # both sent the same ids: stored once
    stats = store.ingest_stats("p", "m")
    assert (stats["accepted"], stats["duplicates"]) == (1500, 1500)


def test_label_sent_while_its_event_commits(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The label batch runs while the event batch has inserted but not yet committed: the
    store must make one wait for the other, or the event would never show its label."""
    inserted, labelled = threading.Event(), threading.Event()
    original = Store._copy_early_labels

    def slow_copy(self: Store, *args: object) -> None:
        original(self, *args)  # type: ignore[arg-type]
        inserted.set()
        labelled.wait(1.0)  # give the label batch every chance to run before the commit

    monkeypatch.setattr(Store, "_copy_early_labels", slow_copy)

    def send_label() -> None:
        inserted.wait(10)
        store.log_labels("p", "m", ["a"], [1])
        labelled.set()

    thread = threading.Thread(target=send_label)
    thread.start()
    store.log_events("p", "m", Window.from_columns(ids=["a"], ts=[1.0]))
    thread.join()
    assert store.read_window("p", "m", last_n=1).labels.tolist() == [1]


def test_windows_over_partly_covered_chunks(store: Store) -> None:
    store.log_events("p", "m", Window.from_columns(ids=["b"], ts=[2.0], scores=[0.0]))
    # unsorted, one id already stored (a gap in this chunk), mixed versions
    w = Window.from_columns(
        ids=["d", "b", "a", "c", "e"],
        ts=[4.0, 2.0, 1.0, 3.0, 4.0],
        scores=[0.4, 0.9, 0.1, 0.3, 0.5],
        versions=["v2", "v1", "v1", "v2", "v1"],
    )
    assert store.log_events("p", "m", w) == IngestResult(4, 1)
    store.log_labels("p", "m", ["c", "b"], ["yes", "no"])
    got = store.read_window("p", "m")
    assert got.ids.tolist() == ["a", "b", "c", "d", "e"]
    assert got.scores.tolist() == [0.1, 0.0, 0.3, 0.4, 0.5]  # b: the first write wins
    assert got.labels.tolist() == [None, "no", "yes", None, None]
    assert store.read_window("p", "m", start=2.5, end=4.5).ids.tolist() == ["c", "d", "e"]
    assert store.read_window("p", "m", version="v2").ids.tolist() == ["c", "d"]
    assert store.read_window("p", "m", version="v1", start=1.5).ids.tolist() == ["e"]
    # ties at the cut of last_n: storage order decides, and exactly N come back
    assert store.read_window("p", "m", last_n=1).ids.tolist() == ["e"]
    assert store.read_window("p", "m", last_n=2).ids.tolist() == ["d", "e"]
    assert store.read_window("p", "m", last_n=3, end=4.0).ids.tolist() == ["a", "b", "c"]
    assert len(store.read_window("p", "m", last_n=100)) == 5


def test_big_batch_is_split_into_chunks(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("watchkeeper.store._event_log.CHUNK_ROWS", 4)
    ids = [f"e{i}" for i in range(10)] + ["e2"]  # a repeat that lands in another part
    w = Window.from_columns(ids=ids, ts=np.arange(11.0), scores=np.arange(11.0) / 10)
    assert store.log_events("p", "m", w) == IngestResult(10, 1)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM event_chunks").scalar() == 3
    got = store.read_window("p", "m")
    assert got.ids.tolist() == [f"e{i}" for i in range(10)]
    assert got.scores.tolist() == [i / 10 for i in range(10)]
    bad = Window.from_columns(ids=[f"x{i}" for i in range(10)], ts=[0.0] * 9 + [np.nan])
    with pytest.raises(ValueError, match=r"ts\[9\]"):  # the index in the whole batch
        store.log_events("p", "m", bad)
