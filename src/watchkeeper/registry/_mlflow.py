"""Import an MLflow registered model: versions, aliases, run parameters and metrics, and the
artifacts (hashed into Watchkeeper's artifact store, so they are verified at every load, which
MLflow itself does not do). Needs the ``mlflow`` extra (``mlflow-skinny``)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from watchkeeper.registry._load import open_store, register_artifact

MAX_VERSIONS = 10_000


def _client(tracking_uri: str) -> Any:
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ImportError(
            "importing from MLflow needs the mlflow extra: pip install 'watchkeeper[mlflow]'"
        ) from None
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def import_mlflow(
    store_or_url: Any,
    project: str,
    *,
    tracking_uri: str,
    name: str,
    model: str | None = None,
    artifacts: str | Path | None = None,
    actor: str | None = None,
) -> dict[str, Any]:
    """Bring the MLflow registered model ``name`` into ``project`` as ``model`` (default: the
    same name). Each version keeps MLflow's version number as its name, its run's parameters
    and metrics as lineage, and its artifacts content-addressed; each MLflow alias becomes an
    alias here (a recorded move). Importing again updates what changed.

    Returns ``{"model", "versions", "artifacts", "aliases", "errors"}``.
    """
    if not isinstance(tracking_uri, str) or not tracking_uri:
        raise ValueError(
            "tracking_uri: expected an MLflow tracking URI such as sqlite:///mlflow.db"
        )
    if not isinstance(name, str) or not name:
        raise ValueError("name: expected the registered model's name")
    target = model or name
    client = _client(tracking_uri)
    try:
        registered = client.get_registered_model(name)
    except Exception as exc:  # MLflow raises its own RestException / MlflowException
        raise ValueError(
            f"name: MLflow at {tracking_uri} has no registered model {name!r} ({exc})"
        ) from None
    quoted = name.replace("'", "\\'")
    versions = sorted(
        client.search_model_versions(f"name='{quoted}'", max_results=MAX_VERSIONS),
        key=lambda v: int(v.version),
    )
    report: dict[str, Any] = {
        "model": target,
        "versions": 0,
        "artifacts": 0,
        "aliases": {},
        "errors": [],
    }
    with open_store(store_or_url) as store:
        store.register_model(project, target)
        for v in versions:
            version = str(v.version)
            params: dict[str, Any] = {}
            metrics: dict[str, Any] = {}
            if v.run_id:
                try:
                    run = client.get_run(v.run_id)
                    params, metrics = dict(run.data.params), dict(run.data.metrics)
                except Exception as exc:
                    report["errors"].append(f"version {version}: run {v.run_id}: {exc}")
            lineage = {
                "parent": None,
                "params": params or None,
                "metrics": metrics or None,
                "source": {
                    "mlflow": {
                        "tracking_uri": tracking_uri,
                        "name": name,
                        "version": version,
                        "run_id": v.run_id,
                        "source": v.source,
                        "description": v.description,
                        "tags": dict(v.tags or {}),
                    }
                },
                "data": {},
            }
            stored = False
            with tempfile.TemporaryDirectory(prefix="wk-mlflow-") as tmp:
                try:
                    from mlflow.artifacts import download_artifacts

                    local = download_artifacts(
                        artifact_uri=v.source, dst_path=tmp, tracking_uri=tracking_uri
                    )
                    register_artifact(
                        store, project, target, version, Path(local),
                        artifacts=artifacts, lineage=lineage,
                    )  # fmt: skip
                    stored = True
                except Exception as exc:
                    report["errors"].append(f"version {version}: artifacts: {exc}")
            if not stored:
                store.register_model_version(project, target, version)
                store.put_version_registry(project, target, version, lineage=lineage)
            report["versions"] += 1
            report["artifacts"] += int(stored)
        for alias, version in sorted(dict(registered.aliases or {}).items()):
            store.set_alias(
                project, target, alias, str(version), actor=actor or "import-mlflow",
                reason=f"imported from MLflow ({tracking_uri}, {name})",
            )  # fmt: skip
            report["aliases"][alias] = str(version)
    return report
