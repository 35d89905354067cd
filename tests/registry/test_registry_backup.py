"""Disaster recovery: backup, lose the database and the artifacts, restore, and everything is
back: events with labels, findings, alerts, aliases and their history, tokens, artifacts."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from watchkeeper import registry
from watchkeeper.store import Store
from watchkeeper.window import Window


def _drop_schema(url: str, schema: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """How to open the database, and how to lose it."""
    if request.param == "sqlite":
        path = tmp_path / "db" / "wk.db"

        def lose() -> None:
            shutil.rmtree(path.parent)

        yield {"open": lambda: Store(str(path)), "lose": lose}
        return
    url = request.getfixturevalue("postgres_url")
    schema = f"wk_backup_{uuid.uuid4().hex[:12]}"
    yield {"open": lambda: Store(url, schema=schema), "lose": lambda: _drop_schema(url, schema)}
    _drop_schema(url, schema)


def _fill(store: Store, tmp_path: Path, arts: Path, rng: np.random.Generator) -> dict[str, Any]:
    store.create_project("p")
    token = store.create_token("p", {"read"})
    for v in ("v1", "v2"):
        src = tmp_path / f"src-{v}"
        src.mkdir()
        (src / "weights.bin").write_bytes(rng.bytes(50_000))
        (src / "config.json").write_text(f'{{"version": "{v}"}}')
        registry.register_artifact(store, "p", "m", v, src, artifacts=arts)
    store.set_alias("p", "m", "champion", "v1", actor="ci", reason="first")
    store.set_alias("p", "m", "champion", "v2", actor="ana", reason="promote")
    store.rollback_alias("p", "m", "champion", actor="oncall", reason="bad")
    store.set_alias("p", "m", "fallback", "v1", actor="ci")
    n = 25_000  # more than one stored chunk
    store.log_events(
        "p",
        "m",
        Window.from_columns(
            ids=[f"e{i}" for i in range(n)],
            ts=1_700_000_000.0 + np.arange(n, dtype=float),
            features={"x": rng.normal(size=n), "c": rng.choice(["a", "b"], n).tolist()},
            scores=rng.uniform(size=n),
            embeddings=rng.normal(size=(n, 4)).astype(np.float32),
        ),
        environment={"python": "3.11"},
    )
    store.log_labels("p", "m", [f"e{i}" for i in range(0, n, 7)], [i % 2 for i in range(0, n, 7)])
    store.add_findings(
        "p", "m", [{"check": "feature_drift", "subject": "x", "drift": True, "p_value": 0.001}]
    )
    store.add_metric_values("p", "m", 1_700_000_100.0, {"flag_rate": 0.12})
    store.upsert_alert("p", {"key": "drift:m", "model": "m", "status": "firing", "summary": "x"})
    store.put_monitor_config("p", "m", {"window": {"kind": "time", "size": "1h"}})
    return {"token": token}


def _snapshot(store: Store, arts: Path) -> dict[str, Any]:
    w = store.read_window("p", "m")
    return {
        "ids": w.ids.tolist(),
        "x": w.features["x"].tolist(),
        "c": w.features["c"].tolist(),
        "labels": w.labels.tolist(),
        "emb": w.embeddings.tolist(),
        "findings": store.list_findings("p", "m"),
        "metrics": store.list_metric_values("p", "m"),
        "alerts": store.list_alerts("p"),
        "aliases": store.list_aliases("p", "m"),
        "history": store.alias_history("p", "m"),
        "versions": store.list_model_versions("p", "m"),
        "config": store.get_monitor_config("p", "m"),
        "envs": store.serving_environments("p", "m"),
        "champion": registry.load(store, "p", "m", artifacts=arts)
        .joinpath("weights.bin")
        .read_bytes(),
    }


def test_backup_lose_everything_restore(
    target: dict[str, Any], tmp_path: Path, rng: np.random.Generator
) -> None:
    arts = tmp_path / "artifacts"
    store = target["open"]()
    made = _fill(store, tmp_path, arts, rng)
    before = _snapshot(store, arts)
    info = registry.backup(store, tmp_path / "backup", artifacts=arts)
    assert info["tables"]["events"] == 25_000 and info["artifacts"]["artifacts"] == 2
    store.close()

    target["lose"]()
    shutil.rmtree(arts)
    fresh = target["open"]()
    restored = registry.restore(fresh, tmp_path / "backup", artifacts=arts)
    assert restored["artifacts_restored"]["blobs"] == 4
    after = _snapshot(fresh, arts)
    assert after == before
    assert fresh.authenticate(made["token"]) == ("p", frozenset({"read"}))
    assert registry.verify(fresh, "p", "m", "v2", artifacts=arts).ok

    # ingest and monitoring resume: new rows get new ids (PostgreSQL sequences were reset)
    more = Window.from_columns(
        ids=["new1", "e5"], ts=[1_800_000_000.0, 1.0], features={"x": [0.0, 0.0], "c": ["a", "a"]},
        scores=[0.5, 0.5], embeddings=np.zeros((2, 4), np.float32),
    )  # fmt: skip
    assert tuple(fresh.log_events("p", "m", more)) == (1, 1)  # e5 was stored before the loss
    fresh.add_findings("p", "m", [{"check": "feature_drift", "subject": "c"}])
    fresh.set_alias("p", "m", "challenger", "v2", actor="ci")
    fresh.set_alias("p", "m", "champion", "v2", actor="ci")
    assert fresh.rollback_alias("p", "m", "champion")["to"] == "v1"
    with pytest.raises(ValueError, match="no earlier version"):  # the history came back too
        fresh.rollback_alias("p", "m", "champion")
    fresh.close()


def test_bad_backups_and_targets(tmp_path: Path) -> None:
    arts = tmp_path / "artifacts"
    store = Store(str(tmp_path / "wk.db"))
    store.create_project("p")
    store.register_model("p", "m")
    registry.backup(store, tmp_path / "b1", artifacts=arts)
    with pytest.raises(ValueError, match=r"path: .* is not empty"):
        registry.backup(store, tmp_path / "b1", artifacts=arts)
    with pytest.raises(ValueError, match="already holds projects"):
        registry.restore(store, tmp_path / "b1", artifacts=arts)
    # a corrupted backup is refused before anything is written
    table = tmp_path / "b1" / "tables" / "models.jsonl.gz"
    table.write_bytes(table.read_bytes()[:-3] + b"xyz")
    other = Store(str(tmp_path / "other.db"))
    with pytest.raises(ValueError, match=r"tables/models\.jsonl\.gz in the backup is corrupted"):
        registry.restore(other, tmp_path / "b1", artifacts=tmp_path / "arts2")
    assert not (tmp_path / "arts2").exists()
    with pytest.raises(ValueError, match=r"no readable BACKUP\.json"):
        registry.restore(other, tmp_path / "nothing", artifacts=arts)
    store.close()
    other.close()
