"""Aliases: every move recorded, rollback walks back, bad input refused with nothing stored."""

from __future__ import annotations

import pytest

from watchkeeper.store import Store


def _versions(store: Store, *names: str) -> None:
    for v in names:
        store.register_model_version("p", "m", v)


def test_set_get_list_and_history(store: Store) -> None:
    _versions(store, "v1", "v2", "v3")
    assert store.get_alias("p", "m", "champion") is None
    first = store.set_alias("p", "m", "champion", "v1", actor="token:wk_abc", reason="first")
    assert (first["from"], first["to"], first["kind"], first["changed"]) == (
        None,
        "v1",
        "set",
        True,
    )
    store.set_alias("p", "m", "fallback", "v1", actor="ci")
    move = store.set_alias("p", "m", "champion", "v2", actor="ana", reason="AUC +0.02")
    assert (move["from"], move["to"], move["actor"], move["reason"]) == (
        "v1",
        "v2",
        "ana",
        "AUC +0.02",
    )
    assert store.get_alias("p", "m", "champion") == "v2"
    assert store.list_aliases("p", "m") == {"champion": "v2", "fallback": "v1"}
    history = store.alias_history("p", "m", "champion")
    assert [(h["from"], h["to"], h["actor"]) for h in history] == [
        (None, "v1", "token:wk_abc"),
        ("v1", "v2", "ana"),
    ]
    assert history[0]["at"] <= history[1]["at"]
    assert len(store.alias_history("p", "m")) == 3
    assert [h["to"] for h in store.alias_history("p", "m", limit=1)] == ["v2"]
    # the same target again moves nothing and records nothing
    same = store.set_alias("p", "m", "champion", "v2", actor="ana")
    assert same["changed"] is False and same["id"] is None
    assert len(store.alias_history("p", "m", "champion")) == 2


def test_rollback_walks_back_one_move_at_a_time(store: Store) -> None:
    _versions(store, "v1", "v2", "v3")
    for v in ("v1", "v2", "v3"):
        store.set_alias("p", "m", "champion", v, actor="ci")
    back = store.rollback_alias("p", "m", "champion", actor="oncall", reason="precision fell")
    assert (back["from"], back["to"], back["kind"]) == ("v3", "v2", "rollback")
    assert store.rollback_alias("p", "m", "champion", actor="oncall")["to"] == "v1"
    assert store.get_alias("p", "m", "champion") == "v1"
    with pytest.raises(ValueError, match="alias: 'champion' of model 'm' has no earlier"):
        store.rollback_alias("p", "m", "champion", actor="oncall")
    # a promotion after rollbacks is undone by the next rollback
    store.set_alias("p", "m", "champion", "v3", actor="ci")
    assert store.rollback_alias("p", "m", "champion")["to"] == "v1"
    kinds = [h["kind"] for h in store.alias_history("p", "m", "champion")]
    assert kinds == ["set", "set", "set", "rollback", "rollback", "set", "rollback"]


def test_bad_input_names_the_field_and_stores_nothing(store: Store) -> None:
    _versions(store, "v1")
    with pytest.raises(ValueError, match="version: model 'm' has no version 'v9'"):
        store.set_alias("p", "m", "champion", "v9", actor="ci")
    with pytest.raises(ValueError, match="alias: expected"):
        store.set_alias("p", "m", "champ ion", "v1")
    with pytest.raises(ValueError, match="alias: expected"):
        store.set_alias("p", "m", "x" * 65, "v1")
    with pytest.raises(ValueError, match="reason: expected a string of at most 2000"):
        store.set_alias("p", "m", "champion", "v1", reason="x" * 2001)
    with pytest.raises(ValueError, match="actor"):
        store.set_alias("p", "m", "champion", "v1", actor=42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="model: 'nope' is not registered"):
        store.set_alias("p", "nope", "champion", "v1")
    with pytest.raises(ValueError, match="has no earlier version"):
        store.rollback_alias("p", "m", "champion")
    with pytest.raises(ValueError, match="limit"):
        store.alias_history("p", "m", limit=0)
    assert store.list_aliases("p", "m") == {}
    assert store.alias_history("p", "m") == []


def test_version_registry_fields(store: Store) -> None:
    _versions(store, "v1")
    digest = "a" * 64
    manifest = {"kind": "file", "files": [{"path": "w.bin", "sha256": "b" * 64, "size": 3}]}
    store.put_version_registry(
        "p",
        "m",
        "v1",
        manifest=manifest,
        digest=digest,
        lineage={"parent": None, "params": {"lr": 0.1}},
    )
    record = store.get_model_version("p", "m", "v1")
    assert record["sha256"] == digest and record["manifest"] == manifest
    assert record["lineage"] == {"parent": None, "params": {"lr": 0.1}}
    with pytest.raises(ValueError, match="digest"):
        store.put_version_registry("p", "m", "v1", manifest=manifest, digest="XYZ")
    with pytest.raises(ValueError, match="manifest: give the manifest and its digest together"):
        store.put_version_registry("p", "m", "v1", manifest=manifest)
    with pytest.raises(ValueError, match="version: model 'm' has no version 'v2'"):
        store.put_version_registry("p", "m", "v2", lineage={})
    assert store.get_model_version("p", "m", "v1")["sha256"] == digest
