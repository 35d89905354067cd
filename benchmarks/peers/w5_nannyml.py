"""W5 peer: NannyML CBPE on the W5 scenarios (run under NannyML's own interpreter).

Reads the ``.npz`` written by ``benchmarks/w5_performance.py`` and prints one JSON line:
per scenario, NannyML's estimated accuracy, F1 and ROC AUC per chunk and the median time of
``repeats`` fit+estimate calls (from in-memory frames; the import is timed separately).
Also used by ``tests/estimation/test_estimation_nannyml.py`` as a test-only oracle.

Usage: python w5_nannyml.py DATA.npz [REPEATS]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import warnings

t0 = time.perf_counter()
import nannyml as nml  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

IMPORT_S = time.perf_counter() - t0
warnings.filterwarnings("ignore")


def frame(scores: np.ndarray, labels: np.ndarray | None, threshold: float) -> pd.DataFrame:
    d = {"y_pred_proba": scores, "y_pred": (scores >= threshold).astype(int)}
    if labels is not None:
        d["y_true"] = labels.astype(int)
    return pd.DataFrame(d)


def run(data: dict[str, np.ndarray], scenario: str, chunk: int, threshold: float) -> list:
    ref = frame(data["ref_scores"], data["ref_labels"], threshold)
    cur = frame(data[f"{scenario}_scores"], None, threshold)
    est = nml.CBPE(
        y_pred_proba="y_pred_proba",
        y_pred="y_pred",
        y_true="y_true",
        problem_type="classification_binary",
        metrics=["accuracy", "f1", "roc_auc"],
        chunk_size=chunk,
    )
    est.fit(ref)
    out = est.estimate(cur).filter(period="analysis").to_df()
    return [
        {m: float(v) for m, v in zip(("accuracy", "f1", "roc_auc"), row, strict=True)}
        for row in zip(
            out[("accuracy", "value")],
            out[("f1", "value")],
            out[("roc_auc", "value")],
            strict=True,
        )
    ]


def main() -> None:
    path = sys.argv[1]
    repeats = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    data = dict(np.load(path))
    chunk = int(data["chunk_size"])
    threshold = float(data["threshold"])
    result: dict[str, object] = {"version": nml.__version__, "import_s": IMPORT_S}
    for scenario in [str(s) for s in data["scenarios"]]:
        times, chunks = [], []
        for _ in range(repeats):
            start = time.perf_counter()
            chunks = run(data, scenario, chunk, threshold)
            times.append(time.perf_counter() - start)
        result[scenario] = {"chunks": chunks, "seconds": statistics.median(times)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
