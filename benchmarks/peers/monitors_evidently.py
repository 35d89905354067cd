"""Evidently's DataDriftPreset + DataSummaryPreset on the monitors benchmark's 20 features."""

from __future__ import annotations

import sys
import time

from w1_harness import emit, load, measure

start = time.perf_counter()
import evidently  # noqa: E402
from evidently import DataDefinition, Dataset, Report  # noqa: E402
from evidently.presets import DataDriftPreset, DataSummaryPreset  # noqa: E402

import_s = time.perf_counter() - start


def main(path: str, repeats: int) -> None:
    import numpy as np
    import pandas as pd

    d = load(path)
    levels = np.array([f"L{i}" for i in range(8)], dtype=object)
    num_names = [f"num_{j:02d}" for j in range(d["num_ref"].shape[1])]
    cat_names = [f"cat_{j}" for j in range(d["cat_ref"].shape[1])]

    def frame(side: str) -> pd.DataFrame:
        cols = {n: d[f"num_{side}"][:, j] for j, n in enumerate(num_names)}
        cols.update({n: levels[d[f"cat_{side}"][:, j]] for j, n in enumerate(cat_names)})
        return pd.DataFrame(cols)

    ref, cur = frame("ref"), frame("cur")
    definition = DataDefinition(numerical_columns=num_names, categorical_columns=cat_names)

    def run() -> dict:
        report = Report([DataDriftPreset(), DataSummaryPreset()])
        snapshot = report.run(
            Dataset.from_pandas(cur, data_definition=definition),
            Dataset.from_pandas(ref, data_definition=definition),
        )
        return snapshot.dict()

    stats, _ = measure(run, repeats)
    emit({"tool": "evidently", "version": evidently.__version__, "import_s": import_s, **stats})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
