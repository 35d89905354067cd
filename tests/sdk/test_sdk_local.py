"""LocalClient: the same interface, straight into a store."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from watchkeeper.sdk import LocalClient


def test_local_client_writes_to_the_store(store: Any) -> None:
    nb = f"nb-{secrets.token_hex(4)}"
    c = LocalClient(store, project=nb, batch_size=10)
    for i in range(25):
        c.log("m", id=f"r{i}", score=0.2, features={"x": float(i)})
    assert store.count_events(nb, "m") == 20  # two full buffers written, five held
    frame = pd.DataFrame({"x": np.arange(5.0), "c": list("abcde")})
    c.log_batch("m", ids=[f"b{i}" for i in range(5)], features=frame, scores=np.ones(5))
    c.log_labels("m", ["r0", "b1"], [1, 0])
    c.flush()
    w = store.read_window(nb, "m", last_n=100)
    assert len(w) == 30
    labels = dict(zip(w.ids.tolist(), w.labels.tolist(), strict=True))
    assert str(labels["r0"]) == "1" and str(labels["b1"]) == "0"
    assert c.close()


def test_local_client_opens_a_url(tmp_path: Path) -> None:
    pytest.importorskip("watchkeeper.store")
    url = f"sqlite:///{tmp_path / 'local.db'}"
    with LocalClient(url, project="batch") as c:
        c.log_batch("m", ids=["a", "b"], scores=[0.1, 0.9], embeddings=np.eye(2))
    from sdk_fixtures import open_store

    s = open_store(url)
    assert s.count_events("batch", "m") == 2
    if hasattr(s, "close"):
        s.close()


def test_local_client_validates_where_work_starts(tmp_path: Path) -> None:
    c = LocalClient(f"sqlite:///{tmp_path / 'x.db'}", project="")
    with pytest.raises(ValueError, match="project"):
        c.log("m", id="a", score=0.1)
