"""False alarms of KS tests on sketches: 13 undrifted columns at 1M rows a side.

Both sides are drawn from the same distributions (normal, log-normal, uniform, gamma), so every
flag is a false alarm. whylogs 1.6.4 (its own environment) profiles each side with its KLL
sketches and runs ``calculate_drift_scores`` (KS, flagged at p < 0.05); Watchkeeper profiles
each side and runs ``compare_profiles`` with ``ks`` on every column (uncorrected p < 0.05, as
whylogs). Repeated over seeds: the expected count at a 5% level is 0.65 of 13.

Run: ``.venv/bin/python -m benchmarks.scale_false_alarms --rows 1000000 --seeds 3``
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import machine_line, peer_python, run_json, write_section

HERE = Path(__file__).resolve().parent / "peers"
N_COLS = 13


def make(n: int, seed: int, path: Path) -> None:
    sides = []
    for offset in (1, 2):
        cols = []
        for j in range(N_COLS):
            rng = np.random.default_rng([seed, j, offset])
            kind = j % 4
            cols.append(rng.normal(j - 6, 1 + j / 4, n) if kind == 0 else
                        rng.lognormal(0, 0.5, n) if kind == 1 else
                        rng.uniform(0, 10, n) if kind == 2 else rng.gamma(2, 1, n))
        sides.append(np.column_stack(cols))
    np.savez(path, ref=sides[0], cur=sides[1], names=np.array([f"x{j:02d}" for j in range(N_COLS)]))


def watchkeeper_flags(path: Path) -> list[str]:
    from watchkeeper.profiles import compare_profiles, profile

    d = np.load(path)
    names = [str(n) for n in d["names"]]
    ref = profile({n: d["ref"][:, j] for j, n in enumerate(names)})
    cur = profile({n: d["cur"][:, j] for j, n in enumerate(names)})
    r = compare_profiles(ref, cur, methods=dict.fromkeys(names, "ks"), correction="none")
    return sorted(r.drifted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    python = peer_python("whylogs")
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            path = Path(tmp) / f"fa_{seed}.npz"
            make(args.rows, seed, path)
            row: dict[str, Any] = {"seed": seed, "watchkeeper": watchkeeper_flags(path)}
            try:
                if python is None:
                    raise RuntimeError("environment not set up")
                row["whylogs"] = run_json(python, HERE / "fa_whylogs.py", str(path))["flagged"]
            except Exception as exc:  # the peer failing must not lose our figures
                row["whylogs_error"] = str(exc).strip().splitlines()[-1][:200]
            print(row, flush=True)
            rows.append(row)
    lines = ["| seed | whylogs: undrifted columns flagged (of 13) | Watchkeeper (of 13) |",
             "|---|---|---|"]
    for r in rows:
        why = (f"{len(r['whylogs'])}" if "whylogs" in r else f"failed: {r['whylogs_error']}")
        lines.append(f"| {r['seed']} | {why} | {len(r['watchkeeper'])} |")
    md = "\n\n".join([
        "### False alarms of KS on sketches, 13 undrifted columns",
        machine_line(),
        f"Command: `.venv/bin/python -m benchmarks.scale_false_alarms --rows {args.rows} "
        f"--seeds {args.seeds}`. {args.rows:,} rows a side, both sides from the same "
        "distributions: every flag is false; at a 5% level 0.65 of 13 are expected. whylogs "
        "1.6.4: `calculate_drift_scores` (KS on KLL sketches), p < 0.05. Watchkeeper: "
        "`compare_profiles(..., methods=ks, correction='none')`, p < 0.05.",
        "\n".join(lines),
    ])
    write_section("scale_false_alarms", md)
    print(md)


if __name__ == "__main__":
    main()
