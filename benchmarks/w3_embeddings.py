"""W3: multivariate drift of 2,000 × 128 float32 embeddings, Watchkeeper and peers.

Embeddings are drawn like sentence embeddings: a 16-dimensional latent factor mapped to 128
dimensions plus noise, then scaled to unit length (per-dimension spread about 0.09). The
drifted current adds +0.1 to 10 of the 128 dimensions; the control is a fresh sample from the
reference distribution. Watchkeeper runs ``MMDDrift`` (100 permutations), ``RFFMMDDrift``,
``LinearMMDDrift``, ``ClassifierDrift`` and per-dimension KS with Bonferroni (``bbsd`` on the
raw dimensions); Alibi Detect runs ``MMDDrift`` (PyTorch backend, 100 permutations) and
``KSDrift``; Frouros runs ``MMD`` with a 100-permutation test. Medians of 3.

Run: ``.venv/bin/python -m benchmarks.w3_embeddings [--repeats 3]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import machine_line, peer_python, run_json, write_section

HERE = Path(__file__).resolve().parent / "peers"
PEERS = ("alibi", "frouros")


def make_w3(n: int = 2000, d: int = 128, seed: int = 0) -> dict[str, np.ndarray]:
    """Reference, drifted current and no-drift control, float32 ``(n, d)`` each."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(16, d)) / 4.0

    def sample(k: int) -> np.ndarray:
        z = rng.normal(size=(k, 16)) @ mixing + rng.normal(scale=0.5, size=(k, d))
        return (z / np.linalg.norm(z, axis=1, keepdims=True)).astype(np.float32)

    ref, cur, control = sample(n), sample(n), sample(n)
    cur[:, :10] += np.float32(0.1)
    return {"ref": ref, "drift": cur, "control": control}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w3.npz"
        np.savez(path, **make_w3())
        tools = [("watchkeeper", Path(sys.executable))]
        tools += [(p, peer_python(p)) for p in PEERS]  # type: ignore[misc]
        for name, python in tools:
            if python is None:
                rows.append({"tool": name, "error": "environment not set up"})
                continue
            try:
                out = run_json(python, HERE / f"w3_{name}.py", str(path), str(args.repeats))
            except Exception as exc:  # a failing peer must not lose the others' figures
                out = {"tool": name, "error": str(exc).splitlines()[-1][:200]}
            print(out, flush=True)
            rows.append(out)
    ours = {}
    for row in rows:
        for m in row.get("methods", []):
            if row["tool"] == "watchkeeper":
                ours[m["method"]] = m["median_s"]
    lines = [
        "### W3: embedding drift, 2,000 × 128 float32, +0.1 in 10 dimensions",
        "",
        machine_line(),
        f"Command: `.venv/bin/python -m benchmarks.w3_embeddings --repeats {args.repeats}`. "
        "Time is the median over the repeats of fit + test on the drifted pair (import "
        "excluded); verdicts are on the drifted pair and on the no-drift control.",
        "",
        "| tool | method | median time (s) | p-value (drift) | drift found | p-value (control) "
        "| false alarm on control | peak RSS (MB) | import (s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['tool']} | failed: {row['error']} | | | | | | | |")
            continue
        for m in row["methods"]:
            lines.append(
                f"| {row['tool']} | {m['method']} | {m['median_s']:.3f} | "
                f"{m['p_drift']:.3g} | {'yes' if m['drift'] else 'NO'} | {m['p_control']:.3g} | "
                f"{'YES' if m['control'] else 'no'} | {row['peak_rss_mb']:.0f} | "
                f"{row['import_s']:.2f} |"
            )
    alibi = next((r for r in rows if r["tool"] == "alibi" and "methods" in r), None)
    if alibi and "mmd" in ours:
        t_alibi = next(m["median_s"] for m in alibi["methods"] if m["method"] == "mmd")
        lines += ["", f"MMD with 100 permutations: Watchkeeper {ours['mmd']:.3f} s, Alibi "
                  f"Detect {t_alibi:.2f} s ({t_alibi / ours['mmd']:.0f}× faster)."]
    md = "\n".join(lines)
    write_section("w3_embeddings", md)
    print(md)


if __name__ == "__main__":
    main()
