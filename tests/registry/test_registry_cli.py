"""``watchkeeper model ...`` and ``watchkeeper db backup|restore`` from the shell."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from watchkeeper.cli import create_app
from watchkeeper.registry import ArtifactStore


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(create_app(), list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def published(tmp_path: Path, rng: np.random.Generator) -> str:
    import pandas as pd

    db = str(tmp_path / "wk.db")
    train = tmp_path / "train.parquet"
    pd.DataFrame({"ts": 1_700_000_000.0 + np.arange(100.0), "x": rng.normal(size=100)}).to_parquet(
        train
    )
    for v, parent in (("v1", None), ("v2", "v1")):
        weights = tmp_path / f"{v}.bin"
        weights.write_bytes(rng.bytes(10_000))
        args = ["model", "publish", "fraud", v, "--artifact", str(weights), "--db", db,
                "--train-data", str(train), "--time-column", "ts", "--param", "lr=0.1",
                "--metric", "auc=0.91"]  # fmt: skip
        if parent:
            args += ["--parent", parent]
        code, out, err = _run(*args)
        assert code == 0, out + err
        assert f"registered default/fraud {v}" in out
    return db


def test_versions_alias_history_rollback_verify_load_lineage(
    published: str, tmp_path: Path
) -> None:
    db = published
    code, out, err = _run("model", "alias", "fraud", "champion", "v1", "-m", "first", "--db", db)
    assert code == 0 and "(unset) -> v1" in out, out + err
    assert _run("model", "alias", "fraud", "champion", "v2", "--actor", "ana", "--db", db)[0] == 0
    code, out, _ = _run("model", "alias", "fraud", "--db", db)
    assert json.loads(out) == {"champion": "v2"}
    code, out, _ = _run("model", "versions", "fraud", "--db", db, "--format", "json")
    rows = json.loads(out)
    assert [(r["version"], r["aliases"]) for r in rows] == [("v1", []), ("v2", ["champion"])]
    code, out, err = _run("model", "rollback", "fraud", "-m", "precision fell", "--db", db)
    assert code == 0 and "v2 -> v1" in out, out + err
    code, out, _ = _run("model", "history", "fraud", "champion", "--db", db, "--format", "json")
    moves = json.loads(out)
    assert [(m["kind"], m["to"], m["actor"]) for m in moves][1:] == [
        ("set", "v2", "ana"),
        ("rollback", "v1", moves[2]["actor"]),
    ]
    assert moves[2]["actor"].startswith("cli:") and moves[2]["reason"] == "precision fell"
    code, out, _ = _run("model", "verify", "fraud", "--db", db)
    assert code == 0 and "fraud v1: OK (1 files" in out
    code, out, _ = _run("model", "load", "fraud", "--db", db)
    assert code == 0 and Path(out.strip()).read_bytes() == (tmp_path / "v1.bin").read_bytes()
    code, out, _ = _run("model", "lineage", "fraud", "v2", "--db", db)
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("v2") and any(line.strip().startswith("v1") for line in lines)
    assert (
        "training data: 1 file(s), 100 rows" in out and '"lr": 0.1' in out and '"auc": 0.91' in out
    )

    # one flipped byte: verify fails (exit 1) and load refuses without a fallback
    record = json.loads(_run("model", "versions", "fraud", "--db", db, "--format", "json")[1])[0]
    blob = tmp_path / "artifacts" / ArtifactStore.blob_key(record["manifest"]["files"][0]["sha256"])
    data = bytearray(blob.read_bytes())
    data[0] ^= 0xFF
    blob.write_bytes(bytes(data))
    code, out, _ = _run("model", "verify", "fraud", "v1", "--db", db)
    assert code == 1 and "FAILED" in out and "SHA-256" in out
    code, out, err = _run("model", "load", "fraud", "--db", db)
    assert code == 1 and "failed verification" in err
    code, out, _ = _run("findings", "fraud", "--db", db, "--check", "integrity", "--format", "json")
    assert len(json.loads(out)) == 2


def test_bad_input(published: str) -> None:
    db = published
    code, _, err = _run("model", "alias", "fraud", "champion", "v9", "--db", db)
    assert code == 2 and "version: model 'fraud' has no version 'v9'" in err
    code, _, err = _run("model", "rollback", "fraud", "--db", db)
    assert code == 2 and "no earlier version" in err
    code, _, err = _run("model", "versions", "nope", "--db", db)
    assert code == 2 and "not registered" in err
    code, _, err = _run("model", "publish", "fraud", "v3", "--param", "oops", "--db", db)
    assert code == 2 and "--param: expected KEY=VALUE" in err
    code, _, err = _run("model", "publish", "fraud", "v3", "--parent", "v0", "--db", db)
    assert code == 2 and "parent: model 'fraud' has no version 'v0'" in err
    code, out, _ = _run("model", "versions", "fraud", "--db", db, "--format", "json")
    assert [r["version"] for r in json.loads(out)] == ["v1", "v2"]  # nothing stored
    code, _, err = _run("model", "lineage", "fraud", "v7", "--db", db)
    assert code == 2 and "no version 'v7'" in err


def test_signing(tmp_path: Path) -> None:
    pytest.importorskip("cryptography")
    db = str(tmp_path / "wk.db")
    priv, pub, other = tmp_path / "k.pem", tmp_path / "k.pub", tmp_path / "o.pub"
    assert _run("model", "keygen", str(priv), str(pub))[0] == 0
    assert _run("model", "keygen", str(tmp_path / "o.pem"), str(other))[0] == 0
    assert _run("model", "keygen", str(priv), str(pub))[0] == 2  # never overwrites a key
    (tmp_path / "w.bin").write_bytes(b"weights")
    code, out, err = _run("model", "publish", "m", "v1", "--artifact", str(tmp_path / "w.bin"),
                          "--sign-key", str(priv), "--db", db)  # fmt: skip
    assert code == 0 and "(signed)" in out, out + err
    code, out, _ = _run("model", "verify", "m", "v1", "--public-key", str(pub), "--db", db)
    assert code == 0 and "signature valid" in out
    code, out, _ = _run("model", "verify", "m", "v1", "--public-key", str(other), "--db", db)
    assert code == 1 and "signature invalid" in out
    (tmp_path / "u.bin").write_bytes(b"unsigned")
    assert (
        _run("model", "publish", "m", "v2", "--artifact", str(tmp_path / "u.bin"), "--db", db)[0]
        == 0
    )
    code, out, _ = _run("model", "verify", "m", "v2", "--public-key", str(pub), "--db", db)
    assert code == 1 and "signature: absent" in out


def test_db_backup_and_restore(published: str, tmp_path: Path) -> None:
    db = published
    assert _run("model", "alias", "fraud", "champion", "v2", "--db", db)[0] == 0
    code, out, err = _run("db", "backup", str(tmp_path / "bk"), "--db", db)
    assert code == 0 and "2 artifacts" in out, out + err
    new_db = str(tmp_path / "new" / "wk.db")
    code, out, err = _run("db", "restore", str(tmp_path / "bk"), "--db", new_db)
    assert code == 0 and "2 artifacts" in out, out + err
    assert (tmp_path / "new" / "artifacts").is_dir()
    code, out, _ = _run("model", "load", "fraud", "--db", new_db)
    assert code == 0 and Path(out.strip()).read_bytes() == (tmp_path / "v2.bin").read_bytes()
    code, _, err = _run("db", "restore", str(tmp_path / "bk"), "--db", new_db)
    assert code == 2 and "already holds projects" in err
