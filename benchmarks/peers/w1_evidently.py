"""W1 with Evidently's DataDriftPreset (defaults), in Evidently's own environment."""

from __future__ import annotations

import sys
import time

from w1_harness import emit, load, measure

start = time.perf_counter()
from evidently import DataDefinition, Dataset, Report  # noqa: E402
from evidently.presets import DataDriftPreset  # noqa: E402

import_s = time.perf_counter() - start


def main(path: str, repeats: int) -> None:
    import pandas as pd

    d = load(path)
    num_names, cat_names = d["num_names"].tolist(), d["cat_names"].tolist()
    levels = d["levels"].astype(object)

    def frame(side: str) -> pd.DataFrame:
        cols = {n: d[f"num_{side}"][:, j] for j, n in enumerate(num_names)}
        for j, n in enumerate(cat_names):
            cols[n] = levels[d[f"cat_{side}"][:, j]]
        return pd.DataFrame(cols)

    ref, cur = frame("ref"), frame("cur")
    definition = DataDefinition(numerical_columns=num_names, categorical_columns=cat_names)

    def run() -> dict:
        report = Report([DataDriftPreset()])
        snapshot = report.run(Dataset.from_pandas(cur, data_definition=definition),
                              Dataset.from_pandas(ref, data_definition=definition))
        return snapshot.dict()

    stats, out = measure(run, repeats)
    flagged, methods = [], set()
    for metric in out["metrics"]:
        cfg = metric["config"]
        if cfg.get("type", "").endswith("ValueDrift"):
            methods.add(cfg["method"])
            value, threshold = metric["value"], cfg["threshold"]
            is_p = "p_value" in cfg["method"].lower()
            if (value < threshold) if is_p else (value >= threshold):
                flagged.append(cfg["column"])
    emit({"tool": "evidently", "import_s": import_s, **stats, "flagged": flagged,
          "methods": sorted(methods)})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
