"""The model registry: artifacts verified at load, aliases that monitoring follows, lineage.

A version's artifact (a file or a directory) is kept content-addressed beside the database (or
under any fsspec URL); its SHA-256 per file and a manifest digest are recorded on the version.
:func:`load` resolves an alias (``champion`` by default), re-reads every byte, and returns a
verified local path; a mismatch refuses to load, stores an ``integrity`` finding and a critical
alert, and falls back to the ``fallback`` alias. Aliases move through the store
(``store.set_alias``, ``store.rollback_alias``), every move recorded; the runner monitors the
champion's version. docs/registry.md tells the whole story.

Examples
--------
>>> import tempfile, pathlib
>>> from watchkeeper.store import Store
>>> from watchkeeper import registry
>>> tmp = pathlib.Path(tempfile.mkdtemp())
>>> _ = (tmp / "weights.bin").write_bytes(b"v1 weights")
>>> store = Store(str(tmp / "wk.db"))
>>> _ = registry.register_artifact(store, "p", "fraud", "v1", tmp / "weights.bin")
>>> _ = store.set_alias("p", "fraud", "champion", "v1", actor="ci", reason="first")
>>> registry.load(store, "p", "fraud").read_bytes()
b'v1 weights'
>>> registry.verify(store, "p", "fraud", "v1").ok
True
>>> store.close()
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from watchkeeper.registry._artifacts import (
    ArtifactStore,
    IntegrityError,
    VerifyResult,
    hash_file,
    manifest_digest,
)
from watchkeeper.registry._backup import backup, restore
from watchkeeper.registry._lineage import (
    data_fingerprint,
    git_commit,
    lineage_chain,
    record_lineage,
)
from watchkeeper.registry._load import (
    LoadedArtifact,
    artifact_root,
    check_serving_digest,
    check_serving_digests,
    load,
    load_version,
    record_integrity_failure,
    register_artifact,
    resolve_version,
    verify,
)

if TYPE_CHECKING:
    from watchkeeper.registry._mlflow import import_mlflow
    from watchkeeper.registry._torch import load_state_dict


def __getattr__(name: str) -> Any:
    # Lazy: the MLflow importer and the torch loader need optional extras.
    if name == "import_mlflow":
        from watchkeeper.registry._mlflow import import_mlflow

        return import_mlflow
    if name == "load_state_dict":
        from watchkeeper.registry._torch import load_state_dict

        return load_state_dict
    raise AttributeError(f"module 'watchkeeper.registry' has no attribute {name!r}")


__all__ = [
    "ArtifactStore",
    "IntegrityError",
    "LoadedArtifact",
    "VerifyResult",
    "artifact_root",
    "backup",
    "check_serving_digest",
    "check_serving_digests",
    "data_fingerprint",
    "git_commit",
    "hash_file",
    "import_mlflow",
    "lineage_chain",
    "load",
    "load_state_dict",
    "load_version",
    "manifest_digest",
    "record_integrity_failure",
    "record_lineage",
    "register_artifact",
    "resolve_version",
    "restore",
    "verify",
]
