"""``watchkeeper token create`` and ``watchkeeper model register`` (in-process CLI runner)."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from watchkeeper.cli import create_app


def test_token_and_model_commands(tmp_path: Path) -> None:
    from watchkeeper.store import Store

    db = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    out = runner.invoke(create_app(), ["token", "create", "team", "--scope", "read", "--db", db])
    assert out.exit_code == 0, out.output
    token = out.output.strip().splitlines()[-1]
    out = runner.invoke(
        create_app(),
        ["model", "register", "team", "fraud", "--version", "v1", "--threshold", "0.6",
         "--tpr", "0.9", "--fpr", "0.02", "--prevalence", "0.1", "--db", db],
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    store = Store(db)
    assert store.authenticate(token)[0] == "team"
    assert store.has_model("team", "fraud")
    version = store.get_model_version("team", "fraud", "v1")
    assert version["operating_point"]["threshold"] == 0.6
    out = runner.invoke(create_app(), ["token", "revoke", token, "--db", db])
    assert out.exit_code == 0, out.output
    assert store.authenticate(token) is None
    out = runner.invoke(create_app(), ["token", "revoke", token, "--db", db])
    assert out.exit_code == 1
    store.close()


def test_bad_scope_and_bad_port_are_refused(tmp_path: Path) -> None:
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    out = runner.invoke(create_app(), ["token", "create", "team", "--scope", "root", "--db", db])
    assert out.exit_code != 0
    assert "root" in out.output
    out = runner.invoke(create_app(), ["server", "--db", db, "--port", "70000"])
    assert out.exit_code != 0
    assert "port" in out.output
