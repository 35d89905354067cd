"""W1 with Frouros' KSTest and ChiSquareTest per column; Bonferroni at 0.05 applied here
(Frouros returns p-values only)."""

from __future__ import annotations

import sys
import time

from w1_harness import emit, load, measure

start = time.perf_counter()
from frouros.detectors.data_drift import ChiSquareTest, KSTest  # noqa: E402

import_s = time.perf_counter() - start


def main(path: str, repeats: int) -> None:
    d = load(path)
    num_names, cat_names = d["num_names"].tolist(), d["cat_names"].tolist()
    levels = d["levels"].astype(object)
    cat_ref = {n: levels[d["cat_ref"][:, j]] for j, n in enumerate(cat_names)}
    cat_cur = {n: levels[d["cat_cur"][:, j]] for j, n in enumerate(cat_names)}

    def run() -> dict:
        p = {}
        for j, n in enumerate(num_names):
            det = KSTest()
            det.fit(X=d["num_ref"][:, j])
            p[n] = det.compare(X=d["num_cur"][:, j])[0].p_value
        for n in cat_names:
            det = ChiSquareTest()
            det.fit(X=cat_ref[n])
            p[n] = det.compare(X=cat_cur[n])[0].p_value
        return p

    stats, p = measure(run, repeats)
    flagged = [n for n, v in p.items() if v < 0.05 / len(p)]
    emit({"tool": "frouros", "import_s": import_s, **stats, "flagged": flagged,
          "methods": ["ks", "chi2 (bonferroni applied by us)"]})


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
