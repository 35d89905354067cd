"""W1 with Alibi Detect's TabularDrift (KS / chi-squared), p_val=0.05.

A column counts as flagged by Alibi's own feature-level verdict, ``predict(drift_type=
"feature")``, which compares each p-value with p_val uncorrected (its Bonferroni correction
applies to the batch-level verdict only)."""

from __future__ import annotations

import sys
import time

from w1_harness import emit, load, measure

start = time.perf_counter()
from alibi_detect.cd import TabularDrift  # noqa: E402

import_s = time.perf_counter() - start


def main(path: str, repeats: int) -> None:
    import numpy as np

    d = load(path)
    num_names, cat_names = d["num_names"].tolist(), d["cat_names"].tolist()
    k = len(num_names)

    def matrix(side: str) -> np.ndarray:
        # Alibi takes one float array; categories as ordinal codes with their columns named.
        return np.hstack([d[f"num_{side}"], d[f"cat_{side}"].astype(np.float64)])

    ref, cur = matrix("ref"), matrix("cur")
    categories = {k + j: None for j in range(len(cat_names))}

    def run() -> dict:
        cd = TabularDrift(ref, p_val=0.05, categories_per_feature=categories)
        return cd.predict(cur, drift_type="feature")["data"]

    stats, out = measure(run, repeats)
    names = num_names + cat_names
    flagged = [n for n, f in zip(names, out["is_drift"], strict=True) if f]
    emit({"tool": "alibi", "import_s": import_s, **stats, "flagged": flagged,
          "methods": ["ks", "chi2 (feature verdicts uncorrected)"]})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
