"""Disaster recovery: back up the database and the artifact store together, restore both."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from watchkeeper.registry._artifacts import ArtifactStore
from watchkeeper.registry._load import artifact_root, open_store


def backup(
    store_or_url: Any, path: str | Path, *, artifacts: str | Path | None = None
) -> dict[str, Any]:
    """Write a backup of the database (every table) and of its artifact store into the new
    directory ``path``; returns what ``BACKUP.json`` records (revision, rows per table, file
    digests, artifacts copied)."""
    from watchkeeper.store._backup import backup_database

    with open_store(store_or_url) as store:
        info = backup_database(store, path)
        copied = ArtifactStore(Path(path) / "artifacts").copy_from(
            ArtifactStore(artifact_root(store, artifacts))
        )
    info["artifacts"] = copied
    (Path(path) / "BACKUP.json").write_text(json.dumps(info, indent=2))
    return info


def restore(
    store_or_url: Any,
    path: str | Path,
    *,
    artifacts: str | Path | None = None,
    force: bool = False,
) -> dict[str, Any]:
    """Restore a backup made by :func:`backup` into an empty database (``force`` replaces what
    it holds) and its artifacts into the artifact store, every blob re-hashed on the way in.
    Artifacts go first, so a corrupted backup stops before the database is touched."""
    from watchkeeper.store._backup import read_backup_info, restore_database

    read_backup_info(path)
    with open_store(store_or_url) as store:
        source = Path(path) / "artifacts"
        copied = {"artifacts": 0, "blobs": 0, "bytes": 0}
        if source.is_dir():
            copied = ArtifactStore(artifact_root(store, artifacts)).copy_from(ArtifactStore(source))
        info = restore_database(store, path, force=force)
    info["artifacts_restored"] = copied
    return info
