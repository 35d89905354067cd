"""W1 with NannyML's UnivariateDriftCalculator (defaults: 10 chunks, Jensen-Shannon).

A column counts as flagged when any of its analysis chunks raised an alert. With a single
chunk NannyML's thresholds (3 standard deviations of the reference chunks) degenerate to 0
and every column alerts, so the default chunking is the fair setting.
"""

from __future__ import annotations

import sys
import time
import warnings

from w1_harness import emit, load, measure

start = time.perf_counter()
import nannyml as nml  # noqa: E402

import_s = time.perf_counter() - start


def main(path: str, repeats: int) -> None:
    import pandas as pd

    warnings.simplefilter("ignore")
    d = load(path)
    num_names, cat_names = d["num_names"].tolist(), d["cat_names"].tolist()
    levels = d["levels"].astype(object)

    def frame(side: str) -> pd.DataFrame:
        cols = {n: d[f"num_{side}"][:, j] for j, n in enumerate(num_names)}
        for j, n in enumerate(cat_names):
            cols[n] = pd.Categorical(levels[d[f"cat_{side}"][:, j]])
        return pd.DataFrame(cols)

    ref, cur = frame("ref"), frame("cur")
    names = num_names + cat_names

    def run() -> pd.DataFrame:
        calc = nml.UnivariateDriftCalculator(column_names=names)
        calc.fit(ref)
        return calc.calculate(cur).filter(period="analysis").to_df()

    stats, df = measure(run, repeats)
    flagged = [n for n in names if bool(df[(n, "jensen_shannon", "alert")].any())]
    emit({"tool": "nannyml", "import_s": import_s, **stats, "flagged": flagged,
          "methods": ["jensen_shannon (10 chunks)"]})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
