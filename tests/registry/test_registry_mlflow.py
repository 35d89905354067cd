"""MLflow import: a real MLflow sqlite tracking store with 3 versions and 2 aliases comes in
with its params, metrics and artifacts, which are then verified at load like any other."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from watchkeeper import registry
from watchkeeper.cli import create_app
from watchkeeper.store import Store


def test_import_three_versions_and_two_aliases(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mlflow = pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    monkeypatch.chdir(tmp_path)  # MLflow writes its run artifacts under ./mlruns
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("fraud")
    for i in range(3):
        folder = tmp_path / f"model{i}"
        folder.mkdir()
        (folder / "weights.bin").write_bytes(bytes([i]) * 2048)
        (folder / "MLmodel").write_text(f"flavor: custom\nversion: {i}\n")
        with mlflow.start_run() as run:
            mlflow.log_param("depth", 3 + i)
            mlflow.log_metric("auc", 0.8 + i / 100)
            mlflow.log_artifacts(str(folder), artifact_path="model")
        client.create_model_version("fraud", f"runs:/{run.info.run_id}/model", run.info.run_id)
    client.set_registered_model_alias("fraud", "champion", "2")
    client.set_registered_model_alias("fraud", "challenger", "3")

    db = str(tmp_path / "wk.db")
    result = CliRunner().invoke(
        create_app(),
        ["model", "import-mlflow", "--tracking-uri", uri, "--name", "fraud", "--db", db],
    )
    assert result.exit_code == 0, result.output
    assert "imported 3 version(s) of fraud as fraud (3 with artifacts)" in result.stdout

    store = Store(db)
    assert [v["version"] for v in store.list_model_versions("default", "fraud")] == ["1", "2", "3"]
    assert store.list_aliases("default", "fraud") == {"challenger": "3", "champion": "2"}
    assert all(h["actor"].startswith("cli:") for h in store.alias_history("default", "fraud"))
    assert all(
        "imported from MLflow" in h["reason"] for h in store.alias_history("default", "fraud")
    )
    v2 = store.get_model_version("default", "fraud", "2")
    assert v2["lineage"]["params"] == {"depth": "4"}
    assert v2["lineage"]["metrics"] == {"auc": pytest.approx(0.81)}
    assert v2["lineage"]["source"]["mlflow"]["version"] == "2"
    assert sorted(f["path"] for f in v2["manifest"]["files"]) == ["MLmodel", "weights.bin"]
    path = registry.load(store, "default", "fraud")  # the champion, verified
    assert (path / "weights.bin").read_bytes() == bytes([1]) * 2048
    # importing again changes nothing
    again = registry.import_mlflow(store, "default", tracking_uri=uri, name="fraud")
    assert again["versions"] == 3 and again["errors"] == []
    assert len(store.alias_history("default", "fraud")) == 2
    out = CliRunner().invoke(
        create_app(), ["model", "versions", "fraud", "--db", db, "--format", "json"]
    )
    assert [r["aliases"] for r in json.loads(out.stdout)] == [[], ["champion"], ["challenger"]]
    bad = CliRunner().invoke(
        create_app(),
        ["model", "import-mlflow", "--tracking-uri", uri, "--name", "nope", "--db", db],
    )
    assert bad.exit_code == 2 and "no registered model 'nope'" in bad.stderr
    store.close()
