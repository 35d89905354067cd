"""The shadow tests' client and the window its challenger logged to (one SQLite file a test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from watchkeeper.shadow import shadow_model


def local_client(tmp_path: Path) -> Any:
    """A ``LocalClient`` on ``tmp_path/wk.db``, project ``p``."""
    from watchkeeper.sdk import LocalClient

    return LocalClient(str(tmp_path / "wk.db"), project="p")


def shadow_window(tmp_path: Path, model: str = "fraud") -> Any:
    """What the challenger of ``model`` logged (its ``"<model>:shadow"`` stream)."""
    from watchkeeper.store import Store

    store = Store(str(tmp_path / "wk.db"))
    try:
        return store.read_window("p", shadow_model(model))
    finally:
        store.close()
