"""A store with a registered model, its reference and four days of half-labelled events."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from watchkeeper.window import Window

DAY = 86400.0
T0 = 1_750_000_000.0


def make_store(tmp_path: Path, n_days: int = 4, per_day: int = 200) -> Any:
    from watchkeeper.store import Store

    rng = np.random.default_rng(0)
    store = Store(str(tmp_path / "wk.db"))
    store.register_model_version(
        "p", "m", "v1", operating_point={"threshold": 0.5, "tpr": 0.9, "fpr": 0.05}
    )
    ref = Window.from_columns(
        features={"x": rng.normal(size=300)}, scores=rng.uniform(size=300),
        labels=rng.integers(0, 2, 300),
    )  # fmt: skip
    store.put_reference("p", "m", "v1", ref)
    for d in range(n_days):
        ids = [f"d{d}-{i}" for i in range(per_day)]
        w = Window.from_columns(
            ids=ids, ts=T0 + d * DAY + np.linspace(0, DAY - 1, per_day),
            features={"x": rng.normal(size=per_day)}, scores=rng.uniform(size=per_day),
            tags={"scanner": ["new" if d >= 2 else "old"] * per_day},
        )  # fmt: skip
        store.log_events("p", "m", w)
        store.log_labels("p", "m", ids[: per_day // 2], rng.integers(0, 2, per_day // 2))
    return store




# A trainer that scores the evaluation set: "good" follows the labels, "shuffled" was trained
# on shuffled labels (its scores follow a permutation of them).
TRAINER = """
import sys, pathlib
import numpy as np, pandas as pd
ev = pd.read_parquet(sys.argv[1]); out = pathlib.Path(sys.argv[2]); kind = sys.argv[3]
rng = np.random.default_rng(1)
y = ev["label"].astype(str).astype(float).fillna(0).to_numpy()
if kind == "shuffled":
    y = rng.permutation(y)
s = np.clip(0.25 + 0.5 * y + rng.normal(0, 0.15, len(y)), 0, 1)
pd.DataFrame({"id": ev["id"], "score": s}).to_parquet(out / "eval_scores.parquet")
(out / "model.bin").write_bytes(b"weights")
print("artifact:" + str(out / "model.bin"))
"""


def write_trainer(tmp_path: Path) -> Path:
    """The trainer script above, as a file (a command's arguments are format strings)."""
    script = tmp_path / "train.py"
    script.write_text(TRAINER)
    return script
