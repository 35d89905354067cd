"""False alarms of whylogs' KS on undrifted columns (run by benchmarks/scale_false_alarms.py)."""

from __future__ import annotations

import json
import sys
import warnings

import numpy as np

warnings.filterwarnings("ignore")


def main(path: str) -> None:
    import pandas as pd
    import whylogs as why
    from whylogs.viz.drift.column_drift_algorithms import calculate_drift_scores

    d = np.load(path)
    names = [str(n) for n in d["names"]]
    ref = why.log(pd.DataFrame(d["ref"], columns=names)).view()
    cur = why.log(pd.DataFrame(d["cur"], columns=names)).view()
    scores = calculate_drift_scores(target_view=cur, reference_view=ref, with_thresholds=True)
    p = {k: float(v["pvalue"]) for k, v in scores.items() if v and v.get("pvalue") is not None}
    print(json.dumps({"tool": "whylogs", "p_values": p,
                      "flagged": sorted(k for k, v in p.items() if v < 0.05)}))


if __name__ == "__main__":
    main(sys.argv[1])
