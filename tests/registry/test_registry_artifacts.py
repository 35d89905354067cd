"""Artifacts: content-addressed, verified at load; a tampered byte refuses to load, stores an
integrity finding and alert, and the fallback alias takes over."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchkeeper import registry
from watchkeeper.registry import ArtifactStore, IntegrityError
from watchkeeper.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(str(tmp_path / "wk.db"))
    s.create_project("p")
    return s


def _model_dir(tmp_path: Path, name: str, payload: bytes) -> Path:
    d = tmp_path / name
    (d / "tokenizer").mkdir(parents=True)
    (d / "weights.safetensors").write_bytes(payload)
    (d / "config.json").write_text('{"layers": 2}')
    (d / "tokenizer" / "vocab.txt").write_text("a\nb\n")
    return d


def _blob(store: Store, tmp_path: Path, version: str, rel: str) -> Path:
    record = store.get_model_version("p", "m", version)
    sha = next(f["sha256"] for f in record["manifest"]["files"] if f["path"] == rel)
    return tmp_path / "artifacts" / ArtifactStore.blob_key(sha)


def test_register_load_and_verify_a_directory(store: Store, tmp_path: Path) -> None:
    src = _model_dir(tmp_path, "model", b"\x01" * 5000)
    record = registry.register_artifact(store, "p", "m", "v1", src)
    manifest = record["manifest"]
    assert manifest["kind"] == "dir"
    assert [f["path"] for f in manifest["files"]] == [
        "config.json",
        "tokenizer/vocab.txt",
        "weights.safetensors",
    ]
    assert record["sha256"] == registry.manifest_digest(manifest)
    assert record["artifact_uri"] == str(tmp_path / "artifacts")  # beside the SQLite file
    store.set_alias("p", "m", "champion", "v1", actor="ci")
    path = registry.load(store, "p", "m")
    assert (path / "weights.safetensors").read_bytes() == b"\x01" * 5000
    assert (path / "tokenizer" / "vocab.txt").read_text() == "a\nb\n"
    result = registry.verify(store, "p", "m", alias="champion")
    assert result.ok and result.files == 3 and result.bytes == 5000 + 13 + 4
    assert result.to_dict()["version"] == "v1"
    # the same content registered again is stored once
    registry.register_artifact(store, "p", "m", "v1b", src)
    blobs = list((tmp_path / "artifacts" / "blobs").rglob("*"))
    assert len([b for b in blobs if b.is_file()]) == 3


def test_tampered_byte_refuses_records_finding_and_alert_then_falls_back(
    store: Store, tmp_path: Path
) -> None:
    registry.register_artifact(store, "p", "m", "v1", _model_dir(tmp_path, "a", b"\x01" * 4096))
    registry.register_artifact(store, "p", "m", "v2", _model_dir(tmp_path, "b", b"\x02" * 4096))
    store.set_alias("p", "m", "fallback", "v1", actor="ci")
    store.set_alias("p", "m", "champion", "v2", actor="ci")
    assert registry.load(store, "p", "m").parent.name != ""  # a clean load first
    blob = _blob(store, tmp_path, "v2", "weights.safetensors")
    data = bytearray(blob.read_bytes())
    data[1234] ^= 0x01  # one bit of one byte
    blob.write_bytes(bytes(data))

    with pytest.raises(IntegrityError, match=r"'v2' failed verification.*weights\.safetensors"):
        registry.load(store, "p", "m", fallback=False)
    findings = store.list_findings("p", "m", check="integrity")
    assert len(findings) == 1 and findings[0]["drift"] is True
    assert findings[0]["subject"] == "version:v2" and findings[0]["severity"] == "critical"
    assert "weights.safetensors" in findings[0]["details"]["problems"][0]
    alerts = store.list_alerts("p", model="m", status="firing")
    assert [a["key"] for a in alerts] == ["integrity:m:v2"]
    assert alerts[0]["severity"] == "critical" and alerts[0]["version"] == "v2"

    loaded = registry.load_version(store, "p", "m")  # fallback on by default
    assert (loaded.version, loaded.alias, loaded.fell_back_from) == ("v1", "fallback", "v2")
    assert (loaded.path / "weights.safetensors").read_bytes() == b"\x01" * 4096
    assert "weights.safetensors" in (loaded.failure or "")
    assert not registry.verify(store, "p", "m", "v2").ok
    assert len(store.list_findings("p", "m", check="integrity")) == 3


def test_extra_missing_and_single_file(store: Store, tmp_path: Path) -> None:
    registry.register_artifact(store, "p", "m", "v1", _model_dir(tmp_path, "a", b"x"))
    path = registry.load(store, "p", "m", version="v1")
    (path / "evil.pkl").write_bytes(b"cos\nsystem\n")  # something slipped in beside the weights
    result = registry.verify(store, "p", "m", "v1", record=False)
    assert not result.ok and "evil.pkl: not part of the registered artifact" in result.problems
    (path / "evil.pkl").unlink()
    (path / "config.json").unlink()
    assert (
        "config.json: missing (or not a regular file)"
        in registry.verify(store, "p", "m", "v1", record=False).problems
    )
    single = tmp_path / "model.pt"
    single.write_bytes(b"\x00" * 100)
    record = registry.register_artifact(store, "p", "m", "v2", single)
    assert record["manifest"]["kind"] == "file"
    assert registry.load(store, "p", "m", version="v2").read_bytes() == b"\x00" * 100


def test_bad_input_names_the_field(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"path: .* is not a file or a directory"):
        registry.register_artifact(store, "p", "m", "v1", tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty directory"):
        registry.register_artifact(store, "p", "m", "v1", tmp_path / "empty")
    store.register_model_version("p", "m", "v1")
    with pytest.raises(ValueError, match="alias: model 'm' has no 'champion' alias"):
        registry.load(store, "p", "m")
    with pytest.raises(ValueError, match="version: 'm' 'v1' has no registered artifact"):
        registry.load(store, "p", "m", version="v1")
    with pytest.raises(KeyError, match="no version 'v9'"):
        registry.verify(store, "p", "m", "v9")
    assert store.list_findings("p", "m", check="integrity") == []


def test_database_manifest_tampering_is_caught(store: Store, tmp_path: Path) -> None:
    record = registry.register_artifact(store, "p", "m", "v1", _model_dir(tmp_path, "a", b"x"))
    manifest = dict(record["manifest"])
    manifest["files"] = [dict(f) for f in manifest["files"]]
    manifest["files"][0]["size"] += 1  # the stored manifest edited without its digest
    store.put_version_registry("p", "m", "v1", manifest=manifest, digest=record["sha256"])
    result = registry.verify(store, "p", "m", "v1", record=False)
    assert not result.ok and "digest differs" in result.problems[0]


def test_fsspec_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("fsspec")
    store = Store(str(tmp_path / "wk.db"))
    arts = f"memory://wk-{tmp_path.name}"
    src = _model_dir(tmp_path, "a", b"\x07" * 3000)
    record = registry.register_artifact(store, "p", "m", "v1", src, artifacts=arts)
    assert record["artifact_uri"] == arts
    assert ArtifactStore(arts).digests() == [record["sha256"]]
    assert ArtifactStore(arts).manifest(record["sha256"])["files"] == record["manifest"]["files"]
    monkeypatch.setenv("HOME", str(tmp_path))  # the download cache goes under ~/.cache
    path = registry.load(store, "p", "m", version="v1", artifacts=arts)
    assert path.is_relative_to(tmp_path / ".cache" / "watchkeeper")
    assert (path / "weights.safetensors").read_bytes() == b"\x07" * 3000
    store.close()


def test_serving_digest_mismatch_is_an_integrity_finding(store: Store, tmp_path: Path) -> None:
    record = registry.register_artifact(store, "p", "m", "v1", _model_dir(tmp_path, "a", b"x"))
    assert registry.check_serving_digest(store, "p", "m", "v1", record["sha256"])
    assert not registry.check_serving_digest(store, "p", "m", "v1", "0" * 64)
    found = store.list_findings("p", "m", check="integrity")
    assert [f["method"] for f in found] == ["serving_digest"]
