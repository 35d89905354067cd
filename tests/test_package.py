"""The package imports cheaply and the CLI answers."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from watchkeeper.cli import create_app


def test_version_option() -> None:
    result = CliRunner().invoke(create_app(), ["--version"])
    assert result.exit_code == 0
    assert "watchkeeper 0.1.0" in result.output


def test_import_does_not_load_heavy_libraries() -> None:
    code = (
        "import sys, watchkeeper, watchkeeper.cli; "
        "heavy = ('scipy', 'sklearn', 'sqlalchemy', 'fastapi', 'torch', 'numba', 'pandas'); "
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
