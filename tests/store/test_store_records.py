"""Projects, tokens, model versions, references, findings, metrics, alerts, config and state."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from watchkeeper.store import Store
from watchkeeper.store._store import HEAD, resolve_url
from watchkeeper.window import Window


def test_tokens_are_hashed_scoped_and_revocable(store: Store) -> None:
    token = store.create_token("p", {"ingest"})
    assert token.startswith("wk_") and len(token) > 40
    assert store.authenticate(token) == ("p", frozenset({"ingest"}))
    with store.engine.connect() as conn:
        stored = conn.exec_driver_sql("SELECT token_hash FROM api_tokens").scalars().all()
    assert token not in stored and len(stored[0]) == 64
    assert store.authenticate(token + "x") is None
    assert store.authenticate("") is None
    assert store.revoke_token(token) is True
    assert store.authenticate(token) is None
    assert store.revoke_token(token) is False
    with pytest.raises(ValueError, match="scopes"):
        store.create_token("p", {"root"})
    with pytest.raises(ValueError, match="scopes"):
        store.create_token("p", "ingest")
    with pytest.raises(ValueError, match="project: 'q'"):
        store.create_token("q", {"read"})


def test_projects_and_models(store: Store) -> None:
    store.create_project("p")  # again: no-op
    assert store.has_project("p") and not store.has_project("q")
    assert store.has_model("p", "m") and not store.has_model("p", "n")
    store.register_model("q", "n")  # creates project q
    assert store.list_projects() == ["p", "q"]
    assert store.list_models("q") == ["n"]
    assert not store.has_model("q", "m")  # nothing crosses projects
    with pytest.raises(ValueError, match="model"):
        store.register_model("p", "")
    with pytest.raises(ValueError, match="project"):
        store.create_project(3)  # type: ignore[arg-type]


def test_model_versions(store: Store) -> None:
    op = {"threshold": 0.5, "tpr": 0.9, "fpr": 0.02}
    store.register_model_version(
        "p",
        "m",
        "v1",
        artifact_uri="s3://b/model.pt",
        sha256="A" * 64,
        data_fingerprint="fp1",
        environment={"python": "3.11"},
        operating_point=op,
        expected_prevalence=0.1,
        expected_volume=1000,
        window="1d",
    )
    got = store.get_model_version("p", "m", "v1")
    assert got["operating_point"] == op and got["sha256"] == "a" * 64
    assert got["expected_prevalence"] == 0.1 and got["window"] == "1d"
    store.register_model_version("p", "m", "v1", expected_volume=2000)  # updates one field
    got = store.get_model_version("p", "m", "v1")
    assert got["expected_volume"] == 2000 and got["artifact_uri"] == "s3://b/model.pt"
    store.register_model_version("p", "new", "v1")  # registers the model too
    assert store.has_model("p", "new")
    assert [v["version"] for v in store.list_model_versions("p", "m")] == ["v1"]
    with pytest.raises(KeyError, match="v9"):
        store.get_model_version("p", "m", "v9")
    for kwargs, field in [
        ({"sha256": "xyz"}, "sha256"),
        ({"expected_prevalence": 1.5}, "expected_prevalence"),
        ({"expected_volume": float("nan")}, None),
        ({"expected_volume": -1}, "expected_volume"),
        ({"operating_point": [1, 2]}, "operating_point"),
        ({"environment": {"x": object()}}, "environment"),
    ]:
        if field is None:
            store.register_model_version("p", "m", "v2", **kwargs)  # NaN means "not given"
            continue
        with pytest.raises(ValueError, match=field):
            store.register_model_version("p", "m", "v3", **kwargs)
    assert [v["version"] for v in store.list_model_versions("p", "m")] == ["v1", "v2"]


def test_reference_round_trip(store: Store, rng: np.random.Generator) -> None:
    ref = Window.from_columns(
        ids=["a", "b", "c"],
        ts=[1.0, 2.0, 3.0],
        features={"x": [1.0, np.nan, 3.0], "c": ["u", None, "w"]},
        scores=[0.1, 0.5, 0.9],
        labels=[0, 1, 1],
        embeddings=rng.normal(size=(3, 4)).astype(np.float32),
        tags={"src": ["a", "b", "c"]},
    )
    store.put_reference("p", "m", "v1", ref, profile={"n": 3, "mean": float("nan")})
    got = store.get_reference("p", "m", "v1")
    assert got.ids.tolist() == ["a", "b", "c"] and got.labels.tolist() == [0, 1, 1]
    np.testing.assert_array_equal(got.features["x"], ref.features["x"])
    assert got.features["c"].tolist() == ["u", None, "w"]
    np.testing.assert_array_equal(got.embeddings, ref.embeddings)
    assert got.embeddings.dtype == np.float32 and got.tags["src"].tolist() == ["a", "b", "c"]
    assert store.get_reference_profile("p", "m", "v1") == {"n": 3, "mean": None}
    store.put_reference("p", "m", "v2", ref.take(np.array([0])))
    assert len(store.get_reference("p", "m")) == 1  # latest stored
    assert store.get_reference_profile("p", "m", "v2") is None
    store.put_reference("p", "m", "v1", ref.take(np.array([0, 1])))  # replaces v1's
    assert len(store.get_reference("p", "m", "v1")) == 2
    with pytest.raises(KeyError):
        store.get_reference("p", "m", "v9")
    with pytest.raises(ValueError, match="reference"):
        store.put_reference("p", "m", "v1", {"x": [1]})  # type: ignore[arg-type]


def test_findings(store: Store) -> None:
    finding = {
        "check": "feature_drift",
        "subject": "x",
        "method": "ks",
        "statistic": 0.3,
        "p_value": 0.001,
        "alpha": 0.05,
        "threshold": None,
        "drift": True,
        "severity": "warning",
        "window_start": 0.0,
        "window_end": 3600.0,
        "details": {"n": 100},
        "note": "kept",
    }
    assert store.add_findings("p", "m", [finding, {**finding, "subject": "y", "window_end": 7200}])
    found = store.list_findings("p", "m")
    assert [f["subject"] for f in found] == ["x", "y"]
    assert found[0]["drift"] is True and found[0]["p_value"] == 0.001
    assert found[0]["details"] == {"n": 100, "extra": {"note": "kept"}}
    assert [f["subject"] for f in store.list_findings("p", "m", since=5000)] == ["y"]
    assert store.list_findings("p", "m", check="other") == []
    assert [f["subject"] for f in store.list_findings("p", "m", limit=1)] == ["y"]
    with pytest.raises(ValueError, match=r"findings\[1\]\.check"):
        store.add_findings("p", "m", [finding, {"subject": "z"}])
    with pytest.raises(ValueError, match=r"findings\[0\]\.p_value"):
        store.add_findings("p", "m", [{**finding, "p_value": "small"}])
    assert len(store.list_findings("p", "m")) == 2  # all or nothing


def test_metric_values(store: Store) -> None:
    store.add_metric_values("p", "m", 10.0, {"flag_rate": 0.1, "psi": float("nan")})
    store.add_metric_values("p", "m", 20.0, {"flag_rate": 0.2}, labels={"segment": "fr"})
    store.add_metric_values("p", None, 15.0, {"cpu": 0.5})
    values = store.list_metric_values("p", "m", name="flag_rate")
    assert [(v["ts"], v["value"]) for v in values] == [(10.0, 0.1), (20.0, 0.2)]
    assert values[1]["labels"] == {"segment": "fr"}
    psi = store.list_metric_values("p", "m", name="psi")
    assert np.isnan(psi[0]["value"])
    assert [v["name"] for v in store.list_metric_values("p", since=0)] == ["cpu"]
    assert len(store.list_metric_values("p", "m", since=15, until=25)) == 1
    with pytest.raises(ValueError, match=r"values\.x"):
        store.add_metric_values("p", "m", 1.0, {"x": "high"})  # type: ignore[dict-item]
    with pytest.raises(ValueError, match="ts"):
        store.add_metric_values("p", "m", float("nan"), {"x": 1.0})


def test_alerts_config_and_state(store: Store) -> None:
    a = store.upsert_alert(
        "p", {"key": "drift:m:x", "model": "m", "status": "firing", "severity": "warning"}
    )
    b = store.upsert_alert("p", {"key": "drift:m:x", "status": "resolved", "value": 1.5})
    assert b["id"] == a["id"] and b["severity"] == "warning" and b["status"] == "resolved"
    assert b["created_at"] == a["created_at"] and b["updated_at"] >= a["updated_at"]
    store.upsert_alert("p", {"key": "other", "model": "m2", "status": "firing"})
    assert [x["key"] for x in store.list_alerts("p")] == ["other", "drift:m:x"]
    assert [x["key"] for x in store.list_alerts("p", status="resolved")] == ["drift:m:x"]
    assert [x["key"] for x in store.list_alerts("p", model="m2")] == ["other"]
    with pytest.raises(ValueError, match=r"alert\.key"):
        store.upsert_alert("p", {"status": "firing"})

    assert store.get_monitor_config("p", "m") is None
    store.put_monitor_config("p", "m", {"checks": [{"name": "ks"}]})
    store.put_monitor_config("p", "m", {"checks": []})
    assert store.get_monitor_config("p", "m") == {"checks": []}

    assert store.get_state("p", "adwin:m") is None
    store.put_state("p", "adwin:m", {"width": 3, "buckets": [1.0, 2.0]})
    store.put_state("p", "adwin:m", {"width": 4})
    assert store.get_state("p", "adwin:m") == {"width": 4}
    assert store.delete_state("p", "adwin:m") and store.get_state("p", "adwin:m") is None
    with pytest.raises(ValueError, match="state"):
        store.put_state("p", "k", [1])  # type: ignore[arg-type]


def test_migrated_schema_matches_the_metadata(store: Store) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from watchkeeper.store._schema import metadata

    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), metadata)
        version = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
    assert diff == []
    assert version == HEAD


def test_reopen_keeps_data_and_default_location(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("WATCHKEEPER_DB", raising=False)
    s = Store()
    s.create_project("p")
    s.close()
    assert (tmp_path / ".watchkeeper" / "watchkeeper.db").exists()
    assert Store().has_project("p")
    with sa.create_engine(
        f"sqlite:///{tmp_path / '.watchkeeper' / 'watchkeeper.db'}"
    ).connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    monkeypatch.setenv("WATCHKEEPER_DB", str(tmp_path / "env.db"))
    assert resolve_url(None) == f"sqlite:///{tmp_path / 'env.db'}"
    with pytest.raises(ValueError, match="synchronous"):
        Store(str(tmp_path / "x.db"), synchronous="SOMETIMES").open()
    with pytest.raises(ValueError, match="url"):
        Store("mysql://u@h/db").open()


def test_import_is_lazy() -> None:
    code = (
        "import sys, watchkeeper.store as s; "
        "assert 'sqlalchemy' not in sys.modules; s.Store; assert 'sqlalchemy' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_upgrade_from_0001_keeps_events(tmp_path: Path) -> None:
    """0002 regroups per-row events (0001) into chunks, 0003 copies labels onto events."""
    from alembic import command
    from alembic.config import Config

    from watchkeeper.store._store import MIGRATIONS

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS))
        config.attributes["connection"] = conn
        command.upgrade(config, "0001")
        conn.exec_driver_sql("INSERT INTO projects VALUES (1, 'p', 0)")
        conn.exec_driver_sql("INSERT INTO models VALUES (1, 1, 'm', 0, 2, NULL)")
        spec = '{"num":["score","f:x"],"obj":["f:c"]}'
        conn.exec_driver_sql("INSERT INTO feature_schemas VALUES (1, 1, 'h', ?)", (spec,))
        for i in range(3):
            nums = np.array([0.1 * i, float(i)]).tobytes()
            emb = None if i == 1 else np.array([i, -i], dtype=np.float32).tobytes()
            conn.exec_driver_sql(
                "INSERT INTO events (model_id, event_id, ts, version, schema_id, nums, objs, "
                "embedding, probs, received_at) VALUES (1, ?, ?, 'v1', 1, ?, ?, ?, NULL, 0)",
                (f"e{i}", float(i), nums, f'["c{i}"]', emb),
            )
        conn.exec_driver_sql("INSERT INTO labels VALUES (1, 'e2', '\"fraud\"', 0)")
    engine.dispose()
    store = Store(url)
    w = store.read_window("p", "m", last_n=10)
    assert w.ids.tolist() == ["e0", "e1", "e2"]
    assert w.features["x"].tolist() == [0.0, 1.0, 2.0]
    assert w.features["c"].tolist() == ["c0", "c1", "c2"]
    assert w.embeddings[2].tolist() == [2.0, -2.0] and np.isnan(w.embeddings[1]).all()
    assert w.labels.tolist() == [None, None, "fraud"]
    assert store.log_events("p", "m", Window.from_columns(ids=["e1", "e9"], ts=[1.0, 9.0])) == (
        1,
        1,
    )
    store.close()


def test_raw_insert_rate(store: Store, tmp_path: Path) -> None:
    from watchkeeper.store import raw_insert_rate

    url = str(tmp_path / "raw.db") if store.dialect == "sqlite" else str(store.url)
    w = Window.from_columns(
        ids=["a", "b"], ts=[1.0, 2.0], features={"x": [1.0, 2.0]}, embeddings=[[1.0], [2.0]]
    )
    assert raw_insert_rate(url, w, batches=3) > 0
    with pytest.raises(ValueError, match="batches"):
        raw_insert_rate(url, w, batches=0)
    with pytest.raises(ValueError, match="window"):
        raw_insert_rate(url, Window.from_columns(ids=[]))


def test_retention_worker_and_repr(tmp_path: Path) -> None:
    import time

    from watchkeeper.store import start_retention

    store = Store(str(tmp_path / "r.db"))
    store.register_model("p", "m")
    store.log_events("p", "m", Window.from_columns(ids=["old", "new"], ts=[0.0, time.time()]))
    stop = start_retention(store, max_age=3600, every=0.05)
    deadline = time.monotonic() + 10
    while store.count_events("p", "m") > 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    stop()
    assert store.read_window("p", "m").ids.tolist() == ["new"]
    with pytest.raises(ValueError, match="max_age"):
        start_retention(store, max_age=-1)
    with pytest.raises(ValueError, match="every"):
        start_retention(store, max_age=1, every=0)
    assert "secret" not in repr(Store("postgresql://u:secret@db/wk"))


def test_0005_drops_the_event_foreign_keys_and_keeps_the_data(store: Store) -> None:
    """Down to 0004 (foreign keys back), up to head (gone again), with events kept."""
    from alembic import command
    from alembic.config import Config

    from watchkeeper.store._store import MIGRATIONS

    store.log_events("p", "m", Window.from_columns(ids=["a", "b"], ts=[1.0, 2.0]))

    def migrate(target: str, up: bool) -> int:
        with store.engine.begin() as conn:
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            (command.upgrade if up else command.downgrade)(config, target)
            return len(sa.inspect(conn).get_foreign_keys("events"))

    assert migrate("0004", up=False) == 2
    assert migrate("head", up=True) == 0
    assert store.read_window("p", "m").ids.tolist() == ["a", "b"]
    assert store.log_events("p", "m", Window.from_columns(ids=["b", "c"], ts=[2.0, 3.0])) == (1, 1)
