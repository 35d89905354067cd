"""What serves is what was registered: the SDK reports the serving digest with each batch, a
mismatch is an integrity finding; PyTorch weights load verified and never unpickled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from watchkeeper import registry
from watchkeeper.sdk import LocalClient
from watchkeeper.store import Store


def test_local_client_reports_the_serving_digest(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "wk.db"))
    (tmp_path / "w.bin").write_bytes(b"weights")
    record = registry.register_artifact(store, "default", "m", "v1", tmp_path / "w.bin")
    with LocalClient(store) as wk:
        wk.report_model_digest("v1", record["sha256"])
        wk.log_batch("m", ids=["a"], scores=[0.1], version="v1")
    assert store.list_findings("default", "m", check="integrity") == []
    env = store.serving_environments("default", "m")[0]["environment"]
    assert env["model_digests"] == {"v1": record["sha256"]}
    with LocalClient(store) as wk:
        wk.report_model_digest("v1", "f" * 64)  # not the registered weights
        wk.log_batch("m", ids=["b"], scores=[0.2], version="v1")
        with pytest.raises(ValueError, match="digest"):
            wk.report_model_digest("v1", "short")
    found = store.list_findings("default", "m", check="integrity")
    assert [f["method"] for f in found] == ["serving_digest"]
    assert store.list_alerts("default", model="m", status="firing")[0]["key"] == "integrity:m:v1"
    store.close()


def test_http_batch_header_digest_mismatch(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from watchkeeper.server import Settings, create_app

    store = Store(str(tmp_path / "wk.db"))
    (tmp_path / "w.bin").write_bytes(b"weights")
    record = registry.register_artifact(store, "p", "m", "v1", tmp_path / "w.bin")
    token = store.create_token("p", {"ingest"})
    app = create_app(Settings(), store=store)
    body: dict = {
        "columns": {"ids": ["a"], "scores": [0.5], "version": "v1"},
        "environment": {"model_digests": {"v1": record["sha256"]}},
    }
    with TestClient(app) as c:
        h = {"Authorization": f"Bearer {token}"}
        assert c.post("/v1/models/m/events:batch", json=body, headers=h).status_code == 200
        assert store.list_findings("p", "m", check="integrity") == []
        body["columns"]["ids"] = ["b"]
        body["environment"] = {"model_digests": {"v1": "0" * 64}}
        assert c.post("/v1/models/m/events:batch", json=body, headers=h).status_code == 200
    assert len(store.list_findings("p", "m", check="integrity")) == 1
    store.close()


def test_torch_state_dict_loads_verified(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("safetensors")
    from safetensors.torch import save_file

    store = Store(str(tmp_path / "wk.db"))
    net = torch.nn.Linear(3, 1)
    folder = tmp_path / "st"
    folder.mkdir()
    save_file(net.state_dict(), str(folder / "model.safetensors"))
    registry.register_artifact(store, "p", "m", "v1", folder)
    torch.save(net.state_dict(), tmp_path / "model.pt")
    registry.register_artifact(store, "p", "m", "v2", tmp_path / "model.pt")
    store.set_alias("p", "m", "champion", "v1", actor="ci")
    state, loaded = registry.load_state_dict(store, "p", "m")
    assert loaded.version == "v1" and torch.equal(state["weight"], net.weight)
    state, loaded = registry.load_state_dict(store, "p", "m", version="v2")
    assert torch.equal(state["bias"], net.bias)
    # a pickle that runs code is refused by weights_only=True, even when registered
    evil = tmp_path / "evil.pt"
    torch.save({"x": np.dtype("float64")}, evil)  # not a tensor container
    registry.register_artifact(store, "p", "m", "v3", evil)
    with pytest.raises(Exception, match=r"(?i)weights_only|unsupported|global"):
        registry.load_state_dict(store, "p", "m", version="v3")
    store.close()
