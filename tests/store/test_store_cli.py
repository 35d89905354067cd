"""``watchkeeper db``: upgrade, info, prune."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from watchkeeper.cli import create_app
from watchkeeper.store import Store
from watchkeeper.window import Window


def test_db_commands(tmp_path: Path) -> None:
    db = str(tmp_path / "cli.db")
    runner = CliRunner()
    app = create_app()
    result = runner.invoke(app, ["db", "upgrade", "--db", db])
    assert result.exit_code == 0 and "revision" in result.output
    store = Store(db)
    store.register_model("p", "m")
    store.log_events("p", "m", Window.from_columns(ids=["old", "new"], ts=np.array([0.0, 4e9])))
    store.close()
    result = runner.invoke(app, ["db", "info", "--db", db])
    assert json.loads(result.output) == {"p": {"m": 2}}
    result = runner.invoke(app, ["db", "prune", "--older-than", "30d", "--db", db])
    assert result.exit_code == 0 and "deleted 1 events" in result.output
    result = runner.invoke(app, ["db", "prune", "--older-than", "soon", "--db", db])
    assert result.exit_code == 2 and "--older-than" in result.output
